"""Plan first: before the video training starts, the pose planner learns text -> keypoints on its own.

The two stages of a pose-first system are independent in training: the UNet is shown the true skeleton
(teacher forcing, `trainer.pose_plan_training`), so only sampling reads the planner. And the planner is a
few hundred thousand weights reading a few hundred numbers per clip, while the UNet reads every pixel: one
optimizer step of the video model pays for thousands of the planner's. Giving the planner its own steps here
(`model.pose_plan_steps`, `model.pose_plan_batch`, `model.pose_plan_lr`) costs a minute and makes the plan
good enough to read; in a 512-step `small` run the planner alone would see 4,096 captions. On the synthetic
corpus it can read more captions than there are clips to train the video model on (`model.pose_plan_captions`),
which is what makes it plan new captions well. It keeps learning during the video training, from every batch.
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch.utils.data import Dataset

from text2sign.config import Config
from text2sign.data.synthetic import SyntheticSigningCorpus
from text2sign.pipeline import TextToSign
from text2sign.training.optimization import step_optimizer, warmup_cosine_schedule

PLAN_FIRST_SEED = 4321  # offset from train.seed: its own stream, leaving the video training's draws as they were


def plan_poses_first(config: Config, model: TextToSign, ema_model: TextToSign | None, train_set: Dataset) -> dict[str, float]:
    """Train `model`'s pose planner alone on the train split's captions and keypoints; the EMA copy starts from
    the result. Returns pose_plan/first_loss (the last 10% of its steps) and pose_plan/first_s."""
    planner, mc = model.unet.pose_planner, config.model
    started = time.perf_counter()
    texts, keypoints = _captions_and_keypoints(config, train_set)
    device = next(planner.parameters()).device
    keypoints = keypoints.to(device)
    optimizer = torch.optim.AdamW(planner.parameters(), lr=mc.pose_plan_lr, weight_decay=config.train.weight_decay)
    # Cosine decay to 0 from the first step: the last steps settle rather than bounce at the full learning rate.
    schedule = warmup_cosine_schedule(optimizer, warmup=0, total=mc.pose_plan_steps)
    generator = torch.Generator().manual_seed(config.train.seed + PLAN_FIRST_SEED)
    losses = []
    for _ in range(mc.pose_plan_steps):
        rows = torch.randint(0, len(texts), (mc.pose_plan_batch,), generator=generator)
        with torch.no_grad():  # the text encoder, frozen or not, trains with the video model only
            context, mask = model.encode([texts[i] for i in rows.tolist()])
        loss, _ = planner.loss(context, mask, keypoints[rows.to(device)])
        loss.backward()
        step_optimizer(optimizer, schedule, planner.parameters(), grad_clip=None)
        losses.append(loss.detach())
    if ema_model is not None:
        ema_model.unet.pose_planner.load_state_dict(planner.state_dict())  # copies the tensors
    tail = losses[-max(1, len(losses) // 10):]
    return {"pose_plan/first_loss": torch.stack(tail).mean().item(), "pose_plan/first_s": time.perf_counter() - started}


def _captions_and_keypoints(config: Config, train_set: Dataset) -> tuple[list[str], torch.Tensor]:
    """Every training caption and its clip's keypoints [N, T, K, 3]; where `model.pose_plan_captions` asks for
    more than the split holds, the synthetic corpus's first that many training captions (the split's come first:
    a sample is fixed by its index), drawn without video."""
    wanted = config.model.pose_plan_captions
    if wanted <= len(train_set):
        samples = [train_set[i] for i in range(len(train_set))]
        return [s["text"] for s in samples], torch.stack([s["keypoints"] for s in samples])
    more = SyntheticSigningCorpus(dataclasses.replace(config.data, train_size=wanted), "train", cache=False)
    return more.texts, torch.stack([more.keypoints_of(i) for i in range(wanted)])
