"""Sinusoidal position embeddings, shared by the diffusion timestep and the frame index."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sinusoidal_embedding(positions: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Embed positions [N] (integers or floats) as [N, dim] float32 of cosines then sines.

    Frequencies run geometrically from 1 down to 1/max_period (Vaswani et al. 2017, section 3.5), so
    nearby diffusion timesteps and nearby frames get similar, but distinguishable, embeddings.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal_embedding needs an even dim, got {dim}")
    half = dim // 2
    exponents = torch.arange(half, dtype=torch.float32, device=positions.device) / half
    frequencies = torch.exp(-math.log(max_period) * exponents)
    angles = positions.float()[:, None] * frequencies[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
