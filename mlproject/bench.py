"""Entry point `bench`: our UNet against diffusers' UNet3DConditionModel at the same size, same data.

    mlflow run . -e bench -P scale=full -P device=cuda --env-manager local
    mlflow run . -e bench -P scale=small -P device=cpu --env-manager local

Prints a table, writes it and the figures as JSON under `output`, and logs a run tagged `bench` in the
experiment `text2sign-bench`. The speedup (ours / diffusers, training videos/s) is printed last.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
import sys
from pathlib import Path

from text2sign.config import BenchSettings, ConfigError

from mlproject.cli import flag, non_negative_int

EXPERIMENT = "text2sign-bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--device", default="cuda", help="cuda | cpu")
    parser.add_argument("--steps", default="20", help="timed optimizer steps per measurement")
    parser.add_argument("--warmup-steps", default="5")
    parser.add_argument("--sample-videos", default="4")
    parser.add_argument("--text-encoder", default="config",
                        help="config: the run's encoder; random: a random table of MiniLM's shape (no package needed)")
    parser.add_argument("--overrides", default="", help='config overrides, e.g. "train.compile=true data.num_workers=4"')
    parser.add_argument("--switches", default="all",
                        help="fast-path switches to measure on and off: all, none, or a comma list of "
                             "bf16,compile,ema_every,workers,channels_last,grad_checkpointing,cpu_bf16")
    parser.add_argument("--output", default="bench")
    parser.add_argument("--log", default="true", help="false: print and write JSON, no MLflow run")
    parser.add_argument("--experiment", default="",
                        help=f"default: $MLFLOW_EXPERIMENT_NAME, else {EXPERIMENT}; under `mlflow run`, MLflow's")
    return parser.parse_args(argv)


def parse_switches(text: str, known: tuple[str, ...] | list[str]) -> list[str]:
    """'all' -> every switch, 'none' -> [] (measure none), else a comma list of known switch names."""
    choice = text.strip()
    if choice == "all":
        return list(known)
    if choice == "none":
        return []
    switches = [s.strip() for s in choice.split(",") if s.strip()]
    unknown = [s for s in switches if s not in known]
    if unknown or not switches:
        raise ConfigError(f"switches: unknown {', '.join(unknown) or repr(text)}; known: all, none, {', '.join(known)}.")
    return switches


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.device not in ("cuda", "cpu"):
            raise ConfigError(f"device: got {args.device!r}, expected cuda or cpu.")
        if args.text_encoder not in ("config", "random"):
            raise ConfigError(f"text_encoder: got {args.text_encoder!r}, expected config or random.")
        # After the checks that need no PyTorch, so that those errors answer at once.
        from mlproject.config_from_params import resolve_config
        from mlproject.benchmark import SWITCH_KEYS, ablate_switches, format_switches, format_table, run_benchmark

        # The pixel model: diffusers' UNet is matched to it; the pose plan's planner and skeleton channels have
        # no counterpart there (`-P overrides=model.pose_plan=true` measures ours with them).
        config = resolve_config("pixel_only", args.scale, overrides=f"train.device={args.device} {args.overrides}")
        settings = BenchSettings(steps=max(1, non_negative_int("steps", args.steps)),
                                 warmup_steps=non_negative_int("warmup_steps", args.warmup_steps),
                                 sample_videos=max(1, non_negative_int("sample_videos", args.sample_videos)),
                                 text_encoder=args.text_encoder)
        log = flag("log", args.log)
        switches = parse_switches(args.switches, SWITCH_KEYS)
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device=cuda but no CUDA device is visible; run with -P device=cpu at scale tiny or small.")
        if args.device == "cpu" and args.scale == "full":
            raise ConfigError("scale=full on the CPU would take hours per measurement; use -P scale=small, or device=cuda.")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    result = run_benchmark(config, settings, torch.device(args.device), progress=print)
    table = format_table(result)
    switch_rows = ablate_switches(config, settings, torch.device(args.device), switches, progress=print) if switches else []
    if switch_rows:
        table += "\n\nFast-path switches (our UNet, training videos/s, everything else as configured):\n\n"
        table += format_switches(switch_rows)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    stem = f"bench_{args.scale}_{args.device}"
    figures = {**result.to_dict(), "switches": [{**asdict(row), "gain": row.gain} for row in switch_rows]}
    (output / f"{stem}.json").write_text(json.dumps(figures, indent=2))
    (output / f"{stem}.md").write_text(f"{result.device_name}, {result.date}, scale {args.scale}\n\n{table}\n")

    if log:
        log_bench_run(args, result, switch_rows, output / stem)

    print(f"\n{result.device_name}, {result.date}, scale {args.scale}\n")
    print(table)
    print(f"\nfigures in {output / stem}.json")
    print(f"speedup (ours / diffusers, training videos/s): {result.speedup:.2f}x")
    return 0


def log_bench_run(args: argparse.Namespace, result, switch_rows: list, stem: Path) -> None:
    """The bench as an MLflow run: its settings as params, throughput, MFU, memory and switch gains as
    metrics, and the figures files (`stem`.json and .md) as artifacts."""
    import mlflow

    from mlproject.tracking.experiment import start_run

    start_run(args.experiment, EXPERIMENT, run_name=f"bench-{args.scale}-{args.device}")
    ours, theirs = (next(m for m in result.models if m.name == name) for name in ("ours", "diffusers"))
    mlflow.set_tags({"bench": "true", "scale": args.scale, "device": result.device_name})
    mlflow.log_params({**{k: v for k, v in result.settings.items() if k != "samplers"}, "scale": args.scale,
                       "ours_parameters": ours.parameters, "diffusers_parameters": theirs.parameters})
    metrics = {
        "bench/ours_videos_per_s": ours.videos_per_s,
        "bench/diffusers_videos_per_s": theirs.videos_per_s,
        "bench/speedup": result.speedup,
        "bench/ours_ms_per_step": ours.ms_per_step,
        "bench/diffusers_ms_per_step": theirs.ms_per_step,
        "bench/data_wait_frac": ours.data_wait_frac,
        "bench/ema_frac": ours.ema_frac,
        **{f"bench/ours_sample_s_per_video_{k}": v for k, v in ours.sample_s_per_video.items()},
        **{f"bench/diffusers_sample_s_per_video_{k}": v for k, v in theirs.sample_s_per_video.items()},
    }
    if ours.mfu is not None:
        metrics["bench/mfu"] = ours.mfu
        metrics["bench/diffusers_mfu"] = theirs.mfu
    if ours.peak_mem_gib is not None:
        metrics["bench/peak_mem_gib"] = ours.peak_mem_gib
        metrics["bench/diffusers_peak_mem_gib"] = theirs.peak_mem_gib
    metrics.update({f"bench/switch_gain/{row.key}": row.gain for row in switch_rows})
    mlflow.log_metrics(metrics)
    mlflow.log_artifact(str(stem.with_suffix(".json")))
    mlflow.log_artifact(str(stem.with_suffix(".md")))
    mlflow.end_run()


if __name__ == "__main__":
    sys.exit(main())
