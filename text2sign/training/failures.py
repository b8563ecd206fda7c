"""The ways a training run stops that its user must act on, each with a message that says what to do.

`mlproject/train.py` catches `TrainingFailure`, prints the message without a traceback, tags the run
`failure_reason` (`reason` is the tag's first word, so the UI can filter on it) and ends it FAILED.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from text2sign.config import Config
from text2sign.hardware import autocast_dtype

GIB = 1024**3


class TrainingFailure(RuntimeError):
    """Training cannot go on; `reason` names the kind of failure in one word."""

    reason = "failed"


class TrainingDiverged(TrainingFailure):
    """The loss or the gradient norm became NaN or infinite."""

    reason = "diverged"

    def __init__(self, step: int, quantity: str, value: float, last_finite_loss: float, last_finite_step: int,
                 last_checkpoint: Path | None, config: Config, device: torch.device):
        self.step = step
        tc = config.train
        if math.isfinite(last_finite_loss):
            before = f"the last finite train/loss was {last_finite_loss:.6g} at step {last_finite_step}"
        else:
            before = "no step before it had a finite loss"
        kept = (f"The last good checkpoint, {last_checkpoint}, is kept; nothing after the divergence was saved."
                if last_checkpoint else "No checkpoint was written before the divergence, and none after it.")
        precision = ("bf16 autocast, which keeps 8 bits of mantissa (train.precision=bf16: rerun with "
                     "train.precision=fp32 to rule it out)"
                     if autocast_dtype(tc, device) is not None else "a numerical overflow in fp32 (rare: look at the other causes first)")
        super().__init__(
            f"training diverged: {quantity} was {value} at step {step}; {before}. {kept} "
            f"Usual causes: a learning rate too high (train.lr={tc.lr:g}, warm-up {tc.warmup_steps} steps: "
            f"try half, or a longer train.warmup_steps); {precision}; a bad sample in the data (a NaN, or a "
            f"clip the loader decoded wrongly); gradient clipping too loose to stop one bad batch "
            f"(train.grad_clip={tc.grad_clip:g}). Resuming from the checkpoint with the same config replays the "
            "same steps exactly and diverges again: change one of these in a new run."
        )


class TrainingOutOfMemory(TrainingFailure):
    """The GPU ran out of memory; the message holds the batch, the memory figures and the fix."""

    reason = "out_of_memory"

    def __init__(self, step: int, config: Config, device: torch.device, error: BaseException):
        tc, m = config.train, config.model
        batch = (f"train.batch_size={tc.batch_size} x train.grad_accum={tc.grad_accum} "
                 f"(effective batch {tc.batch_size * tc.grad_accum}) of {config.data.num_frames} frames at "
                 f"{config.data.image_size}x{config.data.image_size}, model.channels={m.channels}")
        fixes = []
        smaller = _largest_proper_divisor(tc.batch_size)
        if smaller:
            accum = tc.grad_accum * tc.batch_size // smaller
            fixes.append(f'a smaller batch with more accumulation, which keeps the effective batch and so the steps, '
                         f'the LR schedule and the results comparable: -P overrides="train.batch_size={smaller} '
                         f'train.grad_accum={accum}" (added to your other overrides)')
        if not m.gradient_checkpointing:
            fixes.append("model.gradient_checkpointing=true, which recomputes activations in the backward pass "
                         "(less memory for more compute)")
        if tc.precision != "bf16":
            fixes.append("train.precision=bf16, which halves the activations")
        if not fixes:
            fixes.append("a smaller model (model.channels) or shorter, smaller clips (data.num_frames, data.image_size)")
        super().__init__(
            f"out of GPU memory with {step} steps done, at {batch}. {memory_report(device)}{_requested(error)} "
            f"Fix: {'; or '.join(fixes)}."
        )


def memory_report(device: torch.device) -> str:
    """The allocator's figures for `device` in one sentence, or why there are none."""
    if device.type != "cuda":
        return f"Memory figures: none, the run is on the {device.type} (no GPU allocator to ask)."
    free, total = torch.cuda.mem_get_info(device)
    return (f"Memory on {torch.cuda.get_device_name(device)}: {torch.cuda.memory_allocated(device) / GIB:.2f} GiB "
            f"allocated now, {torch.cuda.max_memory_allocated(device) / GIB:.2f} GiB at the peak, "
            f"{torch.cuda.memory_reserved(device) / GIB:.2f} GiB reserved by PyTorch, {free / GIB:.2f} GiB free of "
            f"{total / GIB:.2f} GiB (memory other processes hold is neither allocated nor free).")


def _requested(error: BaseException) -> str:
    """The size of the allocation that failed, when PyTorch's message says it."""
    found = re.search(r"Tried to allocate ([\d.]+ [KMGT]i?B)", str(error))
    return f" The failed allocation asked for {found.group(1)}." if found else ""


def _largest_proper_divisor(n: int) -> int:
    """The biggest batch below `n` that splits it evenly, so accumulation keeps the effective batch; 0 for 1."""
    return next((d for d in range(n // 2, 0, -1) if n % d == 0), 0)


class ProcessLost(TrainingFailure):
    """Another process of a data-parallel run is gone (killed, crashed, its node lost)."""

    reason = "process_lost"

    def __init__(self, step: int, world_size: int, last_checkpoint: Path | None, error: BaseException):
        self.step = step
        kept = (f"Its last checkpoint, {last_checkpoint}, is kept: resume the run from it, with this number of "
                "processes or any other that divides train.grad_accum."
                if last_checkpoint else "No checkpoint was written before it: start the run again.")
        super().__init__(f"a process of this {world_size}-process run stopped at step {step} ({error}). {kept} "
                         "The process that stopped first has the cause in its own output (torchrun names its rank).")
