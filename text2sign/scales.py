"""Scales: how big a run is. Each is a set of overrides of the defaults, the same form as an ablation, and the
settings of the judge that reads its clips (`RECOGNIZER_SCALES`).

A scale's length is a number of optimizer steps (`train.max_steps`), whatever the corpus: on a real corpus of 90
clips `small` trains its 128 steps, not 2 epochs of 11. Each budget is what the scale trained when it counted
epochs, on its own synthetic corpus (`small`: 2 epochs of 512 clips in batches of 8), and it validates as often as
it then did (`train.validations`, once per those epochs), so a synthetic run trains and validates as before.

The defaults in `config.py` are the `full` scale (the study on a GPU), so `full` overrides nothing. The few
defaults that depend on the corpus a run reads are settled here too (`corpus_defaults`), after the scale:
they need the corpus on disk, which `config.py` does not read (`text2sign.data` builds on it).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from text2sign.config import Config, ConfigError, DataConfig, RecognizerSettings, apply_overrides
from text2sign.data.real import corpus_has_keypoints
from text2sign.data.spec import DataSpec, parse_data_spec

# The clips and network of the CPU scales: 32x32, 8 frames, channels 32. Small and medium share them, so a
# judge (recognizer) trained for one reads the other's videos; they differ in how much they train and in the signers.
_CPU_CLIPS_AND_NETWORK: dict[str, Any] = {
    "data.image_size": 32,
    "data.num_frames": 8,
    "model.channels": 32,
    "model.channel_mult": (1, 2),
    "model.num_res_blocks": 1,
    "model.attention_levels": (1,),
    "model.transformer_depth": 1,
    "model.head_dim": 16,
    # DPM-Solver++ at 10 steps reads as well as at 20 (the judge's WER on planned and true-skeleton videos of
    # the same clips, docs/steering.md) at half the cost; evaluation samples hundreds of videos per run.
    "diffusion.sample_steps": 10,
    "train.batch_size": 8,
    "train.grad_accum": 1,
    "train.lr": 5e-4,
    "ema.update_every": 1,
}

SCALES: dict[str, dict[str, Any]] = {
    # Tests: a whole run in seconds on one CPU core.
    "tiny": {
        "data.image_size": 16,
        "data.num_frames": 4,
        "data.train_size": 16,
        "data.val_size": 4,
        "data.test_size": 4,
        "model.channels": 16,
        "model.channel_mult": (1, 2),
        "model.num_res_blocks": 1,
        "model.attention_levels": (1,),
        "model.transformer_depth": 1,
        "model.head_dim": 8,
        "diffusion.sample_steps": 4,
        "train.batch_size": 4,
        "train.grad_accum": 1,
        "train.lr": 1e-3,
        "train.warmup_steps": 2,
        "train.max_steps": 8,
        "train.log_every": 1,
        "train.validations": 2,
        "train.checkpoint_every": 1,
        "train.num_sample_prompts": 2,
        "ema.update_every": 1,
        "model.pose_plan_steps": 20,
    },
    # A quick look on a laptop in which the video follows its text (on a real corpus: its clips, not one signer):
    # minutes on a 2-core CPU, evaluated and registered (docs/steering.md has the timings).
    # One signer: with every clip's looks drawn anew, 256 steps went on learning clothing, skin and background
    # (val/text_loss_gap 0.0021, samples under colour noise); with one signer the skeleton, which the text
    # decides, is nearly all there is to draw, and the gap reached 0.007-0.011 in the same 256 steps (docs/steering.md).
    # Then half the steps at four times the learning rate: 128 steps at 2e-3 reached the val/loss of 256 at 5e-4
    # (0.095) and most of its gap (0.0085 against 0.0112, seed 0), in half the training time.
    "small": {
        **_CPU_CLIPS_AND_NETWORK,
        "data.signer_variation": 0.0,
        "data.train_size": 512,
        "data.val_size": 32,
        "data.test_size": 32,
        "train.lr": 2e-3,
        "train.warmup_steps": 20,
        "train.max_steps": 128,
        "train.log_every": 5,
        "train.validations": 2,
        "train.checkpoint_every": 2,
        "ema.decay": 0.995,
    },
    # The text-steering study on a CPU: small's clips and network, on four times the clips of every kind of signer
    # for sixteen times the steps (2,048 of batch 8), so that the text comes to decide the motion whatever the
    # signer looks like; under 2 hours on 2 cores.
    "medium": {
        **_CPU_CLIPS_AND_NETWORK,
        "data.train_size": 2048,
        "data.val_size": 64,
        # Corpus BLEU-4 needs 4-gram matches, and only a quarter of the synthetic sentences have 4 glosses: on
        # 32 test clips two seeds at about the same WER (0.34, 0.39) scored 49.3 and 0 (two matches and none).
        "data.test_size": 128,
        "train.warmup_steps": 50,
        "train.max_steps": 2048,
        "train.log_every": 10,
        "train.validations": 8,
        "train.checkpoint_every": 2,
        "ema.decay": 0.999,
        # The planner first reads 32,768 captions (its 2,048 and more, keypoints only) for 8,000 steps: on the
        # 2,048 alone it learnt them by heart and planned new captions 0.67 px off the true motion; on 32,768 it
        # has seen how signs follow one another, 0.39 px (docs/steering.md).
        "model.pose_plan_captions": 32768,
        "model.pose_plan_steps": 8000,
    },
    # The seed study's clip size on a CPU: 64x64, 16 frames, one signer with fingers. `small`'s network at this size
    # costs 17 times a `small` step, most of it attention over 32x32 maps (1,024 tokens); a third level with
    # attention only at 16x16 costs what the pixels say (about 4 times a `medium` step for half its clips).
    # One signer, as in `small`, so that the steps go on the skeleton and the hands rather than on clothing;
    # 768 steps of 4 clips and the evaluation's 384 videos fit the three hours a 2-core CPU gives it.
    "large": {
        "data.image_size": 64,
        "data.num_frames": 16,
        "data.signer_variation": 0.0,
        "data.finger_keypoints": True,
        "data.train_size": 1024,
        "data.val_size": 32,
        "data.test_size": 128,
        "model.channels": 32,
        "model.channel_mult": (1, 2, 2),
        "model.num_res_blocks": 1,
        "model.attention_levels": (2,),
        "model.transformer_depth": 1,
        "model.head_dim": 16,
        "model.pose_plan_captions": 32768,
        "model.pose_plan_steps": 8000,
        "diffusion.sample_steps": 10,
        "train.batch_size": 4,
        "train.grad_accum": 1,
        "train.lr": 2e-3,
        "train.warmup_steps": 50,
        "train.max_steps": 768,
        "train.log_every": 10,
        "train.validations": 3,
        "train.checkpoint_every": 1,
        "ema.decay": 0.995,
        "ema.update_every": 1,
    },
    # The study: 64x64, 16 frames, channels 96, depth 2, batch 2 x 8, LR 5e-5, 66,450 steps (150 epochs of its 7,096
    # clips), EMA 0.9999 / 10 steps.
    "full": {},
}


# The judge (`train_recognizer`) for each scale's clips. It trains on more clips than the generator sees: rendering
# is cheap, and a judge that has only memorized 512 clips would blame the generator for its own blind spots.
RECOGNIZER_SCALES: dict[str, RecognizerSettings] = {
    # Seconds on a CPU: proves the loop runs, judges nothing.
    "tiny": RecognizerSettings(epochs=2, batch_size=4, lr=3e-3, train_size=16, val_size=4, test_size=4),
    # The real judge for `small` runs (32x32, 8 frames): about 4 minutes on a 2-core CPU, test WER ~3%.
    "small": RecognizerSettings(epochs=6, batch_size=16, lr=2e-3, train_size=8000, val_size=128, test_size=256),
    # `medium` runs have small's clips, so the same judge reads them (evaluate picks a judge by clip size).
    "medium": RecognizerSettings(epochs=6, batch_size=16, lr=2e-3, train_size=8000, val_size=128, test_size=256),
    # `large` has the study's clip size, so the study's judge reads it; trained with `large`'s finger keypoints.
    "large": RecognizerSettings(epochs=6, batch_size=16, lr=2e-3, train_size=8000, val_size=256, test_size=256),
    # The real judge for the study (64x64, 16 frames): the small recipe, whose frames then hold more detail
    # and whose clips give each sign twice the frames. Meant for a GPU (about an hour on a 2-core CPU).
    "full": RecognizerSettings(epochs=6, batch_size=16, lr=2e-3, train_size=8000, val_size=256, test_size=256),
}


def recognizer_data_config(scale: str, corpus_seed: int = 0) -> DataConfig:
    """The corpus the judge for `scale` trains on: the scale's frames and size, the judge's split sizes."""
    if scale not in RECOGNIZER_SCALES:
        raise ValueError(f"unknown scale {scale!r}; the recognizer has settings for {', '.join(RECOGNIZER_SCALES)}")
    settings = RECOGNIZER_SCALES[scale]
    defaults = DataConfig()
    return DataConfig(
        image_size=SCALES[scale].get("data.image_size", defaults.image_size),
        num_frames=SCALES[scale].get("data.num_frames", defaults.num_frames),
        finger_keypoints=SCALES[scale].get("data.finger_keypoints", defaults.finger_keypoints),
        train_size=settings.train_size,
        val_size=settings.val_size,
        test_size=settings.test_size,
        corpus_seed=corpus_seed,
    )


# What a scale may set only for the synthetic corpus, and what a real corpus gets instead: `small`'s one signer is
# the renderer's default look, `medium`'s planner reads captions beyond its clips; a real corpus has the signers
# and the captions it has.
SYNTHETIC_ONLY: dict[str, Any] = {
    "data.signer_variation": 1.0,
    "data.finger_keypoints": False,
    "model.pose_plan_captions": 0,
}


def scale_overrides(name: str) -> dict[str, Any]:
    if name not in SCALES:
        raise ConfigError(f"scale: unknown scale {name!r}. Known scales: {', '.join(SCALES)}.")
    return dict(SCALES[name])


def corpus_defaults(config: Config, chosen: Collection[str]) -> Config:
    """`config` with what its corpus decides, for the keys that neither the ablation nor the overrides set (`chosen`).

    - The corpus path is made absolute once, here: the params, the `dataset` tag, a later evaluation and a
      resume from another folder then all name the same corpus.
    - A real corpus gets SYNTHETIC_ONLY: its signers are what they are. The fingerspelling lexicon's real motion
      is drawn on the synthetic signer, so the scale's signers (one at `small`) hold for it as for the synthetic
      corpus: on one signer the steps go on the skeleton, which the text decides.
    - The pose plan (text -> keypoints -> video) is on wherever the corpus has keypoints to learn it from:
      without it the pixel model's videos ignore their text on every budget measured (docs/steering.md).
      `pixel_only` is the model without it.
    """
    spec = parse_data_spec(config.data.name)
    settled: dict[str, Any] = {"data.name": str(spec)}
    if spec.kind != "synthetic":
        settled |= {key: value for key, value in SYNTHETIC_ONLY.items() if key not in chosen and
                    not (spec.kind == "fingerspelling" and key == "data.signer_variation")}
    if "model.pose_plan" not in chosen:
        settled["model.pose_plan"] = corpus_has_keypoints(spec)
    elif config.model.pose_plan and not corpus_has_keypoints(spec):
        raise _no_keypoints(spec)
    return apply_overrides(config, settled, source="the corpus")


def _no_keypoints(spec: DataSpec) -> ConfigError:
    return ConfigError(
        f"model.pose_plan: True is not allowed; it must be false for this corpus: the pose plan learns from "
        f"keypoints, and {spec} has none on disk. Extract them once with MediaPipe: "
        f"python -m text2sign.data extract-keypoints {spec} (docs/keypoints.md), or train without the plan "
        f"(-P ablation=pixel_only).")
