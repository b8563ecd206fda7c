"""What a training run holds: built once at set-up, saved in every checkpoint, restored on resume.

The phases of `text2sign.training.trainer` share one `Training`; nothing else carries state between them.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from text2sign import hardware
from text2sign.checkpoint import checkpoint_name, load_checkpoint, save_checkpoint
from text2sign.config import Config, to_json
from text2sign.data import DataError, build_dataset
from text2sign.diffusion import GaussianDiffusion
from text2sign.pipeline import TextToSign
from text2sign.training.distributed import World
from text2sign.training.optimization import warmup_cosine_schedule
from text2sign.training.planner_first import plan_poses_first
from text2sign.training.reporting import Tracker


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset
    sample_prompts: list[str]


@dataclass
class Position:
    """Where the run is. Every checkpoint saves it; a resume restores it."""

    step: int = 0
    epoch: int = 0  # completed epochs
    ema_updates: int = 0
    best_val_loss: float = math.inf
    best_checkpoint: Path | None = None
    train_time_before: float = 0.0  # seconds trained by earlier processes of a resumed run


@dataclass
class LogWindow:
    """The optimizer steps since the last logged point.

    Each step's loss and gradient norm stay on the device until they are read, at log steps and before
    anything is saved: a read (.item()) makes the CPU wait for the GPU, and one per micro-batch would
    stall it every step. The read also checks them for NaN/Inf (`trainer.read_steps`)."""

    started: float
    # per step: [mean loss of its micro-batches, grad norm, mean pose-plan loss (0 without a pose plan)]
    unread: list[Tensor] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    pose_losses: list[float] = field(default_factory=list)
    videos: int = 0
    last_loss: float = math.nan  # as last logged
    last_grad_norm: float = math.nan
    last_finite_loss: float = math.nan  # of the last step read, for a divergence message
    last_finite_step: int = 0
    memory_samples: list[float] = field(default_factory=list)


@dataclass
class Training:
    config: Config
    world: World
    device: torch.device
    run_dir: Path
    tracker: Tracker
    splits: Splits
    model: TextToSign
    ema_model: TextToSign | None
    ddp: DistributedDataParallel | None  # the model as DDP wraps it, when there are several processes
    forward: nn.Module  # what the loss calls: the model, wrapped by DDP and torch.compile as configured
    diffusion: GaussianDiffusion
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # noise, timesteps and caption dropout: the same stream on every rank
    trainable: list[nn.Parameter]
    num_steps: int
    per_epoch: int
    validation_steps: list[int]
    checkpoint_steps: list[int]
    local_accum: int  # micro-batches this process accumulates per step
    resume_from: Path | None
    position: Position
    window: LogWindow
    started: float  # perf_counter when this process began training
    metadata: dict = field(default_factory=dict)
    last_checkpoint: Path | None = None
    interrupted: bool = False

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def samples_dir(self) -> Path:
        return self.run_dir / "samples"

    @property
    def use_bf16(self) -> bool:
        return self.autocast_dtype is not None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return hardware.autocast_dtype(self.config.train, self.device)

    @property
    def memory_format(self) -> torch.memory_format:
        return memory_format_of(self.config)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.use_bf16)

    def no_sync(self, sync: bool):
        """DDP reduces gradients only on the last micro-batch of a step: earlier ones skip the all-reduce."""
        return nullcontext() if sync or self.ddp is None else self.ddp.no_sync()

    def eval_model(self) -> TextToSign:
        """The weights validation, samples and evaluation use: the EMA's when there is one."""
        return self.ema_model if self.ema_model is not None else self.model

    def train_time(self) -> float:
        return self.position.train_time_before + time.perf_counter() - self.started


def memory_format_of(config: Config) -> torch.memory_format:
    return torch.channels_last_3d if config.train.channels_last else torch.contiguous_format


