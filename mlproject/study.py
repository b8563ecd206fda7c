"""Entry point `study`: every ablation x seed as child runs of one study run.

    mlflow run . -e study -P ablations=baseline,text_finetuned,no_ema -P seeds=3 -P scale=full --env-manager local

Each child is an ordinary `train` run in its own process (so one crash cannot take the others down),
tagged `study=<study run id>` and nested under the study run in the MLflow UI. `parallel=auto` runs one
child per visible GPU at a time (each pinned with CUDA_VISIBLE_DEVICES) and one at a time on a CPU,
where parallel runs would only fight over the cores. A failed child does not stop the others; the
study's summary names it.

A study outlives its process: `resume=<study run id>` continues it. Children that finished are kept,
children that were stopped continue from their last checkpoint (the same run), and children not yet
started, or stopped before their first checkpoint, start afresh. The plan may grow on resume (more
seeds, another ablation): only what the study does not have yet is trained.

    mlflow run . -e study -P seeds=3 -P scale=small -P resume=<study run id> --env-manager local

A study outlives its machine too: `export=<folder>` exports it (mlproject/export_import) each time a child
finishes, so a lost machine costs at most the child in flight; `import_study` brings the folder into another
store, where `resume=` takes the study's id in the record. Every child is read by one judge: the newest that
fits when the study starts, named in the study's tag `study/judge` and passed to each child.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
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
from typing import Iterator

from text2sign.config import ConfigError

from mlproject.cli import flag, non_negative_int
from mlproject.config_from_params import resolve_config, run_name
from mlproject.scheduling import slurm
from mlproject.tracking.server_errors import is_access_problem, reports_access_errors
from mlproject.train import DEFAULT_EXPERIMENT

JOB_FOLDER = "text2sign-jobs"


@dataclass
class ChildResult:
    ablation: str
    seed: int
    run_name: str
    returncode: int
    seconds: float
    log: str
    # "" for a fresh child; "finished before (run <id>)" or "resumed run <id>" when the study was resumed.
    previous: str = ""
    job_id: str = ""  # the scheduler's, when the child ran as a job (executor slurm or submitit-local)
    job_state: str = ""  # how that job ended: COMPLETED, FAILED, PREEMPTED, TIMEOUT, CANCELLED, ...


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.study", description=__doc__.split("\n")[0])
    parser.add_argument("--ablations", default="baseline,text_finetuned,no_ema", help="comma-separated names or .py paths")
    parser.add_argument("--seeds", default="3", help="how many seeds per ablation (0, 1, ..., seeds-1)")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--overrides", default="", help="applied to every child")
    parser.add_argument("--parallel", default="auto", help="auto (one per GPU, 1 on CPU) or a number of children at once")
    parser.add_argument("--evaluate", default="true")
    parser.add_argument("--experiment", default="",
                        help=f"experiment name (default: $MLFLOW_EXPERIMENT_NAME, else {DEFAULT_EXPERIMENT}); under "
                             "`mlflow run`, the experiment MLflow created the study run in. Children go to the study's.")
    parser.add_argument("--resume", default="", help="a study run id (here, or in the record it was imported from): "
                                                     "keep its finished children, continue the rest")
    parser.add_argument("--export", default="", help="a folder to export the study into each time a child finishes")
    parser.set_defaults(judge="")  # the study's judge, `<name>/<version>`, pinned when it opens (pin_judge)
    cluster = parser.add_argument_group("cluster (executor slurm or submitit-local; mlproject/scheduling/slurm.py)")
    cluster.add_argument("--executor", default="local",
                         help="local: children as processes here; slurm: one Slurm job each, through submitit; "
                              "submitit-local: those jobs run by submitit on this machine")
    cluster.add_argument("--gpus", default="1", help="GPUs per child, on one node (more than 1: a data-parallel run)")
    cluster.add_argument("--cpus-per-gpu", default="8")
    cluster.add_argument("--time-min", default="1440", help="each job's time limit in minutes")
    cluster.add_argument("--partition", default="")
    cluster.add_argument("--account", default="")
    cluster.add_argument("--slurm-options", default="", help="more sbatch options, e.g. qos=high,constraint=a100")
    cluster.add_argument("--job-folder", default="",
                         help=f"job scripts and logs, on a filesystem the nodes share (default {JOB_FOLDER}/<study id>)")
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


def child_env(gpu: str | None, children_at_once: int) -> dict[str, str]:
    """A child's environment: pinned to its GPU, or on a CPU given its share of the cores.

    Each torch process starts one compute thread per core; several on the same cores oversubscribe them,
    and their threads spin waiting on each other: on 2 cores, two such runs each ran 2.5 to 5 times
    slower. Splitting the cores keeps the study's total throughput. A thread count the user set is kept.
    """
    import mlflow

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    env["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    elif children_at_once > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // children_at_once))
    return env


def child_command(ablation: str, seed: int, args: argparse.Namespace, study_id: str, resume_run: str | None,
                  processes: int = 1) -> list[str]:
    """The train entry point of one child, nested under the study run, read by the study's judge."""
    command = [sys.executable, "-m", "mlproject.train", "--ablation", ablation, "--scale", args.scale, "--seed", str(seed),
               "--overrides", args.overrides, "--study", study_id, "--judge", args.judge,
               "--parent-run-id", study_id, "--evaluate", args.evaluate, "--nproc-per-node", str(processes)]
    return command + (["--resume", resume_run] if resume_run else [])


