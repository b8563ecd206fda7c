"""Exponential moving average of the model's weights: the weights that are evaluated and sampled from."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def update_ema(ema_model: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for every parameter; buffers are copied.

    Both models must have the same architecture (parameters and buffers in the same order).
    Buffers (e.g. running statistics) are not trained by gradient, so averaging them means nothing.
    """
    ema_parameters = list(ema_model.parameters())
    parameters = [p.detach() for p in model.parameters()]
    if len(ema_parameters) != len(parameters):
        raise ValueError(f"EMA model has {len(ema_parameters)} parameters, the model {len(parameters)}")
    # lerp(ema, p, w) = ema + w * (p - ema) = (1 - w) * ema + w * p, in one fused kernel per group.
    torch._foreach_lerp_(ema_parameters, parameters, 1.0 - decay)
    for ema_buffer, buffer in zip(ema_model.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


def ema_decay(update_count: int, max_decay: float) -> float:
    """The decay for the EMA's update number `update_count` (0-based): min(max_decay, (1 + n) / (10 + n)).

    Warm-up: at 0.9999 from the first update the average would remember the random initial weights for
    ~10,000 updates, longer than a short run; the ramp starts at 0.1 and reaches 0.99 after ~900 updates.
    """
    return min(max_decay, (1 + update_count) / (10 + update_count))
