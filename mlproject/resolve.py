"""From what a user typed to one validated Config: defaults -> scale -> ablation -> overrides."""

from __future__ import annotations

from ablations import ablation_name, load_ablation
from text2sign.config import Config, apply_overrides, parse_overrides, validate
from text2sign.data.real import corpus_has_keypoints
from text2sign.data.spec import parse_data_spec
from text2sign.scales import SYNTHETIC_ONLY, scale_overrides


def resolve_config(
    ablation: str = "baseline",
    scale: str = "small",
    seed: int = 0,
    epochs: str | int | None = None,
    data: str = "synthetic",
    overrides: str = "",
) -> Config:
    """Build and validate the config of one run; raises ConfigError with the fix in its message.

    The pose plan (text -> keypoints -> video) is on wherever the corpus has keypoints to learn it from,
    unless the ablation or the overrides say otherwise: without it the pixel model's videos ignore their
    text on every budget measured (docs/steering.md). `pixel_only` is the model without it.
    """
    config = apply_overrides(Config(), scale_overrides(scale), source=f"scale {scale!r}")
    chosen = load_ablation(ablation)
    config = apply_overrides(config, chosen, source=f"ablation {ablation_name(ablation)!r}")
    explicit: dict[str, object] = {"data.name": data, "train.seed": seed}
    if epochs not in (None, ""):
        explicit["train.epochs"] = epochs
    config = apply_overrides(config, explicit, source="parameters")
    requested = parse_overrides(overrides)
    config = apply_overrides(config, requested, source="overrides")
    chosen |= requested
    # A corpus path is made absolute once, here: the params, the `dataset` tag, a later evaluation
    # and a resume from another folder then all name the same corpus.
    spec = parse_data_spec(config.data.name)
    config = apply_overrides(config, {"data.name": str(spec)}, source="parameters")
    if spec.kind != "synthetic":
        # A scale's synthetic-only settings mean nothing on a real corpus, whose signers are what they are.
        keep = {key: value for key, value in SYNTHETIC_ONLY.items() if key not in chosen}
        config = apply_overrides(config, keep, source="the corpus")
    if "model.pose_plan" not in chosen:
        config = apply_overrides(config, {"model.pose_plan": corpus_has_keypoints(spec)}, source="the corpus")
    validate(config)
    return config


def run_name(ablation: str, scale: str, seed: int) -> str:
    return f"{ablation_name(ablation)}-{scale}-s{seed}"
