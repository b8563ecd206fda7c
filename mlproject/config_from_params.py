"""From what a user typed to one validated Config: defaults -> scale -> ablation -> overrides -> the corpus's."""

from __future__ import annotations

from ablations import ablation_name, load_ablation
from text2sign.config import Config, apply_overrides, parse_overrides, validate
from text2sign.scales import corpus_defaults, scale_overrides

# How long a run is and how often it validates. The scale's are defaults: epochs a user gives replace its steps
# (they would otherwise end at whichever comes first), and a resumed run keeps its own unless the command gives
# any of these (`mlproject.train`).
RUN_LENGTH = ("train.epochs", "train.max_steps", "train.validations")


def resolve_config(
    ablation: str = "baseline",
    scale: str = "small",
    seed: int = 0,
    epochs: str | int | None = None,
    data: str = "synthetic",
    overrides: str = "",
) -> Config:
    """Build and validate the config of one run; raises ConfigError with the fix in its message.

    Epochs given without train.max_steps (`epochs`, the ablation or the overrides) replace the scale's steps. Last,
    the corpus settles what depends on it (`corpus_defaults`: the pose plan on wherever it has keypoints), where
    neither the ablation nor the overrides chose.
    """
    config = apply_overrides(Config(), scale_overrides(scale), source=f"scale {scale!r}")
    chosen = load_ablation(ablation)
    config = apply_overrides(config, chosen, source=f"ablation {ablation_name(ablation)!r}")
    explicit: dict[str, object] = {"data.name": data, "train.seed": seed}
    if epochs not in (None, ""):
        explicit["train.epochs"] = epochs
    given = length_given(ablation, epochs, overrides)
    if "train.epochs" in given and "train.max_steps" not in given:
        explicit["train.max_steps"] = 0  # as many epochs as asked, not fewer if the scale's steps end first
    config = apply_overrides(config, explicit, source="parameters")
    requested = parse_overrides(overrides)
    config = apply_overrides(config, requested, source="overrides")
    config = corpus_defaults(config, chosen.keys() | requested.keys())
    validate(config)
    return config


def length_given(ablation: str, epochs: str | int | None, overrides: str) -> set[str]:
    """The keys of RUN_LENGTH that the user set: `epochs`, or the key in the ablation or the overrides."""
    given = load_ablation(ablation).keys() | parse_overrides(overrides).keys()
    if epochs not in (None, ""):
        given |= {"train.epochs"}
    return given & set(RUN_LENGTH)


def run_name(ablation: str, scale: str, seed: int) -> str:
    return f"{ablation_name(ablation)}-{scale}-s{seed}"
