"""A real clip's keypoints, from whatever source has them, brought to the frames and pixels the model sees.

A source (How2Sign's OpenPose JSON, a `.pose` file, the MediaPipe extractor's cache) gives a `KeypointTrack`:
the skeleton of `text2sign.skeleton` in the pixels of the source's frames, at the source's own frame rate
and length. `fit_track` then takes the clip's pixels' path: the same instants `frames.sample_indices` picks
for the pixels, the same centred square (`frames.fit_square`), coordinates in [0, 1] of that square.

`hands_missing` names a split whose clips mostly show no hand, in the same words for `inspect` and for a run's
warning and tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from text2sign import skeleton


# A sign is mostly in the hands, so a clip whose keypoints show no hand in any frame gives the pose plan
# and the judge nothing of its sign. A few such clips are normal (a detector's miss, a signer turned away),
# and the losses skip missing points, so they only thin the hands' supervision; when they are most of the
# clips, the keypoints failed on the corpus (clips too small or too blurred for the detector, hands out of
# the frame) and a plan trained on them learns the body's motion only. Hence: more than half.
HANDLESS_LIMIT = 0.5
NO_HANDS_ADVICE = ("The pose plan and the judge learn signs from the hands; on these keypoints they learn the body's "
                   "motion only. Check that the clips show the signer's hands, then extract the keypoints again "
                   "(python -m text2sign.data extract-keypoints redoes changed clips; MediaPipe finds no hands in very "
                   "small or blurred frames), or train without the pose plan: -P ablation=pixel_only")


class KeypointError(Exception):
    """A keypoint file that cannot be read. The message names the file and says why."""


@dataclass(frozen=True)
class KeypointTrack:
    """points [N, 50, 3]: x, y in pixels of a `width` x `height` frame, confidence (0 = missing).

    `fps` None: the N frames are the clip's own frames, one each, so they align with it by position.
    With `fps`, frame n is at time n / fps, and the track aligns with the clip by time (a `.pose` file
    may run at another rate than its video, and end earlier or later).
    `pixel_centre`: where the source puts the centre of pixel 0 (see `skeleton.to_square`)."""

    points: np.ndarray
    width: int
    height: int
    pixel_centre: float = 0.0
    fps: float | None = None


def fit_track(track: KeypointTrack, frame_indices: np.ndarray, clip_frames: int,
              clip_fps: float | None = None) -> tuple[np.ndarray, int]:
    """The track at the clip frames `frame_indices` (of `clip_frames`, at `clip_fps`), cut to the centred square:
    float32 [len(frame_indices), 50, 3] in [0, 1], and the count of present points the square cut off."""
    n = len(track.points)
    if track.fps is not None and clip_fps:
        times = (frame_indices + 0.5) / clip_fps
        rows = np.floor(times * track.fps).astype(np.int64)
    else:
        rows = np.floor((frame_indices + 0.5) * n / clip_frames).astype(np.int64)
    beyond = (rows < 0) | (rows >= n)
    points = track.points[np.clip(rows, 0, n - 1)].copy()
    points[beyond] = skeleton.missing(1)[0]  # the track ended before the clip: nothing seen there
    return skeleton.to_square(points, track.width, track.height, track.pixel_centre)


def shows_hands(points: np.ndarray) -> bool:
    """Whether keypoints [N, 50, 3] hold any point of either hand in any frame."""
    return bool((points[:, skeleton.RIGHT_HAND :, 2] > 0).any())


def hands_missing(handless: int, clips: int) -> str:
    """What to tell the user when more than HANDLESS_LIMIT of `clips` show no hand in any frame (then
    NO_HANDS_ADVICE says why it matters and what to do); "" otherwise."""
    if not clips or handless <= HANDLESS_LIMIT * clips:
        return ""
    return (f"{handless} of {clips} clips ({100 * handless / clips:.0f}%) show no hand in any frame "
            f"(in the centred square the model sees)")


def load_track(path: Path, frame_size: tuple[int, int] | None = None) -> KeypointTrack:
    """A clip's keypoints from `path`, read by what it is. Raises KeypointError naming the file.

        a folder      OpenPose's JSON, a file per frame (How2Sign's 2D keypoints): `frame_size`, the
                      (width, height) of the clip's frames, is needed, since OpenPose does not record it
        x.pose        a pose-format file (MediaPipe Holistic or OpenPose layout), beside a folder corpus's clip
        x.npz         an entry of the MediaPipe extractor's cache (`text2sign.data.extract`)
    """
    if not path.exists():
        raise KeypointError(f"{path}: missing")
    if path.is_dir():
        # Imported here: openpose.py builds on this module's KeypointTrack and KeypointError.
        from text2sign.data import openpose

        if frame_size is None:
            raise ValueError(f"{path}: OpenPose JSON does not record its frame size; pass the clip's as frame_size")
        return openpose.read_folder(path, *frame_size)
    if path.suffix == ".pose":
        from text2sign.data import pose_file

        return pose_file.read_track(path)
    if path.suffix == ".npz":
        from text2sign.data import extract

        return extract.read_entry(path)
    raise KeypointError(f"{path}: not a keypoint source this version reads (a folder of OpenPose JSON, a .pose file, "
                        f"an extracted .npz entry)")


def fingerprint(path: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of a keypoint file, or of every file of a keypoint folder: what changes when the
    keypoints do (a clip cache key covers it). [] for a source that is missing."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:
        files = [path] if path.is_file() else []
    stats = [(file.name, file.stat()) for file in files]
    return [(name, stat.st_size, stat.st_mtime_ns) for name, stat in stats]
