"""The frame plan: one query per frame reads from the caption what is signed at its moment.

Signing is a sequence, and sign-language production systems align words to frames explicitly
(Progressive Transformers' counter, Saunders et al. 2020; T2S-GPT's durations, Yin et al. 2024). Here a
small transformer decoder does it: one query per frame, carrying the frame's place in the clip, attends
to the caption's tokens (and the frames to each other), and emits one vector per frame. The pose plan
(`text2sign.models.pose_plan`) is built on it: each frame's vector is that frame's pose. (Added to the UNet's
timestep embedding instead, as `model.frame_plan`, it was tried and dropped: docs/steering.md.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from text2sign.models.attention import Attention, FeedForward
from text2sign.models.embeddings import sinusoidal_embedding

# A clip holds its whole sentence whatever its length, so a frame's place is its time relative to the clip,
# in [0, 1]; stretched to this many "positions" so the sinusoids tell neighbouring frames apart.
RELATIVE_TIME_SCALE = 100.0


class FramePlanBlock(nn.Module):
    """Frames attend to each other, then to the caption, then a feed-forward; pre-LayerNorm, residual."""

    def __init__(self, width: int, head_dim: int):
        super().__init__()
        self.norm_frames = nn.LayerNorm(width)
        self.frame_attention = Attention(width, head_dim)
        self.norm_text = nn.LayerNorm(width)
        self.text_attention = Attention(width, head_dim)
        self.norm_ff = nn.LayerNorm(width)
        self.feed_forward = FeedForward(width)

    def forward(self, frames: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
        """frames [B, T, W], text [B, L, W], text_mask [B, L] bool -> [B, T, W]."""
        frames = frames + self.frame_attention(self.norm_frames(frames))
        frames = frames + self.text_attention(self.norm_text(frames), text, text_mask)
        return frames + self.feed_forward(self.norm_ff(frames))


class FramePlanner(nn.Module):
    """Caption tokens -> one vector per frame, `embedding_dim` wide."""

    def __init__(self, context_dim: int, width: int, embedding_dim: int, depth: int, head_dim: int):
        super().__init__()
        self.width = width
        self.text_in = nn.Linear(context_dim, width)
        self.time_in = nn.Linear(width, width)
        self.blocks = nn.ModuleList(FramePlanBlock(width, head_dim) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width)
        self.out = nn.Linear(width, embedding_dim)

    def forward(self, context: Tensor, context_mask: Tensor, num_frames: int) -> Tensor:
        """context [B, L, D] caption tokens, context_mask [B, L] bool (a row with at least one True)
        -> [B, T, E] a vector per frame, T = num_frames."""
        times = torch.linspace(0.0, 1.0, num_frames, device=context.device) * RELATIVE_TIME_SCALE
        queries = self.time_in(sinusoidal_embedding(times, self.width).to(context.dtype))
        frames = queries.expand(context.shape[0], -1, -1)
        text = self.text_in(context)
        for block in self.blocks:
            frames = block(frames, text, context_mask)
        return self.out(self.norm_out(frames))
