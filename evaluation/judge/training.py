"""Training the back-translation judge on real (rendered) videos, and scoring it on held-out ones.

The judge must be right about *real* clips before its verdict on generated ones means anything, so the
figures it returns are measured on the val and test splits, whose gloss combinations never occur in
training. It trains on more clips than the diffusion model sees (`text2sign.scales.RECOGNIZER_SCALES`): rendering is cheap
and a judge that has only memorized 512 clips would blame the generator for its own blind spots.

A corpus can hold a single recording of each sign (the fingerspelling lexicon: one per letter and language), so
the signs its test split holds out can be known to no judge that learns from its train split alone. There the
judge is an instrument that learns every split (`learn_from="all"`): it knows every sign the generator is asked
for, and its reading of the real clips is then of clips it learned, an upper bound rather than a held-out figure.
Such a judge learns each recording drawn on several signers (`drawings`): with one drawing per sign, the
signer's look alone names the sign, and a judge that learned it reads a clip drawn on another signer as noise.

On a corpus with keypoints but no glosses (How2Sign) the judge is pose-only: it learns to read the signer's
keypoints, so that evaluation can compare generated and true poses there, and is scored by its keypoint error.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from tqdm.auto import tqdm

from evaluation.judge.recognizer import SignRecognizer
from evaluation.metrics.pose import mean_joint_error
from evaluation.metrics.text_metrics import bleu4, word_error_rate
from text2sign import skeleton
from text2sign.config import DataConfig
from text2sign.data import build_dataset, collate
from text2sign.training.optimization import step_optimizer, warmup_cosine_schedule

LogFunction = Callable[[dict[str, float], int], None]
LEARN_FROM = {"train": ("train",), "all": ("train", "val", "test")}  # the splits a judge learns from


def shift_augment(
    video: torch.Tensor, keypoints: torch.Tensor | None, max_shift: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Move each clip by a random whole-pixel offset (the same for all its frames), edges repeated.

    video [B, 3, T, H, W], keypoints [B, T, K, 3] (x, y in [0, 1] moved with it; None for a corpus without
    keypoints). Signers already stand at
    slightly different places; generated clips may put them a little further off, and a judge that
    reads glosses from absolute pixel positions would count that as a signing error.
    """
    if max_shift == 0:
        return video, keypoints
    batch, channels, frames, height, width = video.shape
    offsets = torch.randint(-max_shift, max_shift + 1, (batch, 2), generator=generator)
    padded = F.pad(
        video.reshape(batch, channels * frames, height, width), (max_shift,) * 4, mode="replicate"
    )
    shifted = torch.stack(
        [
            padded[b, :, max_shift - dy : max_shift - dy + height, max_shift - dx : max_shift - dx + width]
            for b, (dx, dy) in enumerate(offsets.tolist())
        ]
    ).reshape(video.shape)
    if keypoints is not None:
        shift = torch.cat([offsets.float() / torch.tensor([width, height]), torch.zeros(batch, 1)], dim=1)
        keypoints = keypoints + shift[:, None, None, :]
    return shifted, keypoints


