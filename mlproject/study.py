"""Entry point `study`: every ablation x seed as child runs of one study run.

    mlflow run . -e study -P ablations=baseline,text_finetuned,no_ema -P seeds=3 -P scale=full --env-manager local

Each child is an ordinary `train` run in its own process (so one crash cannot take the others down),
tagged `study=<study run id>` and nested under the study run in the MLflow UI. `parallel=auto` runs one
child per visible GPU at a time (each pinned with CUDA_VISIBLE_DEVICES) and one at a time on a CPU,
where parallel runs would only fight over the cores. A failed child does not stop the others; the
study's summary names it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from text2sign.config import ConfigError

from mlproject.cli import flag, non_negative_int, start_entry_point_run
from mlproject.resolve import resolve_config, run_name


@dataclass
class ChildResult:
    ablation: str
    seed: int
    run_name: str
    returncode: int
    seconds: float
    log: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.study", description=__doc__.split("\n")[0])
    parser.add_argument("--ablations", default="baseline,text_finetuned,no_ema", help="comma-separated names or .py paths")
    parser.add_argument("--seeds", default="3", help="how many seeds per ablation (0, 1, ..., seeds-1)")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--overrides", default="", help="applied to every child")
    parser.add_argument("--parallel", default="auto", help="auto (one per GPU, 1 on CPU) or a number of children at once")
    parser.add_argument("--evaluate", default="true")
    parser.add_argument("--experiment", default="text2sign-ablations")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    """Every (ablation, seed) child, each validated before anything starts."""
    ablations = [a.strip() for a in args.ablations.split(",") if a.strip()]
    if not ablations:
        raise ConfigError("ablations: give at least one, e.g. baseline,text_finetuned,no_ema.")
    seeds = non_negative_int("seeds", args.seeds)
    if seeds < 1:
        raise ConfigError("seeds: must be at least 1.")
    children = list(itertools.product(ablations, range(seeds)))
    for ablation, seed in children:
        resolve_config(ablation, args.scale, seed, overrides=args.overrides)
    return children


def worker_slots(parallel: str) -> list[str | None]:
    """One entry per child that may run at once: the GPU it is pinned to, or None on a CPU."""
    if parallel == "auto":
        import torch

        count = torch.cuda.device_count()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [d for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(count)]
        return ids[:count] if count else [None]
    return [None] * max(1, non_negative_int("parallel", parallel))


def run_child(ablation: str, seed: int, args: argparse.Namespace, study_id: str, gpu: str | None, logs: Path) -> ChildResult:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    import mlflow

    env["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    name = run_name(ablation, args.scale, seed)
    log = logs / f"{name}.log"
    start = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.run(
            [sys.executable, "-m", "mlproject.train", "--ablation", ablation, "--scale", args.scale, "--seed", str(seed),
             "--overrides", args.overrides, "--experiment", args.experiment, "--study", study_id,
             "--parent-run-id", study_id, "--evaluate", args.evaluate],
            env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent,
        )
    return ChildResult(ablation, seed, name, process.returncode, time.perf_counter() - start, str(log))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        children = plan(args)
        slots = worker_slots(args.parallel)
        flag("evaluate", args.evaluate)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    import mlflow

    parent = start_entry_point_run(args.experiment)  # before any child starts: one process creates the store
    study_id = parent.info.run_id
    mlflow.set_tags({"mlflow.runName": f"study-{args.scale}-{len(children)}runs", "study": study_id, "role": "study",
                     "scale": args.scale})
    logs = Path(tempfile.mkdtemp(prefix="text2sign-study-"))
    print(f"study {study_id}: {len(children)} runs, {len(slots)} at a time; logs in {logs}")

    free = list(slots)
    results: list[ChildResult] = []

    def launch(child: tuple[str, int]) -> ChildResult:
        gpu = free.pop()
        try:
            return run_child(child[0], child[1], args, study_id, gpu, logs)
        finally:
            free.append(gpu)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        for result in pool.map(launch, children):
            results.append(result)
            print(f"  {result.run_name}: {'ok' if result.returncode == 0 else f'FAILED (exit {result.returncode})'} "
                  f"in {result.seconds:.0f} s")

    failed = [r for r in results if r.returncode != 0]
    summary = {"study": study_id, "runs": [asdict(r) for r in results], "failed": [r.run_name for r in failed]}
    summary_path = logs / "study_summary.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    mlflow.log_artifact(str(summary_path))
    mlflow.log_artifacts(str(logs), "logs")
    mlflow.log_metrics({"study/runs": len(results), "study/failed": len(failed)})
    if failed:
        mlflow.set_tag("study/failed_runs", ", ".join(r.run_name for r in failed))
        print(f"{len(failed)} of {len(results)} runs failed: {', '.join(r.run_name for r in failed)} (logs in {logs})",
              file=sys.stderr)
    mlflow.end_run(status="FAILED" if len(failed) == len(results) else "FINISHED")
    print(f"analyze with: mlflow run . -e analyze -P study={study_id} --env-manager local")
    return 1 if len(failed) == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
