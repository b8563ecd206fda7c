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
    caption_of, contexts, masks = _encode_once(model, texts)
    optimizer = torch.optim.AdamW(planner.parameters(), lr=mc.pose_plan_lr, weight_decay=config.train.weight_decay)
    # Cosine decay to 0 from the first step: the last steps settle rather than bounce at the full learning rate.
    schedule = warmup_cosine_schedule(optimizer, warmup=0, total=mc.pose_plan_steps)
    generator = torch.Generator().manual_seed(config.train.seed + PLAN_FIRST_SEED)
    losses = []
    for _ in range(mc.pose_plan_steps):
        rows = torch.randint(0, len(texts), (mc.pose_plan_batch,), generator=generator).to(device)
        captions = caption_of[rows]
        loss, _ = planner.loss(contexts[captions], masks[captions], keypoints[rows])
        loss.backward()
        step_optimizer(optimizer, schedule, planner.parameters(), grad_clip=None)
        losses.append(loss.detach())
    if ema_model is not None:
        ema_model.unet.pose_planner.load_state_dict(planner.state_dict())  # copies the tensors
    tail = losses[-max(1, len(losses) // 10):]
    return {"pose_plan/first_loss": torch.stack(tail).mean().item(), "pose_plan/first_s": time.perf_counter() - started}


def _encode_once(model: TextToSign, texts: list[str], chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each distinct caption encoded once, in fixed chunks of the caption list: the index of each text's row
    [N], and the rows' token embeddings [U, L, D] and masks [U, L].

    The text encoder, frozen or not, trains with the video model only, so the planner reads fixed embeddings.
    Encoded here in batches rather than through the frozen encoder's one-text-at-a-time cache (which keeps a
    text's embedding independent of its batch for the video training and its resumes): tens of thousands of
    captions would take minutes one by one, and would stay in that cache for the whole run.
    """
    distinct = list(dict.fromkeys(texts))
    row_of = {text: row for row, text in enumerate(distinct)}
    contexts, masks = [], []
    encoder, was_training = model.text_encoder, model.text_encoder.training
    encoder.eval()  # a fine-tuned encoder's dropout would make one draw of noise part of the table
    with torch.no_grad():
        for start in range(0, len(distinct), chunk):
            context, mask = encoder.encode_batch(distinct[start:start + chunk])
            contexts.append(context)
            masks.append(mask)
    encoder.train(was_training)
    caption_of = torch.tensor([row_of[text] for text in texts], device=contexts[0].device)
    # Only the longest caption's tokens are kept: the rest is padding the planner's attention masks out.
    masks = torch.cat(masks)
    length = int(masks.sum(dim=1).max())
    return caption_of, torch.cat(contexts)[:, :length].contiguous(), masks[:, :length].contiguous()


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
