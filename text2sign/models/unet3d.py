"""The video denoiser: a 3-D UNet that predicts noise (or velocity) for a noisy clip, given text.

Layout (Ho et al. 2022, "Video Diffusion Models", with (2+1)-D convolutions as in Tran et al. 2018):
  conv_in -> down levels (residual blocks, video transformers at `attention_levels`, spatial /2)
  -> middle (residual, transformer, residual) -> up levels mirrored, each block taking a skip
  -> GroupNorm, SiLU, zero-initialised conv_out.
Only height and width are down-sampled: clips can be as short as two frames.
The network never sees the noise schedule; it gets the timestep index as a number.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from text2sign.config import ModelConfig
from text2sign.models.attention import VideoTransformer
from text2sign.models.embeddings import sinusoidal_embedding
from text2sign import skeleton
from text2sign.models.pose_plan import PosePlanner, pose_maps


def spatial_conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv3d:
    """A 3x3 convolution applied to each frame on its own: [B, C, T, H, W] -> [B, C', T, H/stride, W/stride]."""
    return nn.Conv3d(in_channels, out_channels, kernel_size=(1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1))


def temporal_conv(channels: int) -> nn.Conv3d:
    """A 3-tap convolution along time at each pixel: [B, C, T, H, W] -> [B, C, T, H, W]."""
    return nn.Conv3d(channels, channels, kernel_size=(3, 1, 1), padding=(1, 0, 0))


def zero_(module: nn.Module) -> nn.Module:
    """Zero a layer's weights and bias, so the residual branch it ends starts as a no-op."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    """A residual block of a spatial conv and a (2+1)-D conv, with the conditioning applied as FiLM."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = spatial_conv(in_channels, out_channels)
        # Scale and shift of the normalised features (FiLM): stronger conditioning than adding a bias.
        self.timestep_proj = nn.Linear(embedding_dim, 2 * out_channels)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.dropout = nn.Dropout(dropout)
        # A separable 3x3x3: spatial then temporal, without a nonlinearity between, at 12/27 of the cost.
        self.conv2_spatial = spatial_conv(out_channels, out_channels)
        self.conv2_temporal = zero_(temporal_conv(out_channels))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv3d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        """x [B, C_in, T, H, W], embedding [B, E] -> [B, C_out, T, H, W]."""
        h = self.conv1(F.silu(self.norm1(x)))
        film = self.timestep_proj(F.silu(embedding))[:, :, None, None, None]  # [B, 2C, 1, 1, 1]
        scale, shift = film.chunk(2, dim=1)
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        h = self.conv2_temporal(self.conv2_spatial(self.dropout(h)))
        return self.skip(x) + h


class UNetBlock(nn.Module):
    """A ResBlock, followed by a VideoTransformer at attention levels."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, context_dim: int,
                 config: ModelConfig, attention: bool):
        super().__init__()
        self.res = ResBlock(in_channels, out_channels, embedding_dim, config.dropout)
        self.transformer = (
            VideoTransformer(out_channels, config.transformer_depth, config.head_dim, context_dim) if attention else None
        )

    def forward(self, x: Tensor, embedding: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        """x [B, C_in, T, H, W], embedding [B, E], context [B, L, D], context_mask [B, L] -> [B, C_out, T, H, W]."""
        h = self.res(x, embedding)
        if self.transformer is not None:
            h = self.transformer(h, context, context_mask)
        return h


class Downsample(nn.Module):
    """Halve height and width with a strided conv; frames are kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = spatial_conv(channels, channels, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [B, C, T, H/2, W/2]."""
        return self.conv(x)


class Upsample(nn.Module):
    """Double height and width (nearest neighbour, then a conv to smooth); frames are kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = spatial_conv(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [B, C, T, 2H, 2W]."""
        return self.conv(F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest"))


class Level(nn.Module):
    """The blocks of one resolution, then an optional change of resolution."""

    def __init__(self, blocks: list[UNetBlock], resample: nn.Module | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.resample = resample


class UNet3D(nn.Module):
    """Predicts the diffusion target (noise or velocity) of a noisy clip, conditioned on text tokens."""

    def __init__(self, config: ModelConfig, context_dim: int, in_channels: int = 3):
        super().__init__()
        self.config = config
        widths = [config.channels * mult for mult in config.channel_mult]
        last_level = len(widths) - 1
        embedding_dim = 4 * config.channels

        def block(in_channels: int, out_channels: int, level: int) -> UNetBlock:
            return UNetBlock(in_channels, out_channels, embedding_dim, context_dim, config,
                             attention=level in config.attention_levels)

        self.timestep_mlp = nn.Sequential(
            nn.Linear(config.channels, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        self.pose_planner = PosePlanner(context_dim, config.pose_plan_width, config.pose_plan_depth,
                                        config.head_dim) if config.pose_plan else None
        # With a pose plan the skeleton comes in beside the noisy clip: a channel per arm segment and per finger.
        condition_channels = len(skeleton.CHANNELS) if config.pose_plan else 0
        self.conv_in = spatial_conv(in_channels + condition_channels, config.channels)
        # `pose_at_every_level`: one zero-initialised conv per lower resolution, so switching it on starts from
        # the same function as off, and the skeleton is added where the down path enters that resolution.
        self.pose_inputs = nn.ModuleList(
            zero_(spatial_conv(condition_channels, width)) for width in widths[:-1]
        ) if config.pose_plan and config.pose_at_every_level else None

        # Every output of the down path is kept as a skip for the up path: record their widths.
        skip_widths = [config.channels]
        channels = config.channels
        self.down_levels = nn.ModuleList()
        for level, width in enumerate(widths):
            blocks = []
            for _ in range(config.num_res_blocks):
                blocks.append(block(channels, width, level))
                channels = width
                skip_widths.append(channels)
            downsample = Downsample(channels) if level != last_level else None
            if downsample is not None:
                skip_widths.append(channels)
            self.down_levels.append(Level(blocks, downsample))

        self.middle = nn.ModuleList([
            UNetBlock(channels, channels, embedding_dim, context_dim, config, attention=True),
            UNetBlock(channels, channels, embedding_dim, context_dim, config, attention=False),
        ])

        self.up_levels = nn.ModuleList()
        for level in reversed(range(len(widths))):
            blocks = []
            # One more block than on the way down: it consumes the skip taken after the downsample.
            for _ in range(config.num_res_blocks + 1):
                blocks.append(block(channels + skip_widths.pop(), widths[level], level))
                channels = widths[level]
            upsample = Upsample(channels) if level != 0 else None
            self.up_levels.append(Level(blocks, upsample))

        self.norm_out = nn.GroupNorm(8, channels)
        # Zero output: the untrained model predicts 0, the mean of both targets, a calm starting loss.
        self.conv_out = zero_(spatial_conv(channels, in_channels))

    def _run(self, block: UNetBlock, h: Tensor, embedding: Tensor, context: Tensor, context_mask: Tensor) -> Tensor:
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            # Recompute activations in the backward pass: memory for compute, the usual trade at 64x64x16.
            return checkpoint(block, h, embedding, context, context_mask, use_reentrant=False)
        return block(h, embedding, context, context_mask)

    def _skeleton(self, x: Tensor, context: Tensor, context_mask: Tensor, keypoints: Tensor | None) -> Tensor | None:
        """With a pose plan, the skeleton's bone maps at x's size [B, bones, T, H, W] (planned from the text when
        `keypoints` is None); without one, None."""
        if self.pose_planner is None:
            if keypoints is not None:
                raise ValueError("keypoints given to a UNet without a pose plan (model.pose_plan is off)")
            return None
        if keypoints is None:
            keypoints = self.pose_planner(context, context_mask, x.shape[2])
        return pose_maps(keypoints.to(x.dtype), x.shape[-1])

    def _add_skeleton(self, h: Tensor, bones: Tensor | None, level: int) -> Tensor:
        """h [B, C, T, H', W'] as it enters down level `level` (> 0), plus the skeleton averaged to H' x W'
        when `pose_at_every_level` is on; otherwise h."""
        if self.pose_inputs is None or bones is None:
            return h
        factor = bones.shape[-1] // h.shape[-1]
        pooled = F.avg_pool3d(bones, kernel_size=(1, factor, factor))
        return h + self.pose_inputs[level - 1](pooled)

    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor, context_mask: Tensor,
                keypoints: Tensor | None = None) -> Tensor:
        """x [B, C, T, H, W] noisy clip, timesteps [B] (int or float; a scalar is broadcast),
        context [B, L, D] text token embeddings, context_mask [B, L] bool (True = real token)
        -> [B, C, T, H, W] the prediction.
        With a pose plan, `keypoints` [B, T, K, 3] (`text2sign.skeleton`) is the skeleton to draw (training shows the true one);
        None plans it from the text, as sampling does. Without a pose plan it must be None."""
        batch = x.shape[0]
        timesteps = torch.as_tensor(timesteps, device=x.device).expand(batch)
        embedding = self.timestep_mlp(sinusoidal_embedding(timesteps, self.config.channels).to(x.dtype))

        # A caption with no real token would give attention rows of -inf only, that is NaN. Let such
        # a row see its first token; rows with any real token are unchanged.
        context_mask = context_mask.bool().clone()
        context_mask[:, 0] |= ~context_mask.any(dim=1)

        bones = self._skeleton(x, context, context_mask, keypoints)
        h = self.conv_in(x if bones is None else torch.cat([x, bones], dim=1))
        skips = [h]
        for index, level in enumerate(self.down_levels):
            for block in level.blocks:
                h = self._run(block, h, embedding, context, context_mask)
                skips.append(h)
            if level.resample is not None:
                h = self._add_skeleton(level.resample(h), bones, index + 1)
                skips.append(h)

        for block in self.middle:
            h = self._run(block, h, embedding, context, context_mask)

        for level in self.up_levels:
            for block in level.blocks:
                h = self._run(block, torch.cat([h, skips.pop()], dim=1), embedding, context, context_mask)
            if level.resample is not None:
                h = level.resample(h)

        return self.conv_out(F.silu(self.norm_out(h)))
