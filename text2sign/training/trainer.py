"""The training loop: set up, then optimizer steps, epoch after epoch; at the validation steps validate, and at
the checkpoint steps among them checkpoint and sample (`state.validation_steps`, `state.checkpoint_steps`);
finish with a last checkpoint and a summary. The phases share one `Training` (text2sign.training.state) and
report through a `Tracker`.

Every source of randomness is explicit so that a run resumed from a checkpoint ends with exactly the
weights of the uninterrupted run: the corpus is a pure function of its seed and the sample index, each
epoch's order comes from (seed, epoch), and noise, timesteps and caption dropout come from one CPU
generator whose state is saved in every checkpoint. Under torchrun the same loop runs in every process
as DistributedDataParallel (text2sign.training.distributed says who does what).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from text2sign import hardware
from text2sign.checkpoint import checkpoint_name, latest_checkpoint
from text2sign.config import Config, flatten, to_json
from text2sign.data import collate, corpus_report
from text2sign.data.fingerprint import split_digest
from text2sign.diffusion import NoiseDraw
from text2sign.training.distributed import SINGLE, World, is_lost_process_error, rank_order
from text2sign.training.ema import ema_decay, update_ema
from text2sign.training.failures import ProcessLost, TrainingDiverged, TrainingOutOfMemory
from text2sign.training.optimization import step_optimizer
from text2sign.training.reporting import NullTracker, Tracker
from text2sign.training.state import Training, save, set_up, steps_per_epoch, total_steps
from text2sign.training.validation import leave_stop_signals_to_the_main_process, validation_losses, write_samples

__all__ = ["TrainResult", "train", "steps_per_epoch", "total_steps", "epoch_order", "drop_captions"]


@dataclass
class TrainResult:
    steps: int
    epochs: int
    train_time_s: float
    final_loss: float
    best_val_loss: float
    best_checkpoint: Path | None
    last_checkpoint: Path
    run_dir: Path
    interrupted: bool = False


@dataclass
class MicroBatchDraw:
    """The random numbers of one micro-batch: caption dropout's uniforms [B], then timesteps and noise."""

    caption_uniforms: Tensor
    noise: NoiseDraw


def train(
    config: Config,
    run_dir: str | Path,
    tracker: Tracker | None = None,
    resume_from: str | Path | None = None,
    progress: bool = True,
    should_stop: Callable[[int], bool] | None = None,
    world: World = SINGLE,
) -> TrainResult:
    """Train one run of `config`, writing checkpoints and samples under `run_dir` and reporting to `tracker`.

    `should_stop(step)` is asked after every optimizer step; when it says yes (on any rank), the run
    checkpoints where it is (no samples, no summary: the run is not over) and returns with `interrupted`
    set (a signal handler's way to stop cleanly). Raises `TrainingDiverged` on a NaN/Inf loss or gradient
    norm, before any checkpoint could save the diverged weights; `TrainingOutOfMemory` when CUDA runs out
    of memory; `ProcessLost` when another process of a data-parallel run is gone.
    """
    training = set_up(config, Path(run_dir), tracker or NullTracker(), Path(resume_from) if resume_from else None, world)
    describe(training)
    training.started = training.window.started = time.perf_counter()
    bar = tqdm(total=training.num_steps, initial=training.position.step, disable=not progress or not world.is_main,
               desc="train", unit="step", dynamic_ncols=True)
    try:
        while training.position.step < training.num_steps and not training.interrupted:
            train_epoch(training, should_stop, bar)
        bar.close()
        checkpoint_last_step(training)
        world.barrier()
    except torch.cuda.OutOfMemoryError as error:
        raise TrainingOutOfMemory(training.position.step, config, training.device, error) from error
    except RuntimeError as error:
        if world.distributed and is_lost_process_error(error):
            raise ProcessLost(training.position.step, world.size, latest_checkpoint(training.checkpoint_dir),
                              error) from error
        raise
    return finish(training)


