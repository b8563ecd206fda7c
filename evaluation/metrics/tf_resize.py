"""TensorFlow 1's `tf.image.resize_bilinear` (align_corners=False, no half-pixel centres), the FVD reference's resize.

Output pixel i samples the input at i * in_size / out_size: pixel corners line up at 0, not centres at 0.5,
so the image shifts by up to half a pixel against PyTorch's `interpolate(align_corners=False)`, which FVD's
reference did not use. No antialiasing: shrinking skips pixels, as TensorFlow 1 did.
"""

from __future__ import annotations

import torch
from torch import Tensor


def legacy_bilinear_taps(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """For each output index: the lower and upper source index and the weight of the upper one.

    Computed in float32, as TensorFlow's kernel does (`in = i * scale`, scale = in_size / out_size).
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    source = torch.arange(out_size, dtype=torch.float32) * scale
    lower = source.floor()
    weight = source - lower
    upper = source.ceil().clamp(max=in_size - 1)
    return lower.long().to(device), upper.long().to(device), weight.to(device)


def resize_bilinear_tf1(images: Tensor, size: tuple[int, int]) -> Tensor:
    """[..., H, W] -> [..., size[0], size[1]] float32, interpolated along W first, then H, like TensorFlow."""
    images = images.float()
    height, width = images.shape[-2:]
    if (height, width) == tuple(size):
        return images
    left, right, x_weight = legacy_bilinear_taps(width, size[1], images.device)
    rows = images[..., left] + (images[..., right] - images[..., left]) * x_weight
    top, bottom, y_weight = legacy_bilinear_taps(height, size[0], images.device)
    upper, lower = rows[..., top, :], rows[..., bottom, :]
    return upper + (lower - upper) * y_weight[:, None]