def run_child(ablation: str, seed: int, args: argparse.Namespace, study_id: str, gpu: str | None, logs: Path,
              children_at_once: int = 1, resume_run: str | None = None) -> ChildResult:
    name = run_name(ablation, args.scale, seed)
    log = logs / f"{name}.log"
    command = child_command(ablation, seed, args, study_id, resume_run)
    start = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.run(command, env=child_env(gpu, children_at_once), stdout=handle, stderr=subprocess.STDOUT,
                                 cwd=Path(__file__).resolve().parent.parent)
    return ChildResult(ablation, seed, name, process.returncode, time.perf_counter() - start, str(log),
                       f"resumed run {resume_run}" if resume_run else "")


def previous_children(study_id: str) -> dict[tuple[str, int], tuple[str, bool]]:
    """What a study already has, per (ablation, seed): (run id, finished?).

    Of several runs of one child (one stopped before its first checkpoint, then started afresh), a
    finished one wins, else the latest that has a checkpoint to continue from; a child with no such run
    is not listed, so it starts afresh.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    study = client.get_run(study_id)
    runs = client.search_runs([study.info.experiment_id], f"tags.study = '{study_id}' and tags.ablation != ''",
                              order_by=["attributes.start_time DESC"], max_results=10_000)
    found: dict[tuple[str, int], tuple[str, bool]] = {}
    for run in runs:  # newest first
        child = (run.data.tags["ablation"], int(run.data.tags["seed"]))
        finished = run.info.status == "FINISHED"
        if finished and not found.get(child, ("", False))[1]:
            found[child] = (run.info.run_id, True)
        elif child not in found and client.list_artifacts(run.info.run_id, "checkpoints"):
            found[child] = (run.info.run_id, False)
    return found


def open_study(args: argparse.Namespace, children_count: int):
    """Start the study run, or reopen the one `--resume` names after checking it is a study of this scale."""
    import mlflow

    from mlproject.tracking.experiment import start_run

    if not args.resume:
        parent = start_run(args.experiment, DEFAULT_EXPERIMENT)  # before any child starts: one process creates the store
        mlflow.set_tags({"mlflow.runName": f"study-{args.scale}-{children_count}runs", "study": parent.info.run_id,
                         "role": "study", "scale": args.scale, "study/overrides": args.overrides})
        return parent
    from mlproject.export_import.importing import run_here

    args.resume = run_here(mlflow.MlflowClient(), args.resume)  # the study imported from a record, by its id there
    try:
        previous = mlflow.MlflowClient().get_run(args.resume)
    except mlflow.exceptions.MlflowException as error:
        if is_access_problem(error):
            raise
        raise ConfigError(f"resume: no run {args.resume!r} on {mlflow.get_tracking_uri()} ({error.message}); "
                          "pass the study run id the study printed when it started.") from error
    tags = previous.data.tags
    if tags.get("role") != "study":
        raise ConfigError(f"resume: run {args.resume} is not a study run (its tag role is {tags.get('role')!r}); "
                          "pass the id the study printed as `study <id>: ...`.")
    if tags.get("scale") != args.scale:
        raise ConfigError(f"resume: study {args.resume} is at scale {tags.get('scale')!r}, not {args.scale!r}; "
                          f"pass -P scale={tags.get('scale')}.")
    # Children of one study must differ only by ablation and seed, or their comparison means nothing.
    if tags.get("study/overrides", "") != args.overrides:
        raise ConfigError(f"resume: study {args.resume} was run with overrides {tags.get('study/overrides', '')!r}, "
                          f"not {args.overrides!r}; pass the same overrides (or start a new study).")
    launched_run = os.environ.get("MLFLOW_RUN_ID")  # `mlflow run` made a run for this entry point: point it here
    if launched_run and launched_run != args.resume:
        mlflow.MlflowClient().set_tag(launched_run, "text2sign.resumed_into", args.resume)
    return mlflow.start_run(run_id=args.resume)


def run_children_here(todo, args, study_id: str, slots: list[str | None], logs: Path) -> Iterator[ChildResult]:
    """Each child as a process on this machine, as many at once as there are slots."""
    free = list(slots)

    def launch(item: tuple[tuple[str, int], str | None]) -> ChildResult:
        (ablation, seed), resume_run = item
        gpu = free.pop()
        try:
            return run_child(ablation, seed, args, study_id, gpu, logs, len(slots), resume_run)
        finally:
            free.append(gpu)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        yield from pool.map(launch, todo)


def run_children_as_jobs(todo, args, study_id: str, slots, logs: Path, cluster: slurm.ClusterSettings
                         ) -> Iterator[ChildResult]:
    """Each child as a job of one array; the study run records each job id the moment it is queued."""
    import mlflow

    children = {run_name(ablation, args.scale, seed): (ablation, seed, resume_run) for (ablation, seed), resume_run in todo}
    commands = {name: child_command(ablation, seed, args, study_id, resume_run, processes=max(1, cluster.gpus))
                for name, (ablation, seed, resume_run) in children.items()}
    outcomes = slurm.run_jobs(commands, args.executor, cluster, mlflow.get_tracking_uri(), Path(__file__).resolve().parent.parent,
                              on_submit=lambda name, job_id: mlflow.set_tag(f"job/{name}", job_id),
                              on_done=lambda name, done: mlflow.set_tag(f"job/{name}", f"{done.job_id} {done.state}"))
    for name, done in outcomes.items():
        ablation, seed, resume_run = children[name]
        yield ChildResult(ablation, seed, name, done.returncode, done.seconds, done.log,
                          f"resumed run {resume_run}" if resume_run else "", done.job_id, done.state)


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        children = plan(args)
        slots = worker_slots(args.parallel)
        flag("evaluate", args.evaluate)
        cluster = slurm.cluster_settings(args, Path(JOB_FOLDER)) if args.executor != "local" else None
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    import mlflow

    try:
        slurm.check_cluster_reachable(args.executor, mlflow.get_tracking_uri())
        parent = open_study(args, len(children))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    study_id = parent.info.run_id
    args.judge = pin_judge(parent, children, args)
    logs = Path(tempfile.mkdtemp(prefix="text2sign-study-"))
    results, todo = finished_and_todo(children, previous_children(study_id) if args.resume else {}, args.scale)
    if cluster is not None:
        cluster = dataclasses.replace(cluster, folder=cluster.folder if args.job_folder else cluster.folder / study_id)
        logs = cluster.folder
    at_once = f"{len(slots)} at a time" if cluster is None else f"as {args.executor} jobs"
    print(f"study {study_id}: {len(children)} runs, {at_once}; logs in {logs}"
          + (f"; resumed: {len(results)} already finished, {sum(r is not None for _, r in todo)} to continue"
             if args.resume else ""))

    run_children = run_children_here if cluster is None else functools.partial(run_children_as_jobs, cluster=cluster)
    for result in run_children(todo, args, study_id, slots, logs):
        results.append(result)
        print(f"  {outcome_line(result)}", flush=True)
        export_if_asked(args.export, study_id)

    failed = [r for r in results if r.returncode != 0]
    log_summary_and_logs(study_id, results, failed, logs, resumed=bool(args.resume))
    tag_failed_runs(parent, results, failed)
    if failed:
        print(f"{len(failed)} of {len(results)} runs failed: {', '.join(r.run_name for r in failed)} (logs in {logs})",
              file=sys.stderr)
    mlflow.end_run(status="FAILED" if len(failed) == len(results) else "FINISHED")
    export_if_asked(args.export, study_id)
    print_where_to_look(parent.info.experiment_id, study_id)
    return 1 if len(failed) == len(results) else 0


def pin_judge(parent, children: list[tuple[str, int]], args: argparse.Namespace) -> str:
    """The judge every child is read by (`<name>/<version>`), recorded in the study's tag `study/judge`: the one
    the study already names, else the one its finished children were read by (a study from before the tag),
    else the newest that fits its clips; "" where none is registered yet (the children then say how to train one).
    """
    import mlflow

    from mlproject.export_import.references import model_reference
    from mlproject.registry.recognizer_registry import newest_recognizer

    client = mlflow.MlflowClient()
    pinned = client.get_run(parent.info.run_id).data.tags.get("study/judge", "")
    if not pinned and args.resume:
        read_by = {model_reference(run.data.tags.get("eval/recognizer", "")) for run in client.search_runs(
            [parent.info.experiment_id], f"tags.study = '{parent.info.run_id}' and attributes.status = 'FINISHED'")}
        read_by.discard(None)
        pinned = "/".join(read_by.pop()) if len(read_by) == 1 else ""
    if not pinned:
        version = newest_recognizer(resolve_config(children[0][0], args.scale, 0, overrides=args.overrides).data)
        pinned = f"{version.name}/{version.version}" if version else ""
    if pinned:
        mlflow.set_tag("study/judge", pinned)
    return pinned


def export_if_asked(folder: str, study_id: str) -> None:
    """The study into `folder` as it stands; a failure is reported and the study goes on."""
    if not folder:
        return
    from mlproject.export_import.exporting import export_study

    try:
        report = export_study(study_id, Path(folder))
    except Exception as error:  # the runs are safe in the store; the export can be run again by hand
        print(f"warning: exporting the study into {folder} failed ({type(error).__name__}: {error}); retry with "
              f"mlflow run . -e export_study -P study={study_id} -P output={folder} --env-manager local", file=sys.stderr)
        return
    print(f"  exported into {folder}: {len(report.runs)} runs", flush=True)


def print_where_to_look(experiment_id: str, study_id: str) -> None:
    """The UI's comparison of the study's runs (on the training view) and the analysis command."""
    import mlflow

    from mlproject.tracking.ui_address import compare_address, how_to_open

    uri = mlflow.get_tracking_uri()
    run_ids = [run_id for run_id, _ in previous_children(study_id).values()]
    if run_ids:
        print(f"compare the runs: {how_to_open(uri)}{compare_address(uri, experiment_id, run_ids)}")
    print(f"analyze with: mlflow run . -e analyze -P study={study_id} --env-manager local")


def finished_and_todo(children: list[tuple[str, int]], done: dict[tuple[str, int], tuple[str, bool]], scale: str
                      ) -> tuple[list[ChildResult], list[tuple[tuple[str, int], str | None]]]:
    """The plan against what the study already has (`previous_children`): a result for each child that finished
    before, and the rest to run, each with the run it continues (None: start afresh)."""
    results: list[ChildResult] = []
    todo: list[tuple[tuple[str, int], str | None]] = []
    for ablation, seed in children:
        run_id, finished = done.get((ablation, seed), (None, False))
        if finished:
            results.append(ChildResult(ablation, seed, run_name(ablation, scale, seed), 0, 0.0, "",
                                       f"finished before (run {run_id})"))
        else:
            todo.append(((ablation, seed), run_id))
    return results, todo


def outcome_line(result: ChildResult) -> str:
    """How a child ended, in one line: `<run name> (<resumed ...>): ok in 12 s`, or FAILED with why."""
    how = f" ({result.previous})" if result.previous else ""
    job = f"job {result.job_id}: " if result.job_id else ""
    ended = "ok" if result.returncode == 0 else f"FAILED ({job}{result.job_state or f'exit {result.returncode}'})"
    return f"{result.run_name}{how}: {ended} in {result.seconds:.0f} s"


def log_summary_and_logs(study_id: str, results: list[ChildResult], failed: list[ChildResult], logs: Path,
                         resumed: bool) -> None:
    """The study's summary (every child, the failed ones named), the children's logs and the counts, into the
    study run."""
    import mlflow

    summary = {"study": study_id, "runs": [asdict(r) for r in results], "failed": [r.run_name for r in failed]}
    summary_path = logs / "study_summary.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    mlflow.log_artifact(str(summary_path))
    # A resumed study keeps the logs of its earlier sessions: a child's log has the same name in each.
    folder = f"logs/resumed-{time.strftime('%Y%m%d-%H%M%S')}" if resumed else "logs"
    for log in sorted(logs.rglob("*")):  # a job folder also holds submitit's pickles: only the logs go
        if log.is_file() and log.suffix in (".log", ".json", ".out", ".err"):
            mlflow.log_artifact(str(log), str(Path(folder) / log.parent.relative_to(logs)))
    mlflow.log_metrics({"study/runs": len(results), "study/failed": len(failed)})


def tag_failed_runs(parent, results: list[ChildResult], failed: list[ChildResult]) -> None:
    """Name the study's failed children in its tag `study/failed_runs`, or remove the tag when none is left."""
    import mlflow

    # Failures of an earlier session stay named unless this session ran those children again.
    earlier = [name for name in parent.data.tags.get("study/failed_runs", "").split(", ") if name]
    ran_now = {r.run_name for r in results}
    failed_names = [name for name in earlier if name not in ran_now] + [r.run_name for r in failed]
    if failed_names:
        mlflow.set_tag("study/failed_runs", ", ".join(failed_names))
    elif earlier:
        mlflow.MlflowClient().delete_tag(parent.info.run_id, "study/failed_runs")


if __name__ == "__main__":
    sys.exit(main())
