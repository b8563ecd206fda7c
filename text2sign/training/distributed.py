"""One run over several processes: PyTorch's DistributedDataParallel, started by `torchrun`.

torchrun starts one process per device and tells each its place (RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address); `join_world` reads it. Every rank trains; rank 0 alone tracks, validates, samples
and writes checkpoints, while the others wait at a barrier.

The config's batch is the effective batch, whatever the number of processes: an optimizer step takes
train.batch_size x train.grad_accum clips. Under N processes each runs micro-batches of train.batch_size
and accumulates grad_accum / N of them, so N must divide train.grad_accum.

Which clips and which noise each rank gets. A step covers `grad_accum` micro-batch slots of the epoch's
order; slot s goes to rank s % N, as its micro-batch s // N. Every rank draws the random numbers of all
slots, in slot order, from the same generator, and keeps its own: a clip gets the same caption dropout,
timestep and noise at any N, so N processes train as one does (up to the order of float sums), and a
run resumed with another N continues the same stream.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from text2sign.config import ConfigError

# Every rank but 0 waits at a barrier while rank 0 validates, writes a checkpoint and draws samples at an
# epoch's end (minutes at `full` on one GPU); a collective that waits longer than this fails the run.
DEFAULT_TIMEOUT_MIN = 60.0
TIMEOUT_VARIABLE = "TEXT2SIGN_DIST_TIMEOUT_MIN"


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes; the default is a run of one."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def local_accumulation(self, grad_accum: int) -> int:
        """Micro-batches each process accumulates per optimizer step."""
        if grad_accum % self.size:
            raise ConfigError(
                f"train.grad_accum={grad_accum} cannot be shared by {self.size} processes: the effective batch "
                f"(train.batch_size x train.grad_accum) is kept whatever the number of processes, and each process "
                f"takes grad_accum / {self.size} micro-batches. Use a number of processes that divides "
                f"{grad_accum}, or a new run whose train.grad_accum is a multiple of {self.size}.")
        return grad_accum // self.size

    def owns_slot(self, slot: int) -> bool:
        return slot % self.size == self.rank

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of `values` over all ranks (every rank gets it)."""
        if not self.distributed:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.size

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one: a stop request seen by one process stops them all."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, value: object) -> list[object]:
        """Every rank's `value`, in rank order."""
        if not self.distributed:
            return [value]
        values: list[object] = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


SINGLE = World()


def rank_order(order: list[int], batch_size: int, grad_accum: int, world: World) -> list[int]:
    """This rank's share of `order` (whole optimizer steps of batch_size x grad_accum clips), micro-batch
    after micro-batch: the sampler of its DataLoader, so no clip is loaded and thrown away."""
    effective = batch_size * grad_accum
    mine: list[int] = []
    for start in range(0, len(order) - effective + 1, effective):
        for slot in range(world.rank, grad_accum, world.size):
            mine += order[start + slot * batch_size : start + (slot + 1) * batch_size]
    return mine


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def join_world() -> World:
    """The World torchrun describes in the environment, its process group started; a run of one otherwise.

    One group serves both kinds of tensor: gloo for CPU tensors, NCCL for CUDA ones, so a CPU run on a
    GPU machine and the CPU-side collectives (stop requests, RNG states) work alike."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return SINGLE
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    minutes = float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_MIN))
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=minutes))
    return world


def leave_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def is_lost_process_error(error: BaseException) -> bool:
    """Whether `error` is a collective failing because another process of the run is gone (killed, crashed,
    its node lost): gloo and NCCL report it as a RuntimeError from the collective or from DDP's backward."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(
        marker in text for marker in ("gloo", "nccl", "connection closed", "connection reset", "broken pipe"))
