"""Temporal consistency: how smoothly a video changes from one frame to the next.

Definition used here (stated in docs/evaluation.md too): the mean structural similarity (SSIM, Wang et al.
2004) between consecutive frames, computed on luma with an 11x11 Gaussian window (sigma 1.5, shrunk to
fit small frames) and the standard constants, averaged over all frame pairs of a video:

    TC(video) = 1 / (T - 1) * sum_t SSIM(frame_t, frame_{t+1})        in [-1, 1], higher = smoother

It is computed on the generated and on the real videos, so the gap is visible: a generator that
flickers scores below the real signer, one that freezes scores above it. Unlike CLIP-based frame
consistency it needs no pretrained network, so it is always available offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Wang et al.: K1 = 0.01, K2 = 0.03 with dynamic range L (= 2 for images in [-1, 1]).
_C1 = (0.01 * 2.0) ** 2
_C2 = (0.03 * 2.0) ** 2


def _gaussian_window(size: int, sigma: float) -> Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """SSIM of image pairs: a, b [N, 1, H, W] in [-1, 1] -> [N] (mean of the SSIM map, valid region)."""
    size = min(11, a.shape[-1], a.shape[-2])
    size -= 1 - size % 2  # odd, so the window has a centre
    window = _gaussian_window(size, 1.5 * size / 11).to(a)[None, None]

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, window)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2))
    return ssim_map.flatten(1).mean(dim=1)


def luma(videos: Tensor) -> Tensor:
    """ITU-R BT.601 luma: [N, 3, T, H, W] -> [N, T, H, W]."""
    r, g, b = videos.unbind(dim=1)
    return 0.299 * r + 0.587 * g + 0.114 * b


@torch.no_grad()
def temporal_consistency(videos: Tensor) -> Tensor:
    """Mean consecutive-frame SSIM per video: [N, 3, T, H, W] in [-1, 1] -> [N]."""
    if videos.shape[2] < 2:
        raise ValueError(f"temporal consistency needs at least 2 frames, got {videos.shape[2]}")
    y = luma(videos.float())
    n, t, h, w = y.shape
    current = y[:, :-1].reshape(-1, 1, h, w)
    following = y[:, 1:].reshape(-1, 1, h, w)
    return ssim(current, following).view(n, t - 1).mean(dim=1)
