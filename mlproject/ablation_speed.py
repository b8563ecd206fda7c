"""Ablations side by side: each ablation's training step timed against the baseline's, interleaved in one process.

Does `text_finetuned` train 20-30% slower than `baseline`, and `no_ema` as fast? Runs days or machines apart
cannot say: one machine's speed moves about 3x over a day, more than the difference asked about. Here every
ablation trains in the same process on the same machine, in rounds: each round runs `steps_per_round`
optimizer steps of every ablation in turn, and each ablation's mean step time is divided by the baseline's of
the same round. The machine's drift, slow against the seconds of a round, divides out of each round's ratio;
the rounds' ratios give a mean and a 95% t-interval. The order within a round follows a Williams design
(`round_orders`): it rotates every round, and over a cycle each ablation follows every other equally often,
so none always pays for (or profits from) the caches another leaves behind.

One step is, for every ablation, what the trainer's loop (`trainer.train_epoch`) does per step, with the real
code: `optimizer_step` (caption dropout, the text encoding, the pose plan's planner loss where `model.pose_plan`
is on, the diffusion loss, backward, gradient clipping, AdamW, the LR schedule), `update_ema_if_due` (the EMA
of the UNet, and of the encoder where it is trained) and `log_window` at its `train.log_every` steps. Each
ablation has its own model, optimizer and EMA as its config says. A frozen encoder reads its cache, which
already holds every caption timed, as after a run's first epoch; a trained one (`text_finetuned`) runs forward
and backward every step.

Left out, because they are the same for every ablation or paid once per run rather than per step:
- data loading: every ablation reads the same batches, drawn before timing in the trainer's epoch order, so no
  loader noise lands on one ablation and not another;
- the planner's own steps before training (`model.pose_plan_steps`, `training.planner_first`): once per run,
  logged by each run as `pose_plan/first_s`;
- validation, checkpoints and samples at epoch ends.
"""

from __future__ import annotations

import datetime
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import scipy.stats
import torch
from torch.utils.data import Dataset

from ablations import ablation_path
from text2sign import hardware
from text2sign.config import Config, ConfigError
from text2sign.data import build_dataset, collate
from text2sign.training.state import Training, build_models, steps_per_epoch
from text2sign.training.trainer import epoch_order, log_window, optimizer_step, update_ema_if_due

from mlproject.benchmark import Timer, training_of
from mlproject.config_from_params import resolve_config

REFERENCE = "baseline"  # every ratio is an ablation's step time over this one's
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SideBySideSettings:
    """What `measure` times. The reference (`baseline`) is always among `ablations`, first."""

    ablations: tuple[str, ...] = ("baseline", "text_finetuned", "no_ema", "pixel_only")
    scale: str = "small"
    rounds: int = 8
    steps_per_round: int = 2
    warmup_steps: int = 2  # per ablation, untimed: first-call allocations, lazy inits
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in self.ablations:
            ablation_path(name)  # an unknown name raises ConfigError listing the known ones
        if len(set(self.ablations)) != len(self.ablations):
            raise ConfigError(f"ablations: {', '.join(self.ablations)} names one twice; list each once.")
        if self.ablations[:1] != (REFERENCE,):
            raise ConfigError(f"ablations: {REFERENCE} must come first, the reference every ratio is taken against.")
        if self.rounds < 2:
            raise ConfigError(f"rounds: got {self.rounds}; a 95% interval needs at least 2 rounds (8 is the default).")
        if self.steps_per_round < 1:
            raise ConfigError(f"steps_per_round: got {self.steps_per_round}; each round needs at least 1 step.")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps: got {self.warmup_steps}; expected 0 or more.")


def with_reference(names: Sequence[str]) -> tuple[str, ...]:
    """`names` with the reference first, added when it was not asked for: a ratio needs it."""
    return (REFERENCE, *(n for n in names if n != REFERENCE))


@dataclass
class AblationTiming:
    name: str
    seconds_per_step: list[float]  # per round: the mean of its steps in that round
    ratios: list[float]  # per round: seconds_per_step over the reference's in the same round

    @property
    def ratio(self) -> tuple[float, float, float]:
        """The mean ratio over the rounds and its 95% t-interval: (mean, low, high)."""
        return t_interval(self.ratios)