def describe(training: Training) -> None:
    """What the run is, before it starts: params, config, hardware, corpus and datasets (rank 0 only)."""
    if not training.world.is_main:
        return
    config, tracker, splits, model = training.config, training.tracker, training.splits, training.model
    training.run_dir.mkdir(parents=True, exist_ok=True)
    tracker.log_params(flatten(config))
    (training.run_dir / "config.json").write_text(to_json(config))
    tracker.log_artifact(training.run_dir / "config.json")
    training.metadata = {
        "hardware": hardware.describe(training.device),
        "unet_parameters": sum(p.numel() for p in model.unet.parameters()),
        "text_encoder_parameters": sum(p.numel() for p in model.text_encoder.parameters()),
        "steps_per_epoch": training.per_epoch,
        "total_steps": training.num_steps,
        "train_samples": len(splits.train),
        "world_size": training.world.size,
        "resumed_from": str(training.resume_from) if training.resume_from else None,
    }
    tracker.set_tags({"device": str(training.metadata["hardware"]["device_name"]),
                      "world_size": str(training.world.size)})
    data_metrics, data_tags = corpus_report({"train": splits.train, "val": splits.val, "test": splits.test})
    tracker.set_tags(data_tags)
    tracker.log_metrics(data_metrics, step=training.position.step)
    for split, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        tracker.log_dataset(split, config.data.name, split_digest(config.data, dataset.texts), len(dataset))


def train_epoch(training: Training, should_stop: Callable[[int], bool] | None, bar: tqdm) -> None:
    """Optimizer steps to the end of the epoch, of the run, or to a stop; validation where it is due."""
    p, tc = training.position, training.config.train
    for micro_batches in steps_of_epoch(training):
        optimizer_step(training, micro_batches)
        update_ema_if_due(training)
        bar.update(1)
        if p.step % tc.log_every == 0 or p.step == training.num_steps:
            log_window(training)
            bar.set_postfix(loss=f"{training.window.last_loss:.4f}", epoch=p.epoch)
        # Asked only while steps remain: a stop request at the last step changes nothing.
        if p.step < training.num_steps:
            training.interrupted = training.world.any(should_stop is not None and should_stop(p.step))
        if p.step == (p.epoch + 1) * training.per_epoch:
            p.epoch += 1  # before a checkpoint saves it: a resume starts the next epoch's order
        if p.step in training.validation_steps:
            validate(training)
        if p.step == training.num_steps or training.interrupted:
            break


def epoch_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_samples, generator=generator).tolist()


def steps_of_epoch(training: Training) -> Iterator[list[dict]]:
    """The epoch's remaining optimizer steps, each as this rank's micro-batches."""
    p, tc = training.position, training.config.train
    effective = tc.batch_size * tc.grad_accum
    first = (p.step - p.epoch * training.per_epoch) * effective  # a resumed run may start mid-epoch
    order = epoch_order(len(training.splits.train), tc.seed, p.epoch)[first : training.per_epoch * effective]
    loader = DataLoader(
        training.splits.train, batch_size=tc.batch_size, sampler=rank_order(order, tc.batch_size, tc.grad_accum, training.world),
        collate_fn=collate, drop_last=True, num_workers=training.config.data.num_workers,
        pin_memory=training.device.type == "cuda", worker_init_fn=leave_stop_signals_to_the_main_process,
    )
    batches = iter(loader)
    while len(group := list(itertools.islice(batches, training.local_accum))) == training.local_accum:
        yield group


def draw_step(training: Training) -> list[MicroBatchDraw]:
    """This rank's random numbers for one optimizer step. Every rank draws every micro-batch slot of the step
    in slot order and keeps its own, so the stream does not depend on the number of processes."""
    data, tc = training.config.data, training.config.train
    shape = (tc.batch_size, 3, data.num_frames, data.image_size, data.image_size)
    draws = []
    for slot in range(tc.grad_accum):
        uniforms = torch.rand(tc.batch_size, generator=training.generator)
        noise = training.diffusion.draw_noise(shape, training.generator)
        if training.world.owns_slot(slot):
            draws.append(MicroBatchDraw(uniforms, noise))
    return draws


def drop_captions(texts: list[str], rate: float, generator: torch.Generator) -> list[str]:
    """Classifier-free guidance training: some captions become the empty text, the unconditional case."""
    return drop_captions_where(texts, rate, torch.rand(len(texts), generator=generator))


def drop_captions_where(texts: list[str], rate: float, uniforms: Tensor) -> list[str]:
    return ["" if r < rate else t for t, r in zip(texts, uniforms.tolist())]


