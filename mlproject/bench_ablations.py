"""Entry point `bench_ablations`: each ablation's training step against the baseline's, interleaved in one process.

    mlflow run . -e bench_ablations -P scale=medium --env-manager local
    python -m mlproject.bench_ablations --scale medium --ablations text_finetuned --rounds 6 --steps-per-round 2

Prints a table (ms per step, the ratio to the baseline with its 95% interval over the rounds), writes it and
the figures as `output`/bench_ablations_<scale>_<device>.md and .json, and logs a run tagged `bench=ablations`
in the experiment `text2sign-bench`. How it is measured: mlproject/ablation_speed.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from text2sign.config import ConfigError

from mlproject.cli import flag, non_negative_int

EXPERIMENT = "text2sign-bench"
DEFAULT_ABLATIONS = "baseline,text_finetuned,no_ema,pixel_only"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.bench_ablations", description=__doc__.split("\n")[0])
    parser.add_argument("--ablations", default=DEFAULT_ABLATIONS,
                        help="comma list; baseline, the reference, is always measured, first")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--rounds", default="8", help="timed rounds, 2 or more: the interval is over them")
    parser.add_argument("--steps-per-round", default="2", help="optimizer steps of each ablation per round")
    parser.add_argument("--warmup-steps", default="2", help="untimed steps of each ablation before the rounds")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--output", default="bench")
    parser.add_argument("--log", default="true", help="false: print and write the files, no MLflow run")
    parser.add_argument("--experiment", default="",
                        help=f"default: $MLFLOW_EXPERIMENT_NAME, else {EXPERIMENT}; under `mlflow run`, MLflow's")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.device not in ("cuda", "cpu"):
            raise ConfigError(f"device: got {args.device!r}, expected cpu or cuda.")
        if args.device == "cpu" and args.scale == "full":
            raise ConfigError("scale=full on the CPU would take minutes per step; use -P scale=medium, or device=cuda.")
        # After the checks that need no PyTorch, so that those errors answer at once.
        from mlproject.ablation_speed import SideBySideSettings, with_reference

        names = [name.strip() for name in args.ablations.split(",") if name.strip()]
        settings = SideBySideSettings(
            ablations=with_reference(names), scale=args.scale, rounds=non_negative_int("rounds", args.rounds),
            steps_per_round=non_negative_int("steps_per_round", args.steps_per_round),
            warmup_steps=non_negative_int("warmup_steps", args.warmup_steps), device=args.device)
        log = flag("log", args.log)
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device=cuda but no CUDA device is visible; run with -P device=cpu.")
        from mlproject.ablation_speed import format_table, measure

        result = measure(settings, progress=print)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    table = format_table(result)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    stem = output / f"bench_ablations_{args.scale}_{args.device}"
    stem.with_suffix(".json").write_text(json.dumps(result.to_dict(), indent=2))
    stem.with_suffix(".md").write_text(table + "\n")
    if log:
        log_side_by_side_run(args, result, stem)
    print(f"\n{table}\n\nfigures in {stem}.json")
    return 0


def log_side_by_side_run(args: argparse.Namespace, result, stem: Path) -> None:
    """The comparison as an MLflow run: its settings as params, each ablation's ms per step and ratio to the
    baseline (mean and interval) as metrics, the figures files as artifacts."""
    import mlflow

    from mlproject.tracking.experiment import start_run

    s = result.settings
    start_run(args.experiment, EXPERIMENT, run_name=f"bench_ablations-{s.scale}-{s.device}")
    mlflow.set_tags({"bench": "ablations", "scale": s.scale, "device": result.device_name, "cpu": result.cpu})
    # Prefixed: under `mlflow run` the entry point's own params are logged already, as typed ("8.0"), and the
    # ablations measured include the baseline where it was not asked for; a param may not change its value.
    settings = {**asdict(s), "ablations": ",".join(s.ablations), "torch_threads": result.torch_threads}
    mlflow.log_params({f"bench_ablations.{key}": value for key, value in settings.items()})
    metrics = {}
    for timing in result.timings:
        mean, low, high = timing.ratio
        ms = [1000 * seconds for seconds in timing.seconds_per_step]
        metrics |= {f"bench_ablations/{timing.name}/ms_per_step": sum(ms) / len(ms),
                    f"bench_ablations/{timing.name}/ratio": mean,
                    f"bench_ablations/{timing.name}/ratio_low": low,
                    f"bench_ablations/{timing.name}/ratio_high": high}
    mlflow.log_metrics(metrics)
    mlflow.log_artifact(str(stem.with_suffix(".json")))
    mlflow.log_artifact(str(stem.with_suffix(".md")))
    mlflow.end_run()


if __name__ == "__main__":
    sys.exit(main())
