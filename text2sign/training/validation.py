"""What training looks at between epochs: the validation losses and sample videos, with the weights
evaluation uses (the EMA's when there is one). Rank 0 alone computes them."""

from __future__ import annotations

import json
import signal

import torch
from torch.utils.data import DataLoader

from text2sign import skeleton
from text2sign.data import collate
from text2sign.data.pose_file import write_pose
from text2sign.pipeline import generate
from text2sign.training.state import Training
from text2sign.training.text_loss_gap import losses_under_captions, shuffled_texts
from text2sign.video import GIF_FPS, save_filmstrip, save_gif

VAL_SEED = 1234  # val/loss uses the same noise every epoch, so epochs are comparable
SAMPLE_SEED = 0


@torch.no_grad()
def validation_losses(training: Training, text_gap: bool = True) -> dict[str, float]:
    """val/loss, and unless `text_gap` is off val/text_loss_gap: the same clips, noise and timesteps under
    wrong captions, minus val/loss (text2sign.training.text_loss_gap)."""
    config, val_set = training.config, training.splits.val
    # The val clips' captions handed to other clips, the same every epoch: val/text_loss_gap compares them.
    wrong_captions = shuffled_texts(val_set.texts, VAL_SEED) if text_gap and len(val_set) >= 2 else None
    net = training.eval_model()
    net.eval()
    val_generator = torch.Generator().manual_seed(VAL_SEED)
    loader = DataLoader(val_set, batch_size=config.train.batch_size, collate_fn=collate,
                        num_workers=config.data.num_workers, worker_init_fn=leave_stop_signals_to_the_main_process)
    totals, count = {"true": 0.0, "shuffled": 0.0, "error": 0.0, "motion_error": 0.0}, 0
    for batch in loader:  # in index order, so the i-th clip's wrong caption is wrong_captions[i]
        video = batch["video"].to(training.device, non_blocking=True).contiguous(memory_format=training.memory_format)
        captions = {"true": list(batch["texts"])}
        if wrong_captions is not None:
            captions["shuffled"] = wrong_captions[count : count + len(video)]
        with training.autocast():
            losses = losses_under_captions(net, net.encode, training.diffusion, video, captions, val_generator)
        for name, loss in losses.items():
            totals[name] += loss.item() * len(video)
        if net.unet.pose_planner is not None:
            for name, errors in pose_plan_errors(net, batch).items():
                totals[name] += errors.sum().item()
        count += len(video)
    training.model.train()
    metrics = {"val/loss": totals["true"] / count}
    if net.unet.pose_planner is not None:
        metrics["val/pose_plan_error_px"] = totals["error"] / count
        metrics["val/pose_plan_motion_error_px"] = totals["motion_error"] / count
    if wrong_captions is not None:
        metrics["val/text_loss_gap"] = (totals["shuffled"] - totals["true"]) / count
    return metrics


def pose_plan_errors(net, batch: dict) -> dict[str, torch.Tensor]:
    """Per clip [B], in pixels (the mean over frames and the points seen of the Euclidean distance): how far the
    keypoints planned from its caption are from its true ones ("error"), and the same with the planned pose
    put at the clip's own placement ("motion_error": only what the caption decides)."""
    truth = batch["keypoints"].float()
    context, mask = net.encode(list(batch["texts"]))
    planner = net.unet.pose_planner
    body_pose = planner.body_pose(context, mask, truth.shape[1]).float().cpu()
    neck, scale, _ = skeleton.placement(truth)

    def pixels_off(planned: torch.Tensor) -> torch.Tensor:
        return skeleton.mean_point_error(planned, truth) * net.config.data.image_size

    return {"error": pixels_off(planner.place(body_pose).float()), "motion_error": pixels_off(neck + scale * body_pose)}


def write_samples(training: Training, label: str) -> None:
    """GIFs of the sample prompts, a filmstrip of them, and one starting noise under every prompt."""
    prompts = training.splits.sample_prompts
    if not prompts:
        return
    folder = training.samples_dir / label
    upscale = max(1, 128 // training.config.data.image_size)
    videos = sample_videos(training, shared_noise=False)
    for i, (text, video) in enumerate(zip(prompts, videos)):
        save_gif(video, folder / f"{i:02d}_{_slug(text)}.gif", upscale=upscale)
    save_filmstrip(videos, folder / "filmstrip.png", upscale=upscale)
    # Rows that start from the same noise can only differ because of their text.
    save_filmstrip(sample_videos(training, shared_noise=True), folder / "same_noise.png", upscale=upscale)
    if training.eval_model().unet.pose_planner is not None:
        # The plans the videos were drawn from, for pose-format's viewers (a GIF shows only the pixels).
        for i, (text, plan) in enumerate(zip(prompts, planned_skeletons(training))):
            write_pose(plan.numpy(), folder / f"{i:02d}_{_slug(text)}.pose", fps=GIF_FPS,
                       size=training.config.data.image_size)
    (folder / "prompts.json").write_text(json.dumps(prompts, indent=2))
    training.tracker.log_artifact(folder, f"samples/{label}")
    training.tracker.log_image(folder / "filmstrip.png", "samples", training.position.step)


@torch.no_grad()
def planned_skeletons(training: Training) -> torch.Tensor:
    """The pose plan of each sample prompt: keypoints [N, T, 50, 3] on the CPU."""
    net = training.eval_model()
    context, mask = net.encode(training.splits.sample_prompts)
    return net.unet.pose_planner(context, mask, training.config.data.num_frames).float().cpu()


def sample_videos(training: Training, shared_noise: bool) -> torch.Tensor:
    config = training.config
    return generate(
        training.eval_model(), training.diffusion, training.splits.sample_prompts,
        num_frames=config.data.num_frames, image_size=config.data.image_size,
        guidance_scale=config.diffusion.guidance_scale, steps=config.diffusion.sample_steps,
        sampler=config.diffusion.sampler, seed=SAMPLE_SEED, autocast_dtype=training.autocast_dtype,
        shared_noise=shared_noise,
    )


def leave_stop_signals_to_the_main_process(worker_id: int) -> None:
    """DataLoader workers ignore SIGINT and SIGTERM. Ctrl-C (and a scheduler's SIGTERM to the process group)
    reaches every process; a worker that died of it would fail the step the main process is finishing
    before it checkpoints. Workers still end with the main process, which shuts them down (or, if it is
    killed, their watchdog sees it gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _slug(text: str, limit: int = 40) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower())[:limit].strip("_") or "empty"
