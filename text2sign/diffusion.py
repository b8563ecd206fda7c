"""The Gaussian diffusion process, apart from the network: the training loss and the samplers.

Schedules, noising and sampler updates are diffusers' schedulers; this file chooses and wires them:
DDPMScheduler gives x_t and the training target, DDIM or DPM-Solver++ walks back from noise.
The network is any callable  model(x [B, C, T, H, W], timesteps [B], context [B, L, D], mask [B, L])
returning the configured prediction (noise "epsilon" or velocity "v_prediction") of x's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor

from text2sign.config import DiffusionConfig

Denoiser = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]

SAMPLERS = ("ddim", "dpmsolver++")


def motion_weights(x0: Tensor, strength: float) -> Tensor:
    """Per-pixel loss weights [B, 1, T, H, W] that lean on what moves: 1 + strength * motion.

    `motion` is how far a pixel departs from its own mean over the clip, scaled to mean 1 per clip. In a
    signing clip the hands and arms are a few percent of the pixels and all of the meaning, while the
    body and background, which the text hardly decides, fill the plain MSE; strength 1 gives the moving
    pixels about half of the loss. x0 [B, C, T, H, W] clean clips. Strength 0 gives weights of 1.
    """
    if strength == 0:
        return torch.ones_like(x0[:, :1])
    motion = (x0 - x0.mean(dim=2, keepdim=True)).abs().mean(dim=1, keepdim=True)
    motion = motion / motion.mean(dim=(2, 3, 4), keepdim=True).clamp_min(1e-6)
    return 1.0 + strength * motion


@dataclass(frozen=True)
class NoiseDraw:
    """What a training loss draws at random for a batch: timesteps [B] (int64) and noise [B, C, T, H, W]."""

    timesteps: Tensor
    noise: Tensor


class GaussianDiffusion:
    def __init__(self, config: DiffusionConfig):
        self.config = config
        self.noise_scheduler = DDPMScheduler(**self._schedule_kwargs())

    def _schedule_kwargs(self) -> dict:
        return dict(
            num_train_timesteps=self.config.num_train_timesteps,
            beta_schedule=self.config.beta_schedule,
            prediction_type=self.config.prediction_type,
        )

    def training_loss(self, model: Denoiser, x0: Tensor, context: Tensor, context_mask: Tensor,
                      generator: torch.Generator | None = None, *, plain: bool = False,
                      draw: NoiseDraw | None = None) -> Tensor:
        """Mean squared error of the model's prediction at a uniformly drawn timestep: a float32 scalar.

        x0 [B, C, T, H, W] clean clips in [-1, 1], context [B, L, D], context_mask [B, L] bool.
        Timesteps and noise come from `draw` (`draw_noise`) or are drawn here from `generator`.
        `plain` weighs every pixel alike whatever `motion_weight` says: validation uses it, so val losses
        compare across ablations.
        """
        if draw is None:
            draw = self.draw_noise(tuple(x0.shape), generator)
        timesteps = draw.timesteps.to(x0.device)
        noise = draw.noise.to(device=x0.device, dtype=x0.dtype)

        noisy = self.noise_scheduler.add_noise(x0, noise, timesteps)
        if self.config.prediction_type == "epsilon":
            target = noise
        else:
            target = self.noise_scheduler.get_velocity(x0, noise, timesteps)
        prediction = model(noisy, timesteps, context, context_mask)
        squared_error = F.mse_loss(prediction.float(), target.float(), reduction="none")
        if plain:
            return squared_error.mean()
        if self.config.motion_weight == 0:
            per_sample = squared_error.flatten(1).mean(dim=1)
        else:
            pixel_weights = motion_weights(x0.float(), self.config.motion_weight).expand_as(squared_error)
            per_sample = (squared_error * pixel_weights).flatten(1).sum(dim=1) / pixel_weights.flatten(1).sum(dim=1)
        return per_sample.mean()

    def draw_noise(self, shape: tuple[int, ...], generator: torch.Generator) -> NoiseDraw:
        """The timesteps [B] and the noise `shape` [B, C, T, H, W] of one training batch, in that order, on
        the CPU from a CPU generator: a seed gives the same draws on any device, and a data-parallel
        rank can draw every micro-batch of a step and keep its own (`text2sign.training.distributed`)."""
        timesteps = torch.randint(0, self.config.num_train_timesteps, (shape[0],), generator=generator)
        return NoiseDraw(timesteps, torch.randn(shape, generator=generator, dtype=torch.float32))

    def make_sampler(self, sampler: str) -> DDIMScheduler | DPMSolverMultistepScheduler:
        """A fresh scheduler for one sampling run (schedulers keep per-run state)."""
        if sampler == "ddim":
            # "trailing" spacing starts at the last training timestep, pure noise, as training saw it
            # (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed", sec. 3.3);
            # alpha 1 at the end makes the last step land on the x0 estimate. clip_sample clamps every
            # step's x0 estimate to the data range [-1, 1].
            return DDIMScheduler(**self._schedule_kwargs(), timestep_spacing="trailing",
                                 set_alpha_to_one=True, clip_sample=True)
        if sampler == "dpmsolver++":
            # Thresholding with sample_max_value 1 is the same clamp of each x0 estimate to [-1, 1] as
            # DDIM's clip_sample; dpmsolver++ (data prediction) is the variant made for guidance.
            return DPMSolverMultistepScheduler(**self._schedule_kwargs(), algorithm_type="dpmsolver++",
                                               solver_order=2, thresholding=True, sample_max_value=1.0)
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")

    @torch.no_grad()
    def sample(self, model: Denoiser, context: Tensor, context_mask: Tensor, null_context: Tensor,
               null_mask: Tensor, shape: tuple[int, ...], *, guidance_scale: float, steps: int,
               sampler: str, generator: torch.Generator, shared_noise: bool = False,
               noise: Tensor | None = None) -> Tensor:
        """Generate clips from noise: [B, C, T, H, W] = `shape`, float32 in [-1, 1].

        context [B, L, D] and context_mask [B, L] encode the captions; null_context [B or 1, L, D] and
        null_mask [B or 1, L] the empty text, for classifier-free guidance (Ho & Salimans 2022):
        prediction = uncond + guidance_scale * (cond - uncond), both halves in one batched call.
        guidance_scale 1 is the conditional model alone, and skips the unconditional half.
        The starting noise is drawn from `generator` on its own device, then moved to context's.
        `shared_noise` starts every clip from one draw, so clips differ only by what their texts make of it.
        `noise` [B, C, T, H, W], when given, is the starting noise instead of a draw from `generator`.
        """
        scheduler = self.make_sampler(sampler)
        device = context.device
        batch = shape[0]
        scheduler.set_timesteps(steps, device=device)

        guided = guidance_scale != 1.0
        if guided:
            null_context = null_context.expand(batch, -1, -1)
            null_mask = null_mask.expand(batch, -1)
            context = torch.cat([context, null_context])
            context_mask = torch.cat([context_mask, null_mask])

        if noise is None:
            draw = (1, *shape[1:]) if shared_noise else shape
            noise = torch.randn(draw, generator=generator, device=generator.device, dtype=torch.float32)
        x = noise.to(device).expand(shape).contiguous()
        x = x * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(x, t)
            if guided:
                model_input = torch.cat([model_input, model_input])
            timesteps = t.expand(model_input.shape[0])
            prediction = model(model_input, timesteps, context, context_mask).float()
            if guided:
                conditional, unconditional = prediction.chunk(2)
                prediction = unconditional + guidance_scale * (conditional - unconditional)
            step = scheduler.step(prediction, t, x)
            x = step.prev_sample

        if isinstance(scheduler, DDIMScheduler):
            # When `steps` does not divide num_train_timesteps, DDIM's last step stops at timestep 0
            # (alpha just below 1) instead of the clean end: its x0 estimate is the cleaner answer.
            x = step.pred_original_sample
        return x.clamp(-1.0, 1.0)
