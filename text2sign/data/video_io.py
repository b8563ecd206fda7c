"""Reading clips from disk: video files through PyAV (FFmpeg), folders of frame images through Pillow.

A clip is either a video file or a folder of images (PHOENIX ships PNG folders). Paths are always
opened as absolute paths by a library, never handed to a command line, so a clip whose name starts
with '-' (How2Sign has many: YouTube ids do) is read like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from text2sign.data.frames import fit_square, sample_indices

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"})
# What Pillow and PyAV raise for a file they cannot make sense of (truncated, not an image, bad data).
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
_VIDEO_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError)


class ClipError(Exception):
    """A clip that cannot be read. The message says why; the caller names the clip and the fix."""


def _why(error: Exception) -> str:
    # Both libraries' messages repeat the file name, which the caller already gives.
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read"
    return getattr(error, "strerror", None) or str(error)


def _natural_key(path: Path) -> list[object]:
    # frame2.png before frame10.png; zero-padded names (PHOENIX's images0001.png) sort the same either way.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    """The images of a frame folder in frame order; [] when it is not a folder or holds none."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=_natural_key)


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")  # convert() decodes the whole image: a truncated file fails here
    except _IMAGE_ERRORS as error:
        raise ClipError(f"frame {path.name} cannot be decoded ({_why(error)})") from None


def _video_frames(path: Path) -> Iterator[Image.Image]:
    try:
        with av.open(str(path.absolute())) as container:
            if not container.streams.video:
                raise ClipError("has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                # One thread for the RGB conversion: swscale's slice threads belong to a context PyAV keeps
                # between frames, and a DataLoader worker forked after the parent converted a frame inherits
                # that context without its threads, then waits on them for ever. The decoder's own threads
                # are safe: each clip opens its decoder, in the process that reads it.
                yield frame.to_image(threads=1)
    except _VIDEO_ERRORS as error:
        raise ClipError(f"cannot be decoded ({_why(error)})") from None


@dataclass(frozen=True)
class DecodedClip:
    """A clip's sampled frames and what keypoints need to follow them: which frames they are, of how many, at
    what size and rate."""

    frames: np.ndarray  # uint8 [num_frames, size, size, 3]
    indices: np.ndarray  # int64 [num_frames]: the clip frames they were sampled from
    count: int  # the clip's frames, as decoded
    width: int  # of the clip's frames, before cropping
    height: int
    fps: float | None  # a video's frame rate; None for a frame folder


def read_clip(source: Path, num_frames: int, size: int) -> np.ndarray:
    """`num_frames` frames sampled uniformly over the whole clip, each centre-cropped to a square and
    resized to `size`: uint8 [num_frames, size, size, 3]. Raises ClipError."""
    return decode_clip(source, num_frames, size).frames


def decode_clip(source: Path, num_frames: int, size: int) -> DecodedClip:
    """`read_clip`'s frames with where they come from. Raises ClipError.

    A frame folder is sampled before decoding (only the chosen images are read). A video is decoded to
    the end and every frame shrunk on the way, since container frame counts can be wrong; at `size`
    pixels a side the whole clip is small.
    """
    if source.is_dir():
        files = frame_files(source)
        if not files:
            raise ClipError("holds no frame images (.png, .jpg)")
        indices = sample_indices(len(files), num_frames)
        images = [_open_image(files[i]) for i in indices]
        width, height = images[0].size
        return DecodedClip(np.stack([fit_square(image, size) for image in images]), indices, len(files), width,
                           height, None)
    if not source.is_file():
        raise ClipError("is missing")
    frames, width, height = [], 0, 0
    for image in _video_frames(source):
        width, height = image.size
        frames.append(fit_square(image, size))
    if not frames:
        raise ClipError("holds no decodable frames")
    indices = sample_indices(len(frames), num_frames)
    return DecodedClip(np.stack([frames[i] for i in indices]), indices, len(frames), width, height,
                       _frame_rate(source))


def _frame_rate(path: Path) -> float | None:
    try:
        with av.open(str(path.absolute())) as container:
            rate = container.streams.video[0].average_rate
    except (*_VIDEO_ERRORS, IndexError):
        return None  # decoded a moment ago; a rate it does not state is left unknown
    return float(rate) if rate else None


def frame_size(source: Path) -> tuple[int, int]:
    """A clip's (width, height) from its first image's or its video stream's header. Raises ClipError."""
    if source.is_dir():
        files = frame_files(source)
        if not files:
            raise ClipError("holds no frame images (.png, .jpg)")
        try:
            with Image.open(files[0]) as image:
                return image.size
        except _IMAGE_ERRORS as error:
            raise ClipError(f"frame {files[0].name} cannot be opened ({_why(error)})") from None
    if not source.is_file():
        raise ClipError("is missing")
    try:
        with av.open(str(source.absolute())) as container:
            if not container.streams.video:
                raise ClipError("has no video stream")
            stream = container.streams.video[0]
            return stream.codec_context.width, stream.codec_context.height
    except _VIDEO_ERRORS as error:
        raise ClipError(f"cannot be opened ({_why(error)})") from None


def read_video_file(path: Path) -> np.ndarray:
    """Every frame of a video file as it is stored: uint8 [T, H, W, 3]. Raises ClipError."""
    if not path.is_file():
        raise ClipError("is missing")
    frames = [np.asarray(image.convert("RGB")) for image in _video_frames(path)]
    if not frames:
        raise ClipError("holds no decodable frames")
    return np.stack(frames)


def count_frames(source: Path, decode: bool = False) -> int:
    """A clip's frame count. Without `decode`: a folder's image count, or a video's from its container
    (its packets when the header has no count). With `decode`: every frame decoded and counted, which
    also finds corrupt data past the header. Raises ClipError."""
    if source.is_dir():
        files = frame_files(source)
        if not files:
            raise ClipError("holds no frame images (.png, .jpg)")
        for path in files if decode else files[:1]:
            _open_image(path)
        return len(files)
    if not source.is_file():
        raise ClipError("is missing")
    if decode:
        count = sum(1 for _ in _video_frames(source))
    else:
        try:
            with av.open(str(source.absolute())) as container:
                if not container.streams.video:
                    raise ClipError("has no video stream")
                stream = container.streams.video[0]
                count = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        except _VIDEO_ERRORS as error:
            raise ClipError(f"cannot be opened ({_why(error)})") from None
    if count == 0:
        raise ClipError("holds no frames")
    return count


def fingerprint(source: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the clip's file, or of each image of a frame folder: what changes
    when the clip is replaced or edited."""
    files = frame_files(source) if source.is_dir() else [source]
    stats = [(path.name, path.stat()) for path in files]
    return [(name, stat.st_size, stat.st_mtime_ns) for name, stat in stats]
