"""One optimizer step and one learning-rate schedule, for everything this project trains.

The video model (`text2sign.training.trainer`), the pose planner's first phase (`text2sign.training.planner_first`), the judge
(`evaluation.judge.training`) and the speed benchmark all descend the same way: gradients accumulated by
the caller's backward passes are clipped, stepped on, the schedule advances, and the gradients are cleared.
They differ only in their parameters: which weights, what clip, how long a warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(step: int, warmup: int, total: int, decay_from: int | None = None) -> float:
    """LR multiplier at `step` (0-based): the lower of a linear warm-up, (step + 1) / (warmup + 1), which
    reaches 1 at `warmup`, and a cosine that falls from 1 at `decay_from` (default: `warmup`) to 0 at `total`.

    With the default the cosine starts where the warm-up ends (the video model). `decay_from=0` starts it
    at the first step, under the ramp (the judge's recipe); `warmup=0` is a plain cosine (the planner's).
    """
    decay_from = warmup if decay_from is None else decay_from
    progress = min(1.0, max(0.0, (step - decay_from) / max(1, total - decay_from)))
    return min((step + 1) / (warmup + 1), 0.5 * (1.0 + math.cos(math.pi * progress)))


def warmup_cosine_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int,
                           decay_from: int | None = None) -> LambdaLR:
    """`warmup_cosine` as the schedule of `optimizer`: every group's LR is its own base LR times the multiplier."""
    # A lambda, not a callable object: LambdaLR then saves no state of it, as checkpoints always had.
    return LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup, total, decay_from))


def step_optimizer(optimizer: torch.optim.Optimizer, schedule: LambdaLR, parameters: Iterable[nn.Parameter],
                   grad_clip: float | None) -> Tensor | None:
    """Take one step on the gradients the caller's backward passes accumulated, then clear them for the next.

    The gradients are clipped to total norm `grad_clip` first (None: not clipped); returns their norm before
    clipping, as a tensor on their device (reading it would make the CPU wait), or None when not clipped.
    The LR of this step is the schedule's current one; the schedule then moves on to the next step's."""
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip) if grad_clip is not None else None
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm
