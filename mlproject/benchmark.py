"""Training and sampling speed of our UNet against diffusers' UNet3DConditionModel at the same size.

Both networks are trained by the trainer's own optimizer step (`trainer.optimizer_step`: caption dropout,
the diffusion loss and, for ours with a pose plan, the plan's loss, bf16 autocast on CUDA, gradient
clipping, AdamW at the warm-up + cosine LR schedule of the configured run), then the trainer's EMA every
`ema.update_every` steps, on the same batches of the configured corpus and the same text embeddings, in
one process, one after the other. diffusers' model is given the block layout of ours (levels, blocks per
level, cross-attention at the same levels) and the base width that brings its parameter count closest to
ours.

What is measured for each, warm-up excluded, CUDA synchronized at the ends of every timed span:

    videos/s, ms per optimizer step     steps fed by the real DataLoader
    data wait                           1 - (time with batches already on the device) / (time fed by the loader):
                                        the share of the step the loader adds, 0 when it keeps up
    EMA                                 time in the EMA update (CUDA events) / step time
    FLOPs per step, MFU                 torch.utils.flop_counter on one micro-batch; MFU against the
                                        device's dense bf16 peak (CUDA only)
    peak GPU memory                     torch.cuda.max_memory_allocated over the timed steps
    sampling s/video                    DDIM 50 and DPM-Solver++ 20 steps with the configured guidance

Text embeddings are computed once per distinct text, as a frozen encoder's cache does in training:
the encoder costs nothing per step in either model, and `text_encoder="random"` swaps MiniLM for a
fixed random table of the same shape where the packaged model is not installed (a GPU image).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from text2sign import hardware
from text2sign.config import BenchSettings, Config
from text2sign.data import build_dataset, collate
from text2sign.diffusion import GaussianDiffusion
from text2sign.models import UNet3D
from text2sign.pipeline import TextToSign
from text2sign.training.distributed import SINGLE
from text2sign.training.optimization import warmup_cosine_schedule
from text2sign.training.reporting import NullTracker
from text2sign.training.trainer import draw_step, micro_batch_objective, optimizer_step, update_ema_if_due
from text2sign.training.state import (LogWindow, Position, Training, build_optimizer, memory_format_of, steps_per_epoch,
                                      total_steps)

# Dense bf16 tensor-core peak (FLOP/s, no sparsity) by device-name fragment, from the vendors' data sheets.
DENSE_BF16_PEAK_FLOPS: dict[str, float] = {
    "H200": 989.4e12,
    "H100 PCIe": 756.0e12,
    "H100": 989.4e12,  # SXM; listed after "PCIe" so the more specific name wins
    "A100": 312.0e12,
    "L40S": 362.05e12,
    "A10G": 70.0e12,
    "L4": 121.0e12,
}
MINILM_DIM, MINILM_TOKENS = 384, 32


@dataclass
class ModelFigures:
    name: str
    parameters: int
    videos_per_s: float
    ms_per_step: float
    data_wait_frac: float
    ema_frac: float
    flops_per_step: float
    mfu: float | None  # None off CUDA or on a device whose peak is not in DENSE_BF16_PEAK_FLOPS
    peak_mem_gib: float | None  # None off CUDA
    sample_s_per_video: dict[str, float] = field(default_factory=dict)  # "ddim_50", "dpmsolverpp_20" -> seconds


@dataclass
class BenchResult:
    device: str
    device_name: str
    date: str
    versions: dict[str, object]
    settings: dict[str, object]
    models: list[ModelFigures]

    @property
    def speedup(self) -> float:
        """Training videos/s of ours over diffusers'."""
        figures = {m.name: m for m in self.models}
        return figures["ours"].videos_per_s / figures["diffusers"].videos_per_s

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "speedup": self.speedup}


class DiffusersDenoiser(nn.Module):
    """UNet3DConditionModel behind our denoiser signature  (x, timesteps, context, mask) -> prediction.

    UNet3DConditionModel has no encoder attention mask, so it attends to the padding tokens too; the
    padded embeddings are the encoder's real output for [PAD], the same input in both models.
    """

    pose_planner = None  # no pose plan: the trainer's step trains it on the diffusion loss alone

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor, context_mask: Tensor,
                keypoints: Tensor | None = None) -> Tensor:
        return self.unet(x, timesteps, encoder_hidden_states=context).sample


def _heads_and_groups(base: int, head_dim: int) -> tuple[int, int] | None:
    """Attention heads (about `head_dim` channels each) and GroupNorm groups (the largest divisor of
    `base` up to 32) for a base width, or None when the heads do not divide it."""
    heads = max(1, round(base / head_dim))
    if base % heads:
        return None
    return heads, max(g for g in range(1, 33) if base % g == 0)


def _diffusers_kwargs(config: Config, base: int, context_dim: int) -> dict[str, object]:
    m = config.model
    levels = range(len(m.channel_mult))
    heads, groups = _heads_and_groups(base, m.head_dim)
    return dict(
        sample_size=config.data.image_size,
        in_channels=3,
        out_channels=3,
        down_block_types=tuple("CrossAttnDownBlock3D" if i in m.attention_levels else "DownBlock3D" for i in levels),
        up_block_types=tuple("CrossAttnUpBlock3D" if i in m.attention_levels else "UpBlock3D" for i in reversed(levels)),
        block_out_channels=tuple(base * mult for mult in m.channel_mult),
        layers_per_block=m.num_res_blocks,
        norm_num_groups=groups,
        cross_attention_dim=context_dim,
        attention_head_dim=heads,  # diffusers' name for the number of heads in this model
    )


def diffusers_unet_like(config: Config, context_dim: int, target_parameters: int) -> nn.Module:
    """diffusers' UNet3DConditionModel with our layout and the base width whose parameter count is
    closest to `target_parameters`; candidates are counted on the meta device, so no memory is used."""
    from diffusers import UNet3DConditionModel

    def count(base: int) -> int:
        with torch.device("meta"):
            model = UNet3DConditionModel(**_diffusers_kwargs(config, base, context_dim))
        return sum(p.numel() for p in model.parameters())

    # Even widths with valid heads; the count grows with the width, so bisect for the first at or above.
    bases = [b for b in range(2, 2049, 2) if _heads_and_groups(b, config.model.head_dim)]
    low, high = 0, len(bases) - 1
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if count(bases[middle]) < target_parameters else (low, middle)
    base = min(bases[max(0, low - 1) : low + 1], key=lambda b: abs(count(b) - target_parameters))
    return UNet3DConditionModel(**_diffusers_kwargs(config, base, context_dim))


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for fragment, flops in DENSE_BF16_PEAK_FLOPS.items() if fragment in name), None)


