"""The video transformer: spatial, temporal and text cross-attention over a UNet feature map.

A feature map [B, C, T, H, W] is read as B*T*H*W tokens of width C. Each block attends
  - spatially: the H*W tokens of one frame attend to each other (frames are batch entries),
  - temporally: the T tokens of one pixel attend to each other (pixels are batch entries),
  - to the text: every token attends to the caption's token embeddings,
then applies a feed-forward, each step pre-LayerNorm and residual. Factorizing space and time keeps
the cost at O(T*(HW)^2 + HW*T^2) instead of O((T*HW)^2) for full 3-D attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from text2sign.models.embeddings import sinusoidal_embedding


class Attention(nn.Module):
    """Multi-head attention; self-attention when no context is given, cross-attention otherwise."""

    def __init__(self, dim: int, head_dim: int, context_dim: int | None = None):
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"attention width {dim} is not a multiple of head_dim {head_dim}")
        self.num_heads = dim // head_dim
        context_dim = dim if context_dim is None else context_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor | None = None, key_mask: Tensor | None = None) -> Tensor:
        """x [N, Lq, dim], context [N, Lk, context_dim] (None: x itself), key_mask [N, Lk] bool
        (True = may be attended to; every row needs at least one True) -> [N, Lq, dim]."""
        context = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        # [N, L, dim] -> [N, heads, L, head_dim], the layout scaled_dot_product_attention expects.
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in (q, k, v))
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.to_out(out.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """GEGLU feed-forward (Shazeer 2020): a GELU-gated hidden layer four times the width."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.proj_in = nn.Linear(dim, 2 * mult * dim)
        self.proj_out = nn.Linear(mult * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x [..., dim] -> [..., dim]."""
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(value * F.gelu(gate))


class VideoTransformerBlock(nn.Module):
    """Spatial self-attention, temporal self-attention, text cross-attention, feed-forward."""

    def __init__(self, dim: int, head_dim: int, context_dim: int):
        super().__init__()
        self.norm_spatial = nn.LayerNorm(dim)
        self.spatial_attention = Attention(dim, head_dim)
        self.norm_temporal = nn.LayerNorm(dim)
        self.temporal_attention = Attention(dim, head_dim)
        self.norm_cross = nn.LayerNorm(dim)
        self.cross_attention = Attention(dim, head_dim, context_dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        """x [B, T, H*W, C], context [B, L, D], context_mask [B, L] bool -> [B, T, H*W, C]."""
        batch, frames, pixels, dim = x.shape

        h = x.reshape(batch * frames, pixels, dim)
        h = h + self.spatial_attention(self.norm_spatial(h))

        h = h.reshape(batch, frames, pixels, dim).transpose(1, 2).reshape(batch * pixels, frames, dim)
        # Attention alone is blind to order; the frame index tells a token which moment it is.
        frame_position = sinusoidal_embedding(torch.arange(frames, device=x.device), dim).to(h.dtype)
        h = h + self.temporal_attention(self.norm_temporal(h) + frame_position)

        h = h.reshape(batch, pixels, frames, dim).transpose(1, 2).reshape(batch, frames * pixels, dim)
        h = h + self.cross_attention(self.norm_cross(h), context, context_mask)
        h = h + self.feed_forward(self.norm_ff(h))
        return h.reshape(batch, frames, pixels, dim)


class VideoTransformer(nn.Module):
    """A residual stack of VideoTransformerBlocks on a feature map, identity at initialisation."""

    def __init__(self, channels: int, depth: int, head_dim: int, context_dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.proj_in = nn.Linear(channels, channels)
        self.blocks = nn.ModuleList(VideoTransformerBlock(channels, head_dim, context_dim) for _ in range(depth))
        self.proj_out = nn.Linear(channels, channels)
        # A zero output projection makes the whole stack start as the identity, so a fresh UNet is
        # a plain convolutional network and attention is blended in as it learns (LDM, Rombach et al. 2022).
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        """x [B, C, T, H, W], context [B, L, D], context_mask [B, L] bool -> [B, C, T, H, W]."""
        batch, channels, frames, height, width = x.shape
        # [B, C, T, H, W] -> [B, T, H*W, C]; free when x is channels_last_3d.
        h = self.norm(x).permute(0, 2, 3, 4, 1).reshape(batch, frames, height * width, channels)
        h = self.proj_in(h)
        for block in self.blocks:
            h = block(h, context, context_mask)
        h = self.proj_out(h)
        h = h.reshape(batch, frames, height, width, channels).permute(0, 4, 1, 2, 3)
        return x + h