def optimizer_step(training: Training, micro_batches: list[dict]) -> None:
    """Accumulate the gradients of this rank's micro-batches (DDP averages them over ranks on the last), then
    clip, step and advance the LR schedule (`text2sign.training.optimization`)."""
    window, accum, device = training.window, training.local_accum, training.device
    step_loss, step_pose_loss = torch.zeros((), device=device), torch.zeros((), device=device)
    for index, (batch, draw) in enumerate(zip(micro_batches, draw_step(training))):
        with training.no_sync(sync=index == accum - 1):
            objective, loss, pose_loss = micro_batch_objective(training, batch, draw)
            (objective / accum).backward()
        step_loss += loss.detach()
        if pose_loss is not None:
            step_pose_loss += pose_loss.detach()
        window.videos += len(batch["video"]) * training.world.size
    grad_norm = step_optimizer(training.optimizer, training.scheduler, training.trainable, training.config.train.grad_clip)
    window.unread.append(torch.stack([step_loss / accum, grad_norm.detach().float(), step_pose_loss / accum]))
    training.position.step += 1


def micro_batch_objective(training: Training, batch: dict, draw: MicroBatchDraw) -> tuple[Tensor, Tensor, Tensor | None]:
    """What one micro-batch adds to its step's gradients: (objective, diffusion loss, pose-plan loss or None
    without a pose plan). Its captions are dropped where `draw` says so: classifier-free guidance training."""
    video = batch["video"].to(training.device, non_blocking=True).contiguous(memory_format=training.memory_format)
    rate = training.config.diffusion.text_dropout
    context, mask = training.model.encode(drop_captions_where(list(batch["texts"]), rate, draw.caption_uniforms))
    with training.autocast():
        denoiser, pose_loss = pose_plan_training(training, batch, context, mask, draw.caption_uniforms < rate)
        loss = training.diffusion.training_loss(denoiser, video, context, mask, draw=draw.noise)
    objective = loss if pose_loss is None else loss + training.config.model.pose_plan_weight * pose_loss
    return objective, loss, pose_loss


def pose_plan_training(training: Training, batch: dict, context: Tensor, mask: Tensor,
                       dropped: Tensor) -> tuple[Callable[..., Tensor], Tensor | None]:
    """What the diffusion loss calls, and the pose plan's own loss (None without a pose plan).

    The planner learns the true keypoints from the caption (`PosePlanner.loss`). The UNet
    is shown the true skeleton (teacher forcing), so it learns to draw what it is shown from the first step,
    whatever the planner knows yet; a row whose caption was dropped is shown the plan of the empty text, as
    the unconditional half of guided sampling will be."""
    planner = training.model.unet.pose_planner
    if planner is None:
        return training.forward, None
    truth = batch["keypoints"].to(training.device, non_blocking=True)
    pose_loss, planned = planner.loss(context, mask, truth)
    shown = torch.where(dropped.to(training.device)[:, None, None, None], planned.detach().to(truth.dtype), truth)
    return functools.partial(training.forward, keypoints=shown), pose_loss


def update_ema_if_due(training: Training) -> None:
    config, p = training.config, training.position
    if training.ema_model is None or p.step % config.ema.update_every:
        return
    decay = ema_decay(p.ema_updates, config.ema.decay)
    update_ema(training.ema_model.unet, training.model.unet, decay)
    if not config.text.freeze:
        update_ema(training.ema_model.text_encoder, training.model.text_encoder, decay)
    p.ema_updates += 1


def read_steps(training: Training) -> None:
    """Bring the unread steps' losses (averaged over ranks) and gradient norms to the CPU; stop the run at
    the first NaN/Inf, named to its exact step and before a checkpoint could save it."""
    window, step = training.window, training.position.step
    if not window.unread:
        return
    values = training.world.mean(torch.stack(window.unread)).tolist()
    first_step = step - len(values) + 1
    for offset, (loss_value, grad_norm_value, pose_loss_value) in enumerate(values):
        for quantity, value in (("train/loss", loss_value), ("train/grad_norm", grad_norm_value)):
            if not math.isfinite(value):
                last_good = latest_checkpoint(training.checkpoint_dir) or training.resume_from
                raise TrainingDiverged(first_step + offset, quantity, value, window.last_finite_loss,
                                       window.last_finite_step, last_good, training.config, training.device)
        window.last_finite_loss, window.last_finite_step = loss_value, first_step + offset
        window.losses.append(loss_value)
        window.pose_losses.append(pose_loss_value)
    window.last_grad_norm = values[-1][1]
    window.unread.clear()


