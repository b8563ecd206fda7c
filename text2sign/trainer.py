"""The training loop: config, setup, data, model, optimizer, loop. Reports through a `Tracker`.

Every source of randomness is explicit so that a run resumed from a checkpoint ends with exactly the
weights of the uninterrupted run: the corpus is a pure function of its seed and the sample index, each
epoch's order comes from (seed, epoch), and noise, timesteps and caption dropout come from one CPU
generator whose state is saved in every checkpoint.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from text2sign import hardware
from text2sign.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint
from text2sign.config import Config, flatten, to_json
from text2sign.data import DataError, build_dataset, collate, corpus_report
from text2sign.data.fingerprint import split_digest
from text2sign.diffusion import GaussianDiffusion
from text2sign.ema import ema_decay, update_ema
from text2sign.failures import TrainingDiverged, TrainingOutOfMemory
from text2sign.pipeline import TextToSign, generate
from text2sign.text_reliance import losses_under_captions, shuffled_texts
from text2sign.tracking import NullTracker, Tracker
from text2sign.video import save_filmstrip, save_gif

VAL_SEED = 1234  # val/loss uses the same noise every epoch, so epochs are comparable
SAMPLE_SEED = 0


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


def steps_per_epoch(config: Config, train_samples: int) -> int:
    """Optimizer steps per epoch over `train_samples` clips; an incomplete last batch or accumulation group
    is dropped. (A real corpus's train split is known only once read: data.train_size is its cap.)"""
    return max(1, train_samples // config.train.batch_size // config.train.grad_accum)


def total_steps(config: Config, train_samples: int) -> int:
    full = config.train.epochs * steps_per_epoch(config, train_samples)
    return min(full, config.train.max_steps) if config.train.max_steps else full


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up to 1, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def epoch_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_samples, generator=generator).tolist()


def drop_captions(texts: list[str], rate: float, generator: torch.Generator) -> list[str]:
    """Classifier-free guidance training: some captions become the empty text, the unconditional case."""
    return ["" if r < rate else t for t, r in zip(texts, torch.rand(len(texts), generator=generator).tolist())]


def train(
    config: Config,
    run_dir: str | Path,
    tracker: Tracker | None = None,
    resume_from: str | Path | None = None,
    progress: bool = True,
    should_stop: Callable[[int], bool] | None = None,
) -> TrainResult:
    """Train one run of `config`, writing checkpoints and samples under `run_dir` and reporting to `tracker`.

    `should_stop(step)` is asked after every optimizer step; when it says yes, the run checkpoints
    where it is (no samples, no summary: the run is not over) and returns with `interrupted` set
    (a signal handler's way to stop cleanly). Raises `TrainingDiverged` on a NaN/Inf loss or gradient
    norm, before any checkpoint could save the diverged weights, and `TrainingOutOfMemory` when CUDA
    runs out of memory.
    """
    tracker = tracker or NullTracker()
    run_dir = Path(run_dir)
    checkpoint_dir, samples_dir = run_dir / "checkpoints", run_dir / "samples"
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = config.train

    # --- setup -----------------------------------------------------------------------------
    torch.manual_seed(tc.seed)
    device = hardware.pick_device(tc.device)
    use_bf16 = device.type == "cuda" and tc.precision == "bf16"
    autocast_dtype = torch.bfloat16 if use_bf16 else None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)

    # --- data --------------------------------------------------------------------------------
    train_set = build_dataset(config.data, "train")
    val_set = build_dataset(config.data, "val")
    test_set = build_dataset(config.data, "test")
    sample_prompts = test_set.texts[: tc.num_sample_prompts]
    if config.data.num_workers > 0 and hasattr(train_set, "prerender"):
        train_set.prerender(config.data.num_workers)  # before the workers fork, so they share the clips
    if len(train_set) < tc.batch_size * tc.grad_accum:
        raise DataError(f"{config.data.name}: the train split has {len(train_set)} usable clips, fewer than one optimizer "
                        f"step takes (train.batch_size x train.grad_accum = {tc.batch_size * tc.grad_accum}); lower those.")

    # --- model, EMA, diffusion, optimizer ---------------------------------------------------------
    memory_format = torch.channels_last_3d if tc.channels_last else torch.contiguous_format
    model = TextToSign(config).to(device)
    model.unet.to(memory_format=memory_format)
    ema_model = None
    if config.ema.enabled:
        text_encoder = model.text_encoder
        model.text_encoder = None  # the EMA copy shares a frozen encoder rather than duplicating it
        ema_model = copy.deepcopy(model).requires_grad_(False).eval()
        model.text_encoder = text_encoder
        ema_model.text_encoder = text_encoder if config.text.freeze else copy.deepcopy(text_encoder).requires_grad_(False)
    diffusion = GaussianDiffusion(config.diffusion)

    param_groups = [{"params": list(model.unet.parameters()), "lr": tc.lr, "name": "unet"}]
    if not config.text.freeze:
        param_groups.append({"params": list(model.text_encoder.parameters()), "lr": config.text.lr, "name": "text_encoder"})
    trainable = [p for group in param_groups for p in group["params"]]
    optimizer = torch.optim.AdamW(
        param_groups, weight_decay=tc.weight_decay, betas=(0.9, 0.999), fused=device.type == "cuda"
    )
    num_steps = total_steps(config, len(train_set))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, tc.warmup_steps, num_steps)
    )
    forward = torch.compile(model) if tc.compile else model
    generator = torch.Generator().manual_seed(tc.seed)

    step, epoch, ema_updates = 0, 0, 0
    best_val_loss, best_checkpoint = math.inf, None
    elapsed_before = 0.0
    if resume_from is not None:
        state = load_checkpoint(resume_from, map_location=device)
        model.load_trainable_state_dict(state["model"])
        if ema_model is not None:
            ema_model.load_trainable_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step, epoch, ema_updates = state["step"], state["epoch"], state["ema_updates"]
        best_val_loss = state["best_val_loss"]
        elapsed_before = state["train_time_s"]
        best_checkpoint = checkpoint_dir / state["best_checkpoint"] if state["best_checkpoint"] else None

    # --- what the run is, before it starts ------------------------------------------------------------
    tracker.log_params(flatten(config))
    (run_dir / "config.json").write_text(to_json(config))
    tracker.log_artifact(run_dir / "config.json")
    parameter_count = sum(p.numel() for p in model.unet.parameters())
    metadata = {
        "hardware": hardware.describe(device),
        "unet_parameters": parameter_count,
        "text_encoder_parameters": sum(p.numel() for p in model.text_encoder.parameters()),
        "steps_per_epoch": steps_per_epoch(config, len(train_set)),
        "total_steps": num_steps,
        "train_samples": len(train_set),
        "resumed_from": str(resume_from) if resume_from else None,
    }
    tracker.set_tags({"device": str(metadata["hardware"]["device_name"])})
    data_metrics, data_tags = corpus_report({"train": train_set, "val": val_set, "test": test_set})
    tracker.set_tags(data_tags)
    tracker.log_metrics(data_metrics, step=step)
    for split, dataset in (("train", train_set), ("val", val_set), ("test", test_set)):
        tracker.log_dataset(split, config.data.name, split_digest(config.data, dataset.texts), len(dataset))

    def checkpoint(completed_epochs: int, val_loss: float) -> Path:
        """Save everything needed to continue; remember it as the best if its val/loss is the lowest so far."""
        nonlocal best_val_loss, best_checkpoint
        path = checkpoint_dir / checkpoint_name(step)
        if val_loss < best_val_loss:
            best_val_loss, best_checkpoint = val_loss, path
        state = {
            "model": model.trainable_state_dict(),
            "ema": ema_model.trainable_state_dict() if ema_model is not None else {},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "epoch": completed_epochs,
            "ema_updates": ema_updates,
            "best_val_loss": best_val_loss,
            "best_checkpoint": best_checkpoint.name if best_checkpoint else "",
            "train_time_s": elapsed_before + (time.perf_counter() - start),
            "config": to_json(config),
        }
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        save_checkpoint(state, path)
        tracker.log_artifact(path, "checkpoints")
        return path

    def eval_model() -> TextToSign:
        return ema_model if ema_model is not None else model

    # The val clips' captions handed to other clips, fixed for the run: val/text_loss_gap compares them.
    val_wrong_captions = shuffled_texts(val_set.texts, VAL_SEED) if len(val_set) >= 2 else None

    @torch.no_grad()
    def validation_losses(text_gap: bool = True) -> dict[str, float]:
        """val/loss, and unless `text_gap` is off val/text_loss_gap: the same clips, noise and timesteps under
        wrong captions, minus val/loss (text2sign.text_reliance). Computed with the weights evaluation uses."""
        wrong_captions = val_wrong_captions if text_gap else None
        net = eval_model()
        net.eval()
        val_generator = torch.Generator().manual_seed(VAL_SEED)
        loader = DataLoader(val_set, batch_size=tc.batch_size, collate_fn=collate, num_workers=config.data.num_workers,
                            worker_init_fn=_leave_stop_signals_to_the_main_process)
        totals, count = {"true": 0.0, "shuffled": 0.0}, 0
        for batch in loader:  # in index order, so the i-th clip's wrong caption is val_wrong_captions[i]
            video = batch["video"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
            captions = {"true": list(batch["texts"])}
            if wrong_captions is not None:
                captions["shuffled"] = wrong_captions[count : count + len(video)]
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=use_bf16):
                losses = losses_under_captions(net, net.encode, diffusion, video, captions, val_generator)
            for name, loss in losses.items():
                totals[name] += loss.item() * len(video)
            count += len(video)
        model.train()
        metrics = {"val/loss": totals["true"] / count}
        if wrong_captions is not None:
            metrics["val/text_loss_gap"] = (totals["shuffled"] - totals["true"]) / count
        return metrics

    def validation_loss() -> float:
        return validation_losses(text_gap=False)["val/loss"]  # the final checkpoint's: not logged, no gap needed

    def sample_videos(shared_noise: bool) -> torch.Tensor:
        return generate(
            eval_model(), diffusion, sample_prompts,
            num_frames=config.data.num_frames, image_size=config.data.image_size,
            guidance_scale=config.diffusion.guidance_scale, steps=config.diffusion.sample_steps,
            sampler=config.diffusion.sampler, seed=SAMPLE_SEED, autocast_dtype=autocast_dtype, shared_noise=shared_noise,
        )

    def write_samples(label: str) -> None:
        if not sample_prompts:
            return
        videos = sample_videos(shared_noise=False)
        folder = samples_dir / label
        upscale = max(1, 128 // config.data.image_size)
        for i, (text, video) in enumerate(zip(sample_prompts, videos)):
            save_gif(video, folder / f"{i:02d}_{_slug(text)}.gif", upscale=upscale)
        save_filmstrip(videos, folder / "filmstrip.png", upscale=upscale)
        # One starting noise under every prompt: rows that differ can only differ because of their text.
        save_filmstrip(sample_videos(shared_noise=True), folder / "same_noise.png", upscale=upscale)
        (folder / "prompts.json").write_text(json.dumps(sample_prompts, indent=2))
        tracker.log_artifact(folder, f"samples/{label}")
        tracker.log_image(folder / "filmstrip.png", "samples", step)

    # --- the loop ------------------------------------------------------------------------------
    model.train()
    per_epoch = steps_per_epoch(config, len(train_set))
    start = time.perf_counter()
    # Each step's loss and gradient norm stay on the device until they are read, at log steps and before
    # anything is saved: a read (.item()) makes the CPU wait for the GPU, and one per micro-batch would
    # stall it every step. The read also checks them for NaN/Inf, so a divergence is caught within
    # train.log_every steps, named to its exact step, and always before a checkpoint could save it.
    unread: list[torch.Tensor] = []  # per optimizer step: [mean loss of its micro-batches, grad norm]
    step_loss = torch.zeros((), device=device)
    window_losses: list[float] = []
    window_start, window_videos = time.perf_counter(), 0
    last_loss, last_grad_norm = math.nan, math.nan  # as last logged
    last_finite_loss, last_finite_step = math.nan, step  # of the last step read, for a divergence message
    last_checkpoint, interrupted = None, False
    mem_samples: list[float] = []

    def read_steps() -> None:
        """Bring the unread steps' losses and gradient norms to the CPU; stop the run at the first NaN/Inf."""
        nonlocal last_grad_norm, last_finite_loss, last_finite_step
        if not unread:
            return
        values = torch.stack(unread).tolist()
        first_step = step - len(values) + 1
        for offset, (loss_value, grad_norm_value) in enumerate(values):
            for quantity, value in (("train/loss", loss_value), ("train/grad_norm", grad_norm_value)):
                if not math.isfinite(value):
                    last_good = latest_checkpoint(checkpoint_dir) or (Path(resume_from) if resume_from else None)
                    raise TrainingDiverged(first_step + offset, quantity, value, last_finite_loss, last_finite_step,
                                           last_good, config, device)
            last_finite_loss, last_finite_step = loss_value, first_step + offset
            window_losses.append(loss_value)
        last_grad_norm = values[-1][1]
        unread.clear()

    bar = tqdm(total=num_steps, initial=step, disable=not progress, desc="train", unit="step", dynamic_ncols=True)
    try:
        while step < num_steps:
            # A resumed run may start mid-epoch: skip the micro-batches this epoch already consumed.
            first = (step - epoch * per_epoch) * tc.grad_accum * tc.batch_size
            order = epoch_order(len(train_set), tc.seed, epoch)[first : per_epoch * tc.grad_accum * tc.batch_size]
            loader = DataLoader(
                train_set, batch_size=tc.batch_size, sampler=order, collate_fn=collate, drop_last=True,
                num_workers=config.data.num_workers, pin_memory=device.type == "cuda",
                worker_init_fn=_leave_stop_signals_to_the_main_process,
            )
            for micro, batch in enumerate(loader, start=1):
                video = batch["video"].to(device, non_blocking=True).contiguous(memory_format=memory_format)
                texts = drop_captions(list(batch["texts"]), config.diffusion.text_dropout, generator)
                context, mask = model.encode(texts)
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=use_bf16):
                    loss = diffusion.training_loss(forward, video, context, mask, generator)
                (loss / tc.grad_accum).backward()
                step_loss += loss.detach()
                window_videos += len(video)
                if micro % tc.grad_accum:
                    continue

                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, tc.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                unread.append(torch.stack([step_loss / tc.grad_accum, grad_norm.detach().float()]))
                step_loss.zero_()
                step += 1
                if ema_model is not None and step % config.ema.update_every == 0:
                    decay = ema_decay(ema_updates, config.ema.decay)
                    update_ema(ema_model.unet, model.unet, decay)
                    if not config.text.freeze:
                        update_ema(ema_model.text_encoder, model.text_encoder, decay)
                    ema_updates += 1
                bar.update(1)

                if step % tc.log_every == 0 or step == num_steps:
                    read_steps()
                    now = time.perf_counter()
                    last_loss = sum(window_losses) / len(window_losses)
                    memory = hardware.memory_metrics(device)
                    mem_samples.append(next(iter(memory.values())))
                    tracker.log_metrics(
                        {
                            "train/loss": last_loss,
                            "train/lr": scheduler.get_last_lr()[0],
                            "train/grad_norm": last_grad_norm,
                            "train/videos_per_s": window_videos / max(now - window_start, 1e-9),
                            **memory,
                        },
                        step=step,
                    )
                    bar.set_postfix(loss=f"{last_loss:.4f}", epoch=epoch)
                    window_losses.clear()
                    window_videos, window_start = 0, now
                # Asked only while steps remain: a stop request at the last step changes nothing.
                interrupted = step < num_steps and should_stop is not None and should_stop(step)
                if step == num_steps or interrupted:
                    break

            if step < (epoch + 1) * per_epoch:
                break  # stopped inside an epoch: by train.max_steps or by should_stop
            read_steps()
            epoch += 1
            val_metrics = validation_losses()
            val = val_metrics["val/loss"]
            tracker.log_metrics(val_metrics, step=step)
            if epoch % tc.checkpoint_every == 0 or step == num_steps:
                last_checkpoint = checkpoint(epoch, val)
                if not interrupted:
                    write_samples(f"epoch_{epoch:04d}")
            if interrupted:
                break
        bar.close()

        read_steps()
        if last_checkpoint is None or last_checkpoint.name != checkpoint_name(step):
            # A stop checkpoint does not compete for the best: the uninterrupted run has none at this step,
            # and the resumed run must end with the same best checkpoint. It also saves a validation pass
            # in the grace period between a scheduler's SIGTERM and its SIGKILL.
            last_checkpoint = checkpoint(epoch, math.inf if interrupted else validation_loss())
            if not interrupted:
                write_samples(f"step_{step:08d}")
    except torch.cuda.OutOfMemoryError as error:
        raise TrainingOutOfMemory(step, config, device, error) from error
    train_time = elapsed_before + time.perf_counter() - start

    # --- summary (of a whole run: an interrupted one gets it when it is resumed and ends) -------------------
    if not interrupted:
        summary = {"summary/train_time_s": train_time, "summary/steps": float(step)}
        if device.type == "cuda":
            summary["summary/peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / hardware.GIB
            summary["summary/avg_gpu_mem_gib"] = sum(mem_samples) / max(1, len(mem_samples))
        else:
            summary["summary/peak_cpu_rss_gib"] = hardware.peak_rss_gib()
        tracker.log_metrics(summary, step=step)
    metadata.update({"train_time_s": train_time, "steps": step, "epochs": epoch, "best_val_loss": best_val_loss,
                     "best_checkpoint": best_checkpoint.name if best_checkpoint else None,
                     "text_cache_size": model.text_encoder.cache_size})
    (run_dir / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str))
    tracker.log_artifact(run_dir / "metadata.json")
    return TrainResult(step, epoch, train_time, last_loss, best_val_loss, best_checkpoint, last_checkpoint, run_dir,
                       interrupted)


def _leave_stop_signals_to_the_main_process(worker_id: int) -> None:
    """DataLoader workers ignore SIGINT and SIGTERM. Ctrl-C (and a scheduler's SIGTERM to the process group)
    reaches every process; a worker that died of it would fail the step the main process is finishing
    before it checkpoints. Workers still end with the main process, which shuts them down (or, if it is
    killed, their watchdog sees it gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _slug(text: str, limit: int = 40) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower())[:limit].strip("_") or "empty"