@dataclass
class SideBySide:
    settings: SideBySideSettings
    cpu: str
    device_name: str
    date: str
    torch_threads: int
    orders: list[list[str]]  # per round, the order the ablations ran in
    timings: list[AblationTiming]

    def to_dict(self) -> dict[str, object]:
        figures = asdict(self)
        for row, timing in zip(figures["timings"], self.timings):
            row["ratio_mean"], row["ratio_low"], row["ratio_high"] = timing.ratio
        return figures


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of `values` and Student's t-interval around it: (mean, low, high). Needs two values or more."""
    mean = statistics.fmean(values)
    half = scipy.stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - float(half), mean + float(half)


def round_orders(names: Sequence[str], rounds: int) -> list[list[str]]:
    """The order of `names` in each round: the rows of a Williams square, one per round, cycled.

    Each row is the first shifted by one (a rotation of the labels), and the first, 0, 1, n-1, 2, n-2, ...,
    makes every ordered pair neighbours exactly once over n rows (n even); for n odd the mirrored rows follow,
    and every pair is neighbours twice over 2n. So each ablation runs first, and right after each other one,
    equally often: what one leaves behind in the caches does not always fall on the same other.
    """
    n = len(names)
    first, low, high = [0], 1, n - 1
    while low <= high:
        first.append(low)
        low += 1
        if low <= high:
            first.append(high)
            high -= 1
    rows = [[(label + shift) % n for label in first] for shift in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return [[names[i] for i in rows[r % len(rows)]] for r in range(rounds)]


def draw_batches(config: Config, train_set: Dataset, steps: int) -> list[list[dict]]:
    """`steps` optimizer steps' micro-batches from the train split in the trainer's order: each epoch its own
    shuffle, an incomplete last step dropped."""
    tc = config.train
    per_epoch, per_step = steps_per_epoch(config, len(train_set)), tc.batch_size * tc.grad_accum
    epochs = range(math.ceil(steps / per_epoch))
    order = [i for epoch in epochs for i in epoch_order(len(train_set), tc.seed, epoch)[:per_epoch * per_step]]
    batches = [collate([train_set[i] for i in order[b * tc.batch_size:(b + 1) * tc.batch_size]])
               for b in range(steps * tc.grad_accum)]
    return [batches[s * tc.grad_accum:(s + 1) * tc.grad_accum] for s in range(steps)]


def contestant(config: Config, device: torch.device, train_samples: int, steps: list[list[dict]]) -> Training:
    """One ablation's `Training`, as `set_up` builds it (model, EMA, optimizer, LR schedule) but without a run
    folder, tracker or the planner's steps before training. A frozen encoder's cache is filled with every
    caption of `steps` and the empty one (caption dropout), as a run's is after its first epoch."""
    torch.manual_seed(config.train.seed)
    model, ema_model = build_models(config, device)
    training = training_of(config, model, ema_model, device, train_samples)
    if config.text.freeze:
        captions = {text for micro_batches in steps for batch in micro_batches for text in batch["texts"]}
        model.encode(sorted(captions | {""}))
    return training


def train_step(training: Training, micro_batches: list[dict]) -> None:
    """What the trainer's loop does per optimizer step, bar the progress bar and the stop request."""
    optimizer_step(training, micro_batches)
    update_ema_if_due(training)
    if training.position.step % training.config.train.log_every == 0:
        log_window(training)


def build(settings: SideBySideSettings, progress: Callable[[str], None] = lambda message: None
          ) -> tuple[dict[str, Training], list[list[dict]]]:
    """Each ablation's `Training`, and the steps' micro-batches they all read, in order."""
    configs = {name: resolve_config(name, settings.scale, settings.seed, overrides=f"train.device={settings.device}")
               for name in settings.ablations}
    reference = configs[REFERENCE]
    differing = [name for name, config in configs.items() if config.data != reference.data
                 or config.train.batch_size != reference.train.batch_size
                 or config.train.grad_accum != reference.train.grad_accum]
    if differing:
        raise ConfigError(f"ablations: {', '.join(differing)} change the data or the batch, so their steps would "
                          f"do other work than {REFERENCE}'s; compare them in a study instead.")
    device = hardware.pick_device(settings.device)
    hardware.check_cpu_bf16(reference.train, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # as the trainer's set_up
        torch.backends.cudnn.allow_tf32 = True
    train_set = build_dataset(reference.data, "train")
    steps = draw_batches(reference, train_set, settings.warmup_steps + settings.rounds * settings.steps_per_round)
    trainings = {}
    for name, config in configs.items():
        progress(f"building {name}")
        trainings[name] = contestant(config, device, len(train_set), steps)
    return trainings, steps


def warm_up(trainings: dict[str, Training], steps: list[list[dict]], count: int) -> None:
    for training in trainings.values():
        for micro_batches in steps[:count]:
            train_step(training, micro_batches)


def time_rounds(trainings: dict[str, Training], steps: list[list[dict]], settings: SideBySideSettings,
                progress: Callable[[str], None] = lambda message: None
                ) -> tuple[list[list[str]], dict[str, list[float]]]:
    """Rounds of `steps_per_round` steps of every ablation in turn; returns each round's order and each
    ablation's mean seconds per step in each round. Every ablation reads the steps from where it stands, so
    all of them train on the same batches at the same step."""
    orders = round_orders(list(trainings), settings.rounds)
    seconds: dict[str, list[float]] = {name: [] for name in trainings}
    device = next(iter(trainings.values())).device
    for number, order in enumerate(orders, start=1):
        for name in order:
            training = trainings[name]
            start = training.position.step
            with Timer(device) as timer:  # the device's queue drained at both ends
                for micro_batches in steps[start:start + settings.steps_per_round]:
                    train_step(training, micro_batches)
            seconds[name].append(timer.seconds / settings.steps_per_round)
        progress(f"round {number}/{len(orders)}: "
                 + ", ".join(f"{name} {1000 * seconds[name][-1]:.0f} ms" for name in order))
    return orders, seconds


def measure(settings: SideBySideSettings, progress: Callable[[str], None] = lambda message: None) -> SideBySide:
    """Build every ablation, warm each up, time them in interleaved rounds; the ratios to the baseline."""
    trainings, steps = build(settings, progress)
    warm_up(trainings, steps, settings.warmup_steps)
    orders, seconds = time_rounds(trainings, steps, settings, progress)
    reference = seconds[REFERENCE]
    timings = [AblationTiming(name, per_round, [s / r for s, r in zip(per_round, reference)])
               for name, per_round in seconds.items()]
    device = next(iter(trainings.values())).device
    return SideBySide(
        settings=settings,
        cpu=hardware.cpu_model(),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else hardware.cpu_model(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        torch_threads=torch.get_num_threads(),
        orders=orders,
        timings=timings,
    )


def format_table(result: SideBySide) -> str:
    """The heading (machine, date, settings) and one row per ablation, as markdown."""
    s = result.settings
    host = f" (host CPU {result.cpu})" if s.device == "cuda" else ""
    lines = [
        f"{result.device_name}{host}, {result.torch_threads} torch threads, {result.date}, scale {s.scale}: "
        f"{s.rounds} rounds of {s.steps_per_round} optimizer step(s) per ablation, interleaved, "
        f"after {s.warmup_steps} warm-up step(s) each",
        "",
        f"| ablation | ms/step, mean (range over rounds) | ratio to {REFERENCE} | 95% interval | rounds |",
        "|---|---|---|---|---|",
    ]
    for timing in result.timings:
        ms = [1000 * seconds for seconds in timing.seconds_per_step]
        mean, low, high = timing.ratio
        lines.append(f"| {timing.name} | {statistics.fmean(ms):.0f} ({min(ms):.0f}-{max(ms):.0f}) | {mean:.3f} "
                     f"| {low:.3f}-{high:.3f} | {len(timing.ratios)} |")
    return "\n".join(lines)