def log_window(training: Training) -> None:
    """One point per logged step: the window's mean loss, LR, gradient norm, throughput of all ranks, memory."""
    read_steps(training)
    window, now = training.window, time.perf_counter()
    window.last_loss = sum(window.losses) / len(window.losses)
    memory = hardware.memory_metrics(training.device)
    window.memory_samples.append(next(iter(memory.values())))
    pose = {"train/pose_loss": sum(window.pose_losses) / len(window.pose_losses)} if training.model.unet.pose_planner else {}
    training.tracker.log_metrics(
        {
            "train/loss": window.last_loss,
            **pose,
            "train/lr": training.scheduler.get_last_lr()[0],
            "train/grad_norm": window.last_grad_norm,
            "train/videos_per_s": window.videos / max(now - window.started, 1e-9),
            **memory,
        },
        step=training.position.step,
    )
    window.losses.clear()
    window.pose_losses.clear()
    window.videos, window.started = 0, now


def validate(training: Training) -> None:
    """Validate; at the checkpoint steps also checkpoint and sample. Samples are named for the epoch when it has
    just ended (every validation of a run of epochs, and of a synthetic run at its scale's steps), else the step."""
    read_steps(training)
    p, main = training.position, training.world.is_main
    val_loss = math.inf
    if main:
        metrics = validation_losses(training)
        val_loss = metrics["val/loss"]
        training.tracker.log_metrics(metrics, step=p.step)
    if p.step in training.checkpoint_steps:
        training.last_checkpoint = save(training, val_loss)
        if main and not training.interrupted:
            at_epoch_end = p.step == p.epoch * training.per_epoch
            write_samples(training, f"epoch_{p.epoch:04d}" if at_epoch_end else f"step_{p.step:08d}")
    training.world.barrier()


def checkpoint_last_step(training: Training) -> None:
    """The run's last step always has a checkpoint. A stop checkpoint does not compete for the best: the
    uninterrupted run has none at this step, and the resumed run must end with the same best checkpoint.
    It also saves a validation pass in the grace period between a scheduler's SIGTERM and its SIGKILL."""
    read_steps(training)
    step, main = training.position.step, training.world.is_main
    if training.last_checkpoint is not None and training.last_checkpoint.name == checkpoint_name(step):
        return
    val_loss = validation_losses(training, text_gap=False)["val/loss"] if main and not training.interrupted else math.inf
    training.last_checkpoint = save(training, val_loss)
    if main and not training.interrupted:
        write_samples(training, f"step_{step:08d}")


def finish(training: Training) -> TrainResult:
    """The summary of a whole run (an interrupted one gets it when it is resumed and ends) and metadata.json."""
    p, device, tracker = training.position, training.device, training.tracker
    train_time = training.train_time()
    if training.world.is_main and not training.interrupted:
        summary = {"summary/train_time_s": train_time, "summary/steps": float(p.step)}
        if device.type == "cuda":
            samples = training.window.memory_samples
            summary["summary/peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / hardware.GIB
            summary["summary/avg_gpu_mem_gib"] = sum(samples) / max(1, len(samples))
        else:
            summary["summary/peak_cpu_rss_gib"] = hardware.peak_rss_gib()
        tracker.log_metrics(summary, step=p.step)
    if training.world.is_main:
        training.metadata.update({
            "train_time_s": train_time, "steps": p.step, "epochs": p.epoch, "best_val_loss": p.best_val_loss,
            "best_checkpoint": p.best_checkpoint.name if p.best_checkpoint else None,
            "text_cache_size": training.model.text_encoder.cache_size})
        (training.run_dir / "metadata.json").write_text(json.dumps(training.metadata, indent=2, default=str))
        tracker.log_artifact(training.run_dir / "metadata.json")
    return TrainResult(p.step, p.epoch, train_time, training.window.last_loss, p.best_val_loss, p.best_checkpoint,
                       training.last_checkpoint, training.run_dir, training.interrupted)