def steps_per_epoch(config: Config, train_samples: int) -> int:
    """Optimizer steps per epoch over `train_samples` clips; an incomplete last batch or accumulation group
    is dropped. (A real corpus's train split is known only once read: data.train_size is its cap.)"""
    return max(1, train_samples // config.train.batch_size // config.train.grad_accum)


def total_steps(config: Config, train_samples: int) -> int:
    """The run's length: train.max_steps, or train.epochs over `train_samples` clips, whichever ends first
    (0 is no limit of that kind; `validate` makes sure one is set)."""
    tc = config.train
    limits = [tc.epochs * steps_per_epoch(config, train_samples)] if tc.epochs else []
    if tc.max_steps:
        limits.append(tc.max_steps)
    return min(limits)


def validation_steps(config: Config, per_epoch: int, num_steps: int) -> list[int]:
    """The steps after which a run of `num_steps` validates: each epoch's end in a run with train.epochs, else
    train.validations steps evenly spaced, the last at the last step, however long the corpus's epochs are (a
    corpus of 90 clips would otherwise validate `small` every 11 steps)."""
    if config.train.epochs:
        return list(range(per_epoch, num_steps + 1, per_epoch))
    count = min(config.train.validations, num_steps)
    return [k * num_steps // count for k in range(1, count + 1)]


def checkpoint_steps(config: Config, validations: list[int], num_steps: int) -> list[int]:
    """The validation steps that also checkpoint and sample: every train.checkpoint_every-th, and the last step.
    (A run of epochs that train.max_steps ends mid-epoch checkpoints that step too: `trainer.checkpoint_last_step`.)"""
    every = config.train.checkpoint_every
    return [step for count, step in enumerate(validations, 1) if count % every == 0 or step == num_steps]


def set_up(config: Config, run_dir: Path, tracker: Tracker, resume_from: Path | None, world: World) -> Training:
    """Device, data, model, EMA, optimizer, and the position of a resumed run."""
    tc = config.train
    local_accum = world.local_accumulation(tc.grad_accum)
    torch.manual_seed(tc.seed)
    device = hardware.pick_device(tc.device)
    hardware.check_cpu_bf16(tc, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)

    splits = load_splits(config)
    model, ema_model = build_models(config, device)
    if config.model.pose_plan and config.model.pose_plan_steps and resume_from is None:
        # Before DDP wraps the model: every rank plans alike, and DDP's first broadcast makes sure of it.
        first = plan_poses_first(config, model, ema_model, splits.train)
        if world.is_main:
            tracker.log_metrics(first, step=0)
    if world.rank:  # the same initial weights on every rank, but each its own dropout
        torch.manual_seed(tc.seed + 1000 * world.rank)
    ddp = None
    if world.distributed:
        ddp = DistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if device.type == "cuda" else None)
    forward = ddp or model
    optimizer, trainable = build_optimizer(config, model, device)
    per_epoch, num_steps = steps_per_epoch(config, len(splits.train)), total_steps(config, len(splits.train))
    validations = validation_steps(config, per_epoch, num_steps)
    scheduler = warmup_cosine_schedule(optimizer, tc.warmup_steps, num_steps)
    training = Training(
        config=config, world=world, device=device, run_dir=run_dir, tracker=tracker, splits=splits,
        model=model, ema_model=ema_model, ddp=ddp, forward=torch.compile(forward) if tc.compile else forward,
        diffusion=GaussianDiffusion(config.diffusion), optimizer=optimizer, scheduler=scheduler,
        generator=torch.Generator().manual_seed(tc.seed), trainable=trainable, num_steps=num_steps,
        per_epoch=per_epoch, validation_steps=validations,
        checkpoint_steps=checkpoint_steps(config, validations, num_steps), local_accum=local_accum,
        resume_from=resume_from, position=Position(), window=LogWindow(started=time.perf_counter()),
        started=time.perf_counter(),
    )
    if resume_from is not None:
        restore(training, load_checkpoint(resume_from, map_location=device))
    training.window.last_finite_step = training.position.step
    return training


def load_splits(config: Config) -> Splits:
    tc = config.train
    train_set, val_set, test_set = (build_dataset(config.data, split) for split in ("train", "val", "test"))
    if config.data.num_workers > 0 and hasattr(train_set, "prerender"):
        train_set.prerender(config.data.num_workers)  # before the workers fork, so they share the clips
    if len(train_set) < tc.batch_size * tc.grad_accum:
        raise DataError(f"{config.data.name}: the train split has {len(train_set)} usable clips, fewer than one optimizer "
                        f"step takes (train.batch_size x train.grad_accum = {tc.batch_size * tc.grad_accum}); lower those.")
    return Splits(train_set, val_set, test_set, test_set.texts[: tc.num_sample_prompts])


def build_models(config: Config, device: torch.device) -> tuple[TextToSign, TextToSign | None]:
    """The model in training mode and, when EMA is on, its frozen EMA copy."""
    model = TextToSign(config).to(device)
    model.unet.to(memory_format=memory_format_of(config))
    model.train()
    if not config.ema.enabled:
        return model, None
    text_encoder = model.text_encoder
    model.text_encoder = None  # the EMA copy shares a frozen encoder rather than duplicating it
    ema_model = copy.deepcopy(model).requires_grad_(False).eval()
    model.text_encoder = text_encoder
    ema_model.text_encoder = text_encoder if config.text.freeze else copy.deepcopy(text_encoder).requires_grad_(False)
    return model, ema_model


def build_optimizer(config: Config, model: TextToSign, device: torch.device
                    ) -> tuple[torch.optim.Optimizer, list[nn.Parameter]]:
    tc = config.train
    param_groups = [{"params": list(model.unet.parameters()), "lr": tc.lr, "name": "unet"}]
    if not config.text.freeze:
        param_groups.append({"params": list(model.text_encoder.parameters()), "lr": config.text.lr, "name": "text_encoder"})
    optimizer = torch.optim.AdamW(param_groups, weight_decay=tc.weight_decay, betas=(0.9, 0.999),
                                  fused=device.type == "cuda")
    return optimizer, [p for group in param_groups for p in group["params"]]


def restore(training: Training, state: dict) -> None:
    """Continue from a checkpoint: weights, optimizer, schedule, random streams and position."""
    training.model.load_trainable_state_dict(state["model"])
    if training.ema_model is not None:
        training.ema_model.load_trainable_state_dict(state["ema"])
    training.optimizer.load_state_dict(state["optimizer"])
    training.scheduler.load_state_dict(state["scheduler"])
    training.generator.set_state(state["generator"])
    restore_rank_rng(training, state)
    p = training.position
    p.step, p.epoch, p.ema_updates = state["step"], state["epoch"], state["ema_updates"]
    p.best_val_loss, p.train_time_before = state["best_val_loss"], state["train_time_s"]
    p.best_checkpoint = training.checkpoint_dir / state["best_checkpoint"] if state["best_checkpoint"] else None


def restore_rank_rng(training: Training, state: dict) -> None:
    """Each rank's torch RNG (dropout) as its own rank saved it; a rank the saving run did not have starts
    a stream of its own. (Checkpoints from before data parallelism hold one state: rank 0's.)"""
    rank, device = training.world.rank, training.device
    cpu_states = state.get("rank_rng", [state["torch_rng"]])
    cuda_states = state.get("rank_cuda_rng", [state["cuda_rng"]] if "cuda_rng" in state else [])
    if rank < len(cpu_states):
        torch.set_rng_state(cpu_states[rank])
    else:
        torch.manual_seed(training.config.train.seed + 1000 * rank + state["step"])
    if device.type == "cuda" and rank < len(cuda_states):
        torch.cuda.set_rng_state(cuda_states[rank], device)


def save(training: Training, val_loss: float) -> Path:
    """Checkpoint the run where it is; remember it as the best if its val/loss is the lowest so far.
    Every rank calls it (each hands over its RNG state); rank 0 writes the file."""
    cuda = training.device.type == "cuda"
    rng = training.world.gather((torch.get_rng_state(), torch.cuda.get_rng_state(training.device) if cuda else None))
    p, path = training.position, training.checkpoint_dir / checkpoint_name(training.position.step)
    if val_loss < p.best_val_loss:
        p.best_val_loss, p.best_checkpoint = val_loss, path
    if not training.world.is_main:
        return path
    state = {
        "model": training.model.trainable_state_dict(),
        "ema": training.ema_model.trainable_state_dict() if training.ema_model is not None else {},
        "optimizer": training.optimizer.state_dict(),
        "scheduler": training.scheduler.state_dict(),
        "generator": training.generator.get_state(),
        "torch_rng": rng[0][0],
        "rank_rng": [cpu for cpu, _ in rng],
        "step": p.step,
        "epoch": p.epoch,
        "ema_updates": p.ema_updates,
        "best_val_loss": p.best_val_loss,
        "best_checkpoint": p.best_checkpoint.name if p.best_checkpoint else "",
        "train_time_s": training.train_time(),
        "world_size": training.world.size,
        "config": to_json(training.config),
    }
    if cuda:
        state["cuda_rng"], state["rank_cuda_rng"] = rng[0][1], [gpu for _, gpu in rng]
    save_checkpoint(state, path)
    training.tracker.log_artifact(path, "checkpoints")
    return path