class TextTable:
    """Each distinct text's token embeddings [L, D] and mask [L], computed once, on the device."""

    def __init__(self, config: Config, texts: list[str], kind: str, device: torch.device, seed: int):
        unique = list(dict.fromkeys(texts + [""]))
        if kind == "random":
            generator = torch.Generator().manual_seed(seed)
            hidden = torch.randn(len(unique), MINILM_TOKENS, MINILM_DIM, generator=generator)
            lengths = torch.randint(4, MINILM_TOKENS + 1, (len(unique),), generator=generator)
            mask = torch.arange(MINILM_TOKENS)[None, :] < lengths[:, None]
        elif kind == "config":
            from text2sign.text_encoder import TextEncoder

            encoder = TextEncoder(config.text.encoder, config.text.max_length, freeze=True)
            hidden, mask = encoder(unique)
        else:
            raise ValueError(f"text_encoder={kind!r}: expected 'config' or 'random'")
        self.index = {text: i for i, text in enumerate(unique)}
        self.hidden, self.mask = hidden.detach().to(device), mask.to(device)
        self.dim = int(self.hidden.shape[-1])

    def __call__(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        rows = torch.tensor([self.index[t] for t in texts], device=self.hidden.device)
        return self.hidden[rows], self.mask[rows]


class Timer:
    """Wall time of a span with the device's queue drained at both ends."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> "Timer":
        self.sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.sync()
        self.seconds = time.perf_counter() - self.start


class BenchModel(TextToSign):
    """TextToSign with the benchmark's parts: any denoiser as its UNet, the text table as its encoder, so that
    the trainer's step trains it as it trains ours."""

    def __init__(self, config: Config, unet: nn.Module, text: TextTable):
        nn.Module.__init__(self)  # not TextToSign's, which would load the text encoder and build our UNet
        self.config, self.unet, self.text_encoder = config, unet, text


def bench_training(denoiser: nn.Module, config: Config, text: TextTable, device: torch.device,
                   train_samples: int) -> Training:
    """The trainer's `Training` around `denoiser`, with the text table as its fixed encoder (`training_of`)."""
    config = dataclasses.replace(config, text=dataclasses.replace(config.text, freeze=True))  # the table is fixed
    denoiser.to(device, memory_format=memory_format_of(config)).train()
    model = BenchModel(config, denoiser, text)
    ema_model = None
    if config.ema.enabled:
        ema_model = BenchModel(config, copy.deepcopy(denoiser).requires_grad_(False).eval(), text)
    return training_of(config, model, ema_model, device, train_samples)


def training_of(config: Config, model: TextToSign, ema_model: TextToSign | None, device: torch.device,
                train_samples: int) -> Training:
    """The trainer's `Training` around a built model and its EMA, holding what its optimizer step reads: AdamW
    with the LR schedule of a run over `train_samples` clips, the random stream. A run's other parts (data
    splits, run folder, tracker, validation and checkpoint steps) the step never reads, and they are left empty."""
    optimizer, trainable = build_optimizer(config, model, device)
    num_steps = total_steps(config, train_samples)
    return Training(
        config=config, world=SINGLE, device=device, run_dir=None, tracker=NullTracker(), splits=None, model=model,
        ema_model=ema_model, ddp=None, forward=torch.compile(model) if config.train.compile else model,
        diffusion=GaussianDiffusion(config.diffusion), optimizer=optimizer,
        scheduler=warmup_cosine_schedule(optimizer, config.train.warmup_steps, num_steps),
        generator=torch.Generator().manual_seed(config.train.seed), trainable=trainable, num_steps=num_steps,
        per_epoch=steps_per_epoch(config, train_samples), validation_steps=[], checkpoint_steps=[],
        local_accum=config.train.grad_accum, resume_from=None, position=Position(),
        window=LogWindow(started=time.perf_counter()), started=time.perf_counter(),
    )


class SpanClock:
    """Seconds spent inside its spans, on the device's clock. CUDA events are recorded without waiting and
    read by `seconds()` once the caller has synchronized, so timing a span adds no wait to the step."""

    def __init__(self, device: torch.device):
        self.device, self.events, self.cpu_seconds = device, [], 0.0

    @contextmanager
    def span(self) -> Iterator[None]:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self.events.append((start, end))
        else:
            began = time.perf_counter()
            yield
            self.cpu_seconds += time.perf_counter() - began

    def seconds(self) -> float:
        return self.cpu_seconds + sum(start.elapsed_time(end) for start, end in self.events) / 1000.0


def train_steps(training: Training, micro_batches: Iterator[dict], count: int, ema_clock: SpanClock) -> None:
    """`count` optimizer steps of the trainer, each on the next grad_accum micro-batches, and its EMA updates,
    timed by `ema_clock`."""
    for _ in range(count):
        optimizer_step(training, list(itertools.islice(micro_batches, training.local_accum)))
        with ema_clock.span():
            update_ema_if_due(training)


def _loader(dataset, config: Config, device: torch.device) -> Callable[[], Iterator[dict]]:
    """Endless batches as the trainer loads them (workers, pinned memory), each call a fresh iterator."""
    workers = config.data.num_workers
    loader = DataLoader(dataset, batch_size=config.train.batch_size, shuffle=True, collate_fn=collate, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                        prefetch_factor=4 if workers else None, generator=torch.Generator().manual_seed(0))
    return lambda: itertools.chain.from_iterable(itertools.repeat(loader))


def measure_model(name: str, denoiser: nn.Module, config: Config, text: TextTable, settings: BenchSettings,
                  device: torch.device, batches: Callable[[], Iterator[dict]], train_samples: int,
                  sampling: bool = True) -> ModelFigures:
    """`denoiser`'s figures under the trainer's step, with the LR schedule of a run over `train_samples` clips."""
    training = bench_training(denoiser, config, text, device, train_samples)
    timer, fed = Timer(device), batches()
    train_steps(training, fed, settings.warmup_steps, SpanClock(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ema_clock = SpanClock(device)
    with timer:
        train_steps(training, fed, settings.steps, ema_clock)
    loader_seconds, ema_seconds = timer.seconds, ema_clock.seconds()

    # The same steps from batches already on the device: what the step costs when data is free.
    resident = [{**b, "video": b["video"].to(device)} for b in itertools.islice(fed, config.train.grad_accum * 2)]
    with timer:
        train_steps(training, itertools.cycle(resident), settings.steps, SpanClock(device))
    resident_seconds = timer.seconds
    peak = torch.cuda.max_memory_allocated(device) / hardware.GIB if device.type == "cuda" else None

    from torch.utils.flop_counter import FlopCounterMode

    eager = dataclasses.replace(training, forward=training.model)  # the counter sees aten ops, not a compiled graph
    with FlopCounterMode(display=False) as counter:
        micro_batch_objective(eager, resident[0], draw_step(training)[0])[0].backward()
    training.optimizer.zero_grad(set_to_none=True)
    flops = counter.get_total_flops() * config.train.grad_accum
    seconds_per_step = loader_seconds / settings.steps
    peak_device = peak_flops(device)

    # "dpmsolver++" -> "dpmsolverpp": MLflow metric names allow no "+".
    samples = {f"{sampler.replace('+', 'p')}_{steps}": _sampling_seconds(denoiser, text, config, settings, device, sampler, steps)
               for sampler, steps in settings.samplers} if sampling else {}
    return ModelFigures(
        name=name,
        parameters=sum(p.numel() for p in denoiser.parameters()),
        videos_per_s=settings.steps * config.train.batch_size * config.train.grad_accum / loader_seconds,
        ms_per_step=1000.0 * seconds_per_step,
        data_wait_frac=max(0.0, 1.0 - resident_seconds / loader_seconds),
        ema_frac=ema_seconds / loader_seconds,
        flops_per_step=float(flops),
        mfu=flops / seconds_per_step / peak_device if peak_device else None,
        peak_mem_gib=peak,
        sample_s_per_video=samples,
    )


@torch.no_grad()
def _sampling_seconds(denoiser: nn.Module, text: TextTable, config: Config, settings: BenchSettings,
                      device: torch.device, sampler: str, steps: int) -> float:
    denoiser.eval()
    diffusion = GaussianDiffusion(config.diffusion)
    texts = list(text.index)[: settings.sample_videos]
    texts += [texts[0]] * (settings.sample_videos - len(texts))
    context, mask = text(texts)
    null_context, null_mask = text([""])
    shape = (len(texts), 3, config.data.num_frames, config.data.image_size, config.data.image_size)
    autocast = hardware.autocast_dtype(config.train, device) is not None

    def run(walk: int) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            diffusion.sample(denoiser, context, mask, null_context, null_mask, shape,
                             guidance_scale=config.diffusion.guidance_scale, steps=walk, sampler=sampler,
                             generator=torch.Generator().manual_seed(settings.seed))

    run(2)  # warm-up
    timer = Timer(device)
    with timer:
        run(steps)
    denoiser.train()
    return timer.seconds / len(texts)


def run_benchmark(config: Config, settings: BenchSettings, device: torch.device,
                  progress: Callable[[str], None] = lambda message: None) -> BenchResult:
    """Measure ours, then diffusers' at matched size, on the same data and text embeddings."""
    torch.manual_seed(settings.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dataset = build_dataset(config.data, "train")
    if config.data.num_workers > 0 and hasattr(dataset, "prerender"):
        dataset.prerender(config.data.num_workers)  # as the trainer does
    batches = _loader(dataset, config, device)
    text = TextTable(config, dataset.texts, settings.text_encoder, device, settings.seed)

    ours = UNet3D(config.model, context_dim=text.dim)
    target = sum(p.numel() for p in ours.parameters())
    progress(f"ours: {target:,} parameters")
    figures = [measure_model("ours", ours, config, text, settings, device, batches, len(dataset))]
    del ours
    if device.type == "cuda":
        torch.cuda.empty_cache()

    theirs = DiffusersDenoiser(diffusers_unet_like(config, text.dim, target))
    progress(f"diffusers UNet3DConditionModel: {sum(p.numel() for p in theirs.parameters()):,} parameters")
    figures.append(measure_model("diffusers", theirs, config, text, settings, device, batches, len(dataset)))

    info = hardware.describe(device)
    return BenchResult(
        device=str(device),
        device_name=str(info["device_name"]),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions={k: info[k] for k in ("torch", "cuda", "diffusers", "python", "platform", "torch_threads")},
        settings={**asdict(settings), "batch_size": config.train.batch_size, "grad_accum": config.train.grad_accum,
                  "image_size": config.data.image_size, "num_frames": config.data.num_frames,
                  "precision": "bf16" if hardware.autocast_dtype(config.train, device) is not None else "fp32",
                  "compile": config.train.compile, "num_workers": config.data.num_workers},
        models=figures,
    )


# The fast path, one switch at a time: its name, the overrides that turn it on and off, and where it
# applies. Each is measured by flipping it from the configured setting, everything else unchanged.
SWITCHES: tuple[tuple[str, dict[str, object], dict[str, object], tuple[str, ...]], ...] = (
    ("bf16 autocast", {"train.precision": "bf16"}, {"train.precision": "fp32"}, ("cuda",)),
    ("torch.compile", {"train.compile": True}, {"train.compile": False}, ("cuda", "cpu")),
    ("EMA every ema.update_every steps (vs every step)", {}, {"ema.update_every": 1}, ("cuda", "cpu")),
    ("DataLoader workers (vs in the training process)", {}, {"data.num_workers": 0}, ("cuda", "cpu")),
    ("channels-last 3-D", {"train.channels_last": True}, {"train.channels_last": False}, ("cuda", "cpu")),
    ("gradient checkpointing", {"model.gradient_checkpointing": True}, {"model.gradient_checkpointing": False},
     ("cuda", "cpu")),
    ("bf16 autocast on a CPU with bf16 hardware", {"train.cpu_bf16": True}, {"train.cpu_bf16": False}, ("cpu",)),
)


SWITCH_KEYS = ("bf16", "compile", "ema_every", "workers", "channels_last", "grad_checkpointing", "cpu_bf16")  # short names for the command line


@dataclass
class SwitchFigures:
    key: str  # one of SWITCH_KEYS
    switch: str
    on_videos_per_s: float
    off_videos_per_s: float
    on_peak_mem_gib: float | None
    off_peak_mem_gib: float | None

    @property
    def gain(self) -> float:
        return self.on_videos_per_s / self.off_videos_per_s


def ablate_switches(config: Config, settings: BenchSettings, device: torch.device, names: list[str] | None = None,
                    progress: Callable[[str], None] = lambda message: None) -> list[SwitchFigures]:
    """Training videos/s of our UNet with each fast-path switch on and off, the rest as configured.

    A switch whose "on" is the configured setting is measured once more with it off, and vice versa;
    switches that do nothing on this device (bf16 autocast on a CPU), or whose on and off are the same
    config, are left out. Workers are only
    compared when the config uses some. `names`: the switches (by SWITCH_KEYS key) to measure, else all.
    """
    from text2sign.config import apply_overrides, to_json

    dataset = build_dataset(config.data, "train")
    text = TextTable(config, dataset.texts, settings.text_encoder, device, settings.seed)
    measured: dict[str, ModelFigures] = {}

    def measure(overrides: dict[str, object]) -> ModelFigures:
        variant = apply_overrides(config, overrides, source="bench switch")
        key = to_json(variant)
        if key not in measured:
            torch.manual_seed(settings.seed)
            variant_set = build_dataset(variant.data, "train")
            measured[key] = measure_model("ours", UNet3D(variant.model, context_dim=text.dim), variant, text, settings,
                                          device, _loader(variant_set, variant, device), len(variant_set), sampling=False)
        return measured[key]

    rows = []
    for key, (name, on, off, devices) in zip(SWITCH_KEYS, SWITCHES):
        if names is not None and key not in names:
            continue
        if device.type not in devices or (name.startswith("DataLoader") and config.data.num_workers == 0):
            continue
        if key == "cpu_bf16" and hardware.autocast_dtype(apply_overrides(config, on).train, device) is None:
            continue  # without bf16 hardware (or with train.precision=fp32) the switch leaves fp32 on
        if to_json(apply_overrides(config, on)) == to_json(apply_overrides(config, off)):
            continue  # e.g. EMA already every step: nothing to compare
        progress(f"switch: {name}")
        on_figures, off_figures = measure(on), measure(off)
        rows.append(SwitchFigures(key, name, on_figures.videos_per_s, off_figures.videos_per_s,
                                  on_figures.peak_mem_gib, off_figures.peak_mem_gib))
    return rows


def format_switches(rows: list[SwitchFigures]) -> str:
    lines = ["| switch | videos/s on | videos/s off | gain | peak GiB on / off |", "|---|---|---|---|---|"]
    for row in rows:
        memory = ("n/a" if row.on_peak_mem_gib is None
                  else f"{row.on_peak_mem_gib:.2f} / {row.off_peak_mem_gib:.2f}")
        lines.append(f"| {row.switch} | {row.on_videos_per_s:.2f} | {row.off_videos_per_s:.2f} | {row.gain:.2f}x | {memory} |")
    return "\n".join(lines)


def format_table(result: BenchResult) -> str:
    """The figures side by side, as a markdown table."""
    rows = [
        ("parameters", lambda m: f"{m.parameters:,}"),
        ("training videos/s", lambda m: f"{m.videos_per_s:.2f}"),
        ("ms per optimizer step", lambda m: f"{m.ms_per_step:.1f}"),
        ("GFLOPs per step", lambda m: f"{m.flops_per_step / 1e9:.1f}"),
        ("MFU (dense bf16 peak)", lambda m: "n/a" if m.mfu is None else f"{100 * m.mfu:.1f}%"),
        ("peak GPU memory GiB", lambda m: "n/a" if m.peak_mem_gib is None else f"{m.peak_mem_gib:.2f}"),
        ("data wait share", lambda m: f"{100 * m.data_wait_frac:.1f}%"),
        ("EMA share", lambda m: f"{100 * m.ema_frac:.2f}%"),
        *((f"sampling s/video, {key}", (lambda k: lambda m: f"{m.sample_s_per_video[k]:.3f}")(key))
          for key in result.models[0].sample_s_per_video),
    ]
    header = "| | " + " | ".join(m.name for m in result.models) + " |"
    lines = [header, "|---" * (len(result.models) + 1) + "|"]
    lines += ["| " + label + " | " + " | ".join(cell(m) for m in result.models) + " |" for label, cell in rows]
    return "\n".join(lines)