def ctc_targets(glosses: list[tuple[str, ...]], vocabulary: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC's concatenated targets (class = vocabulary index + 1, since 0 is blank) and their lengths."""
    index = {gloss: i + 1 for i, gloss in enumerate(vocabulary)}
    targets = torch.tensor([index[g] for sequence in glosses for g in sequence], dtype=torch.long)
    lengths = torch.tensor([len(sequence) for sequence in glosses], dtype=torch.long)
    return targets, lengths


def recognizer_losses(
    model: SignRecognizer, video: torch.Tensor, keypoints: torch.Tensor | None, glosses: list[tuple[str, ...]]
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(CTC loss, keypoint L1 loss) of a batch: video [B, 3, T, H, W], keypoints [B, T, K, 3]. The keypoint
    loss, over the points seen, is None for a corpus without keypoints, which trains on CTC alone; the CTC loss
    is None for a pose-only recognizer (empty vocabulary), which trains its keypoint head alone."""
    output = model(video)
    if not model.vocabulary:
        return None, None if keypoints is None else _keypoint_loss(output.keypoints, keypoints)
    targets, target_lengths = ctc_targets(glosses, model.vocabulary)
    batch, frames = output.log_probs.shape[:2]
    ctc = F.ctc_loss(
        output.log_probs.transpose(0, 1),  # CTC wants [T, B, C]
        targets.to(video.device),
        torch.full((batch,), frames, dtype=torch.long),
        target_lengths,
        # A clip with more glosses (plus blanks between repeats) than frames cannot be aligned; its
        # infinite loss would poison the batch, so it is zeroed instead.
        zero_infinity=True,
    )
    return ctc, None if keypoints is None else _keypoint_loss(output.keypoints, keypoints)


def _keypoint_loss(predicted: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """Mean L1 error of predicted [B, T, K, 2] against keypoints [B, T, K, 3] over the points seen (0 if none)."""
    seen = skeleton.present(keypoints)
    errors = torch.where(seen[..., None], (predicted - skeleton.positions(keypoints)).abs(), 0.0)
    return errors.sum() / (2 * seen.sum()).clamp_min(1)


@torch.no_grad()
def score_on_videos(model: SignRecognizer, dataset: Dataset, batch_size: int = 32) -> dict[str, float]:
    """WER (fraction) and BLEU-4 (0-100), for a recognizer that reads glosses, and keypoint mean joint error
    (fraction of the frame), for one that reads keypoints on a corpus that has them, on every clip of `dataset`
    against its true glosses and keypoints.

    The joint error is the mean over clips of each clip's error over its points seen; a clip with no point
    seen (no signer detected in any frame) has no error to give and is left out, and `keypoint_mje` is absent
    when no clip has a point seen, rather than NaN."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    references, hypotheses, joint_errors = [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        output = model(batch["video"].to(device))
        references += batch["glosses"]
        hypotheses += model.glosses_from_log_probs(output.log_probs)
        if "keypoints" in batch and model.num_keypoints:
            joint_errors += [
                mean_joint_error(predicted, target) for predicted, target in zip(output.keypoints, batch["keypoints"])
                if skeleton.present(target).any()
            ]
    model.train(was_training)
    scores = {}
    if model.vocabulary:
        scores.update(wer=word_error_rate(references, hypotheses), bleu4=bleu4(references, hypotheses))
    if joint_errors:
        scores["keypoint_mje"] = sum(joint_errors) / len(joint_errors)
    return scores


def untrained_judge(train_set: Dataset, data: DataConfig, width: int) -> SignRecognizer:
    """A recognizer for what the corpus has: its glosses' vocabulary and, where it has keypoints, a keypoint head."""
    if not train_set.has_glosses and not train_set.has_keypoints:
        raise ValueError(f"{data.name} has no glosses and no keypoints: a recognizer learns to read one or both, so it "
                         f"cannot be trained on it. Extract keypoints once with: python -m text2sign.data "
                         f"extract-keypoints {data.name}")
    first = train_set[0]
    # A corpus without keypoints: the keypoint head is left out rather than trained on made-up poses.
    num_keypoints = first["keypoints"].shape[1] if "keypoints" in first else 0
    vocabulary = train_set.vocabulary if train_set.has_glosses else ()
    return SignRecognizer(vocabulary, data.image_size, data.num_frames, num_keypoints, width=width)


@dataclass
class JudgeTraining:
    """What the phases of `train_recognizer` share: the judge, its data and its optimization."""

    model: SignRecognizer
    loader: DataLoader
    val_set: Dataset
    test_set: Dataset
    generator: torch.Generator  # the loader's shuffling and the shift augmentation: one stream, in that order
    optimizer: torch.optim.Optimizer
    schedule: LambdaLR
    epochs: int
    total_steps: int
    max_shift: int
    keypoint_weight: float
    grad_clip: float
    device: str
    step: int = 0

    @property
    def val_score(self) -> str:
        """What the bar shows and each epoch logs: the WER, or for a pose-only judge its keypoint error."""
        return "val_wer" if self.model.vocabulary else "val_keypoint_mje"


def train_recognizer(
    data: DataConfig,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    min_steps: int = 0,
    learn_from: str = "train",
    drawings: int = 1,
    width: int = 64,
    keypoint_weight: float = 10.0,
    weight_decay: float = 0.01,
    grad_clip: float = 1.0,
    log_every: int = 10,
    device: str = "cpu",
    progress: bool = True,
    log: LogFunction | None = None,
) -> tuple[SignRecognizer, dict[str, float]]:
    """Train a SignRecognizer on the train split of `data` (every split with `learn_from="all"`, each clip drawn
    `drawings` times: `learned_clips`); return it (in eval mode) and its scores on the real videos of the val and
    test splits. It trains `epochs`, or more where a small corpus needs them to take `min_steps` optimizer steps.

    Logs `recognizer/loss`, `recognizer/ctc_loss`, `recognizer/keypoint_loss` (for a corpus with
    keypoints) every `log_every` optimizer steps and `recognizer/val_wer` after every epoch, through `log(metrics, step)`.
    A corpus with keypoints but no glosses trains a pose-only recognizer (empty vocabulary): no CTC, the loss is
    the keypoint loss alone (`keypoint_weight` only balances it against CTC), `recognizer/val_keypoint_mje`
    replaces `recognizer/val_wer`, and the scores are `recognizer/val_keypoint_mje` and
    `recognizer/test_keypoint_mje` (each absent when no clip of its split has a point seen).
    The same seed, data and thread count give the same weights: shuffling, augmentation and
    initialization all draw from generators seeded here.
    `keypoint_weight` scales the L1 keypoint loss, whose errors are a few hundredths of the frame, so
    that the keypoint head keeps shaping the shared features once the CTC loss has fallen.
    """
    log = log or (lambda metrics, step: None)
    training = set_up_judge(data, epochs=epochs, min_steps=min_steps, batch_size=batch_size, lr=lr, seed=seed,
                            learn_from=learn_from, drawings=drawings, width=width, keypoint_weight=keypoint_weight,
                            weight_decay=weight_decay, grad_clip=grad_clip, device=device)
    val_metrics: dict[str, float] = {}
    bar = tqdm(total=training.total_steps, disable=not progress, desc="recognizer", unit="step", dynamic_ncols=True)
    training.model.train()
    for _ in range(training.epochs):
        train_judge_epoch(training, log, log_every, bar, val_metrics.get(f"recognizer/{training.val_score}", math.nan))
        val_metrics = validate_judge(training, batch_size, log) or val_metrics
    bar.close()
    training.model.eval()
    return training.model, {**val_metrics, **judge_test_scores(training, batch_size)}


def set_up_judge(data: DataConfig, *, epochs: int, min_steps: int, batch_size: int, lr: float, seed: int,
                 learn_from: str, width: int, keypoint_weight: float, weight_decay: float, grad_clip: float, device: str,
                 drawings: int = 1) -> JudgeTraining:
    """The splits, the untrained judge, the shuffled loader over the splits it learns from and the optimizer with
    its LR schedule."""
    torch.manual_seed(seed)  # initialization
    splits = {split: build_dataset(data, split) for split in ("train", "val", "test")}
    learned = learned_clips(data, splits, learn_from, drawings)
    if len(learned) < batch_size:
        raise ValueError(f"batch_size={batch_size} is larger than the {len(learned)} training clips; lower it")
    model = untrained_judge(splits["train"], data, width).to(device)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        learned, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=collate, generator=generator,
        num_workers=data.num_workers,
    )
    epochs = max(epochs, math.ceil(min_steps / len(loader)))
    total_steps = epochs * len(loader)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    # Linear warm-up over the first 5% of steps (CTC is unstable at full LR from random weights), under a cosine
    # to 0 that starts at the first step.
    schedule = warmup_cosine_schedule(optimizer, warmup=max(1, total_steps // 20) - 1, total=total_steps, decay_from=0)
    return JudgeTraining(model, loader, splits["val"], splits["test"], generator, optimizer, schedule, epochs,
                         total_steps, max_shift=max(1, data.image_size // 16), keypoint_weight=keypoint_weight,
                         grad_clip=grad_clip, device=device)


def learned_clips(data: DataConfig, splits: dict[str, Dataset], learn_from: str, drawings: int) -> Dataset:
    """The clips a judge learns: the splits `learn_from` names, and with `drawings` > 1 the same splits of the
    corpus at the next corpus seeds, which draw each recording on other signers (`learn_from="all"` only)."""
    if learn_from not in LEARN_FROM:
        raise ValueError(f"learn_from must be one of {', '.join(LEARN_FROM)}, got {learn_from!r}")
    if drawings < 1 or (drawings > 1 and learn_from != "all"):
        # Another corpus seed deals other splits too: a judge that learns the train split alone would see test clips.
        raise ValueError(f"drawings={drawings}: a judge draws its clips more than once only when it learns every "
                         "split (learn_from=all); use drawings=1")
    redrawn = [dataclasses.replace(data, corpus_seed=data.corpus_seed + k) for k in range(1, drawings)]
    return ConcatDataset([splits[split] for split in LEARN_FROM[learn_from]]
                         + [build_dataset(other, split) for other in redrawn for split in LEARN_FROM[learn_from]])


def train_judge_epoch(training: JudgeTraining, log: LogFunction, log_every: int, bar: tqdm, val: float) -> None:
    """One pass over the shuffled train split, an optimizer step per batch; `val` is the last validation's
    figure, for the bar."""
    model = training.model
    for batch in training.loader:
        video, keypoints = shift_augment(batch["video"], batch.get("keypoints"), training.max_shift, training.generator)
        ctc, keypoint = recognizer_losses(
            model, video.to(training.device), None if keypoints is None else keypoints.to(training.device),
            batch["glosses"])
        loss = keypoint if ctc is None else ctc if keypoint is None else ctc + training.keypoint_weight * keypoint
        loss.backward()
        step_optimizer(training.optimizer, training.schedule, model.parameters(), training.grad_clip)
        training.step += 1
        bar.update(1)
        if training.step % log_every == 0 or training.step == training.total_steps:
            losses = {"loss": loss, "ctc_loss": ctc, "keypoint_loss": keypoint}
            log({f"recognizer/{name}": value.item() for name, value in losses.items() if value is not None},
                training.step)
            bar.set_postfix({"loss": f"{loss.item():.3f}", training.val_score: f"{val:.3f}"})


def validate_judge(training: JudgeTraining, batch_size: int, log: LogFunction) -> dict[str, float]:
    """The judge's figure on the val split, logged; empty when it has none (a pose-only judge, no point seen)."""
    scores = score_on_videos(training.model, training.val_set, batch_size)
    key = training.val_score.removeprefix("val_")
    if key not in scores:
        return {}
    metrics = {f"recognizer/{training.val_score}": scores[key]}
    log(metrics, training.step)
    return metrics


def judge_test_scores(training: JudgeTraining, batch_size: int) -> dict[str, float]:
    """The judge's scores on the test split: WER and BLEU-4 if it reads glosses, its keypoint error if it has one."""
    test = score_on_videos(training.model, training.test_set, batch_size)
    return {
        **({"recognizer/test_wer": test["wer"], "recognizer/test_bleu4": test["bleu4"]} if training.model.vocabulary else {}),
        **({"recognizer/test_keypoint_mje": test["keypoint_mje"]} if "keypoint_mje" in test else {}),
    }
