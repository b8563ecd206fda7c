"""What one evaluation generates and how: its own module, free of torch, so that the `evaluate` entry point
can check its parameters and answer a usage error in a second rather than after loading PyTorch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalSettings:
    num_videos: int = 32
    sampler: str = "dpmsolver++"
    steps: int = 25
    guidance: float = 4.0
    seed: int = 0
    batch_size: int = 8
    steering: bool = True
    # The steering check generates its texts twice more (empty, shuffled): on the first this many, 0 for all.
    # On 64 paired clips a medium run's gap measured 0.774 +- 0.105 (docs/steering.md): far enough from 0,
    # at half the extra videos of all 128.
    steering_videos: int = 64
    guidance_sweep: tuple[float, ...] = (1.0, 2.0, 4.0, 7.5)  # () for none
