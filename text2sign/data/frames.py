"""From a clip's frames to the model's input: which frames, which pixels, which numbers.

Clips are sampled uniformly over their whole length (PHOENIX clips run 2-12 s at 25 fps; the model
sees a fixed T frames), cropped to the centred square (signers stand in the middle of the picture in
both PHOENIX and How2Sign) and resized; the model gets float32 [3, T, H, W] in [-1, 1], like the
synthetic corpus.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def sample_indices(available: int, wanted: int) -> np.ndarray:
    """The frame at the centre of each of `wanted` equal stretches of a clip of `available` frames.

    A clip shorter than `wanted` frames repeats its frames evenly (3 frames to 8: 0 0 0 1 1 2 2 2)
    rather than padding its end, so the signing keeps its pace across the whole clip.
    """
    if available < 1 or wanted < 1:
        raise ValueError(f"need at least one frame to sample from and to, got {available} and {wanted}")
    return np.floor((np.arange(wanted) + 0.5) * available / wanted).astype(np.int64)


def fit_square(image: Image.Image, size: int) -> np.ndarray:
    """The centred square of `image`, resized to `size` pixels a side: uint8 [size, size, 3].

    Cropping before resizing keeps the aspect ratio; `reducing_gap` first shrinks large frames by
    whole factors (box filter), which is fast and antialiased, before the bicubic resize.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.convert("RGB").resize(
        (size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side), reducing_gap=2.0
    )
    return np.asarray(square, dtype=np.uint8)


def to_video_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [3, T, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(3, 0, 1, 2))).float().div_(127.5).sub_(1.0)
