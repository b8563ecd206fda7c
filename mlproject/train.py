"""Entry point `train`: one ablation run, tracked in MLflow.

    mlflow run . -e train -P ablation=baseline --env-manager local
    python -m mlproject.train --ablation baseline --scale tiny
    python -m mlproject.train --ablation baseline --scale full --nproc-per-node 4    # data-parallel, torchrun

Everything the user typed is validated before MLflow is touched, so a typo costs no run. Exit codes:
0 done; 2 a usage error (the message names the setting and the fix), or a tracking server that refuses the
login or the permission or cannot be reached (docs/server.md); 1 a failure during training (the
run ends FAILED, tag `failure_reason`); 128 + the signal's number (130 Ctrl-C, 143 SIGTERM) when a
signal stopped training after a checkpoint (the run ends KILLED, tag `resume_with` holds the command
that continues it); 3 when training ended but the tracking server stayed unreachable, so part of the
run waits in a file for `python -m mlproject.tracking.undelivered` (the message names it). With --nproc-per-node above
1 the exit code is torchrun's (1 for any of the above but 0); the run's status and tags say which it was.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from text2sign.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from text2sign.config import Config, ConfigError, apply_overrides, flatten, from_dict, to_json
from text2sign.data import DataError, check_corpus
from text2sign.training.distributed import World, join_world, launched_by_torchrun, leave_world

from mlproject.cli import RUN_ID, flag, non_negative_int
from mlproject.config_from_params import RUN_LENGTH, length_given, resolve_config, run_name
from mlproject.scheduling.graceful_stop import GracefulStop
from mlproject.tracking.server_errors import reports_access_errors

DEFAULT_EXPERIMENT = "text2sign-ablations"
# At the end, how long to keep retrying a tracking server that is down before saving what it has not
# taken to a file: long enough for a server restart, short enough not to hold a GPU job for long.
FINAL_DELIVERY_WAIT_S = 300.0
UNDELIVERED_FILE = "undelivered_tracking.json"
_TAG_LIMIT = 4000
SYSTEM_METRICS_SAMPLING = {"MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "30",
                           "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING": "2"}
# The `train` entry-point parameters that shape a run, for the command that resumes it.
_RUN_PARAMS = ("ablation", "scale", "seed", "epochs", "data", "overrides", "evaluate", "register", "judge",
               "nproc_per_node")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlproject.train", description=__doc__.split("\n")[0])
    parser.add_argument("--ablation", default="baseline", help="a name in ablations/ or a path to a .py file")
    parser.add_argument("--scale", default="small", help="tiny | small | medium | large | full")
    parser.add_argument("--seed", default="0", help="training seed (the corpus has its own, data.corpus_seed)")
    parser.add_argument("--epochs", default="", help="train this many epochs instead of the scale's steps")
    parser.add_argument("--data", default="synthetic",
                        help="corpus: synthetic (default), fingerspelling, phoenix2014t:PATH, how2sign:PATH or folder:PATH")
    parser.add_argument("--overrides", default="", help='dotted overrides, e.g. "train.lr=1e-4 model.channels=64"')
    parser.add_argument("--resume", default="", help="a checkpoint file, or the MLflow run id to continue")
    parser.add_argument("--experiment", default="",
                        help=f"experiment name (default: $MLFLOW_EXPERIMENT_NAME, else {DEFAULT_EXPERIMENT}); "
                             "under `mlflow run`, the experiment MLflow created the run in; with --parent-run-id, the parent's")
    parser.add_argument("--study", default="", help="study id shared by the runs of one study")
    parser.add_argument("--parent-run-id", default="", help="nest this run under that one (a study run)")
    parser.add_argument("--evaluate", default="true", help="evaluate on the test split after training")
    parser.add_argument("--register", default="true", help="register the best checkpoint as model text2sign")
    parser.add_argument("--judge", default="", help="the registered recognizer that evaluates the run, as <name>/<version> "
                                                    "(default: the newest that fits; a study passes its own)")
    parser.add_argument("--nproc-per-node", default="1",
                        help="processes (one per GPU) on this machine: 1 trains in this process; more start them "
                             "with torchrun as one data-parallel run. Under your own torchrun (several nodes), "
                             "torchrun's options decide and this is not read.")
    parser.add_argument("--print-config", default="false", nargs="?", const="true",
                        help="print the resolved config as JSON and exit")
    return parser


def sample_system_metrics_for_long_runs() -> None:
    """MLflow's system metrics (CPU, memory, disk, network; GPU use and memory with nvidia-ml-py) for a run
    of hours: a sample every 30 s, logged as the mean of 2, one point a minute (MLflow's default logs every
    10 s, 18,000 points per metric over a 50-hour run). Values the user set in the environment win."""
    for name, value in SYSTEM_METRICS_SAMPLING.items():
        os.environ.setdefault(name, value)


def resume_commands(args: argparse.Namespace, run_id: str) -> tuple[str, str]:
    """How to continue run `run_id`, as `mlflow run` and as `python -m mlproject.train`: the resume, plus
    every run-shaping param not at its default (resuming checks the config is the same)."""
    defaults = build_parser()
    changed = [(name, getattr(args, name)) for name in _RUN_PARAMS if getattr(args, name) != defaults.get_default(name)]
    mlflow_run = ["mlflow", "run", ".", "-e", "train", "-P", f"resume={run_id}"]
    mlflow_run += [word for name, value in changed for word in ("-P", f"{name}={value}")]
    python = ["python", "-m", "mlproject.train", "--resume", run_id]
    python += [word for name, value in changed for word in (f"--{name}", value)]
    return shlex.join([*mlflow_run, "--env-manager", "local"]), shlex.join(python)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent.parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _check_resume_compatible(config: Config, saved: Config, source: str) -> None:
    """A resumed run must be the same experiment; only its length may change."""
    mine, theirs = flatten(config), flatten(saved)
    differing = [k for k in mine if mine[k] != theirs.get(k) and k not in RUN_LENGTH]
    if differing:
        details = ", ".join(f"{k}: {theirs.get(k)!r} in the checkpoint vs {mine[k]!r} now" for k in differing)
        raise ConfigError(f"resume: {source} was trained with a different config ({details}). "
                          "Resume with the same ablation, scale, seed and overrides, or start a new run.")


def _find_checkpoint(resume: str, workdir: Path) -> tuple[Path, str | None]:
    """(checkpoint file, the MLflow run to continue or None) for a path or a run id."""
    if RUN_ID.match(resume):
        from mlflow.tracking import MlflowClient

        from mlproject.tracking.runs import get_run, latest_run_checkpoint

        client = MlflowClient()
        get_run(client, resume)
        return latest_run_checkpoint(client, resume, workdir / "resume"), resume
    path = Path(resume).expanduser()
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise ConfigError(f"resume: folder {path} holds no step_*.pt checkpoint.")
        return found, None
    if not path.is_file():
        raise ConfigError(f"resume: {resume!r} is neither a checkpoint file, a folder of checkpoints, nor an MLflow run id (32 hex characters).")
    return path, None


def register_after_training(run_id: str, result, run_dir: Path, ablation: str, tracker) -> dict[str, str]:
    """Register the checkpoint with the best val/loss as model `text2sign`, alias `best-<ablation>`; returns
    the tags it gave the run (where the model is, or why registering failed)."""
    from mlproject.registry.generator_registry import REGISTERED_MODEL, register_best_checkpoint

    checkpoint = result.best_checkpoint or result.last_checkpoint
    try:
        version = register_best_checkpoint(run_id, checkpoint, run_dir / "config.json", ablation)
    except Exception as error:  # the checkpoints are safe as artifacts; say why and carry on
        tags = {"registry/status": f"failed: {type(error).__name__}: {str(error)[:4000]}"}
        tracker.set_tags(tags)
        print(f"warning: registering {checkpoint.name} failed ({error}); the training run is complete.", file=sys.stderr)
        return tags
    tags = {"registry/model": f"{REGISTERED_MODEL}/{version}", "registry/checkpoint": checkpoint.name}
    tracker.set_tags(tags)
    print(f"registered {checkpoint.name} as {REGISTERED_MODEL} version {version}, alias best-{ablation}")
    return tags


def evaluate_after_training(run_id: str, tracker, judge: str = "") -> None:
    """The `evaluate` entry point on the finished run; a missing judge or a failure never fails training."""
    from mlproject.evaluate import EvaluateRequest, evaluate_run

    try:
        evaluate_run(EvaluateRequest(run_id=run_id, require_recognizer=False, judge=judge))
    except Exception as error:  # the trained model is safe in its checkpoints; say why and how to retry
        message = f"{type(error).__name__}: {error}"
        tracker.set_tags({"eval/status": f"failed: {message[:4000]}"})
        print(f"warning: evaluation failed ({message}); the training run is complete. "
              f"Retry with: mlflow run . -e evaluate -P run_id={run_id} --env-manager local", file=sys.stderr)


@reports_access_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        seed = non_negative_int("seed", args.seed)
        config = resolve_config(args.ablation, args.scale, seed, args.epochs, args.data, args.overrides)
        print_only = flag("print_config", args.print_config)
        run_evaluation = flag("evaluate", args.evaluate)
        register = flag("register", args.register)
        processes = non_negative_int("nproc_per_node", args.nproc_per_node)
        if processes < 1:
            raise ConfigError("nproc_per_node: must be at least 1 (1 trains in this process).")
        World(size=processes).local_accumulation(config.train.grad_accum)
        if config.train.cpu_bf16 and config.train.device != "cuda":  # refused before a run is opened
            from text2sign.hardware import check_cpu_bf16, pick_device

            check_cpu_bf16(config.train, pick_device(config.train.device))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if print_only:
        print(to_json(config))
        return 0
    try:
        check_corpus(config.data)  # a missing split or a bad row of a real corpus costs no run
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if processes > 1 and not launched_by_torchrun():
        return launch_with_torchrun(processes, sys.argv[1:] if argv is None else argv)

    from mlproject.tracking.tracker import fail_fast_http

    fail_fast_http()
    world = join_world()
    try:
        world.local_accumulation(config.train.grad_accum)  # torchrun's options may give another N than ours
    except ConfigError as error:
        leave_world(world)
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        # A checkpoint downloaded to resume from is a copy of an artifact: it goes when the run ends, however
        # it ends, rather than leaving hundreds of MB in /tmp per resumed run.
        with tempfile.TemporaryDirectory(prefix="text2sign-resume-") as scratch:
            if not world.is_main:
                return _train_other_rank(args, config, world, Path(scratch))
            return _train_tracked(args, config, seed, register, run_evaluation, Path(scratch), world)
    finally:
        leave_world(world)


def launch_with_torchrun(processes: int, argv: list[str]) -> int:
    """Run this same command as `processes` data-parallel processes on this machine, started by torchrun
    (its standalone rendezvous listens on loopback, on a free port). A stop signal this process gets is
    passed on to torchrun, which passes it to every process."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "mlproject.train", *argv]
    print(f"starting {processes} processes: {shlex.join(command)}", flush=True)
    launcher = subprocess.Popen(command)
    previous = {signum: signal.signal(signum, lambda signum, frame: launcher.send_signal(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return launcher.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _train_other_rank(args: argparse.Namespace, config: Config, world: World, workdir: Path) -> int:
    """A rank other than 0: it trains its share and talks to no MLflow run; rank 0 tracks for all."""
    from text2sign.training.failures import TrainingFailure
    from text2sign.training.trainer import train

    os.environ.pop("MLFLOW_RUN_ID", None)  # nothing in this process may attach to the run (and end it)
    resume_path = _find_checkpoint(args.resume, workdir)[0] if args.resume else None
    if resume_path is not None:
        try:
            config = _resumed_config(args, config, resume_path)
        except (ConfigError, CheckpointError) as error:  # rank 0 says why, and the run ends there
            print(f"error (rank {world.rank}): {error}", file=sys.stderr)
            return 2
    with GracefulStop() as stop:
        try:
            with stop.polled():
                train(config, workdir / "unused-run-dir", resume_from=resume_path, progress=False,
                      should_stop=stop.should_stop, world=world)
        except TrainingFailure as error:
            print(f"error (rank {world.rank}): {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return stop.exit_code
    return stop.exit_code if stop.signum is not None else 0


def _train_tracked(args: argparse.Namespace, config: Config, seed: int, register: bool, run_evaluation: bool,
                   workdir: Path, world: World) -> int:
    """Open (or continue) the MLflow run, train, register and evaluate; the exit code as `main` documents."""
    from text2sign.text_encoder import TextEncoderError

    try:
        resume_path, resume_run = _find_checkpoint(args.resume, workdir) if args.resume else (None, None)
        if resume_path is not None:
            config = _resumed_config(args, config, resume_path)
    except (ConfigError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    import mlflow

    from mlproject.tracking.tracker import MLflowTracker
    from text2sign.training.failures import ProcessLost, TrainingFailure

    name = run_name(args.ablation, args.scale, seed)
    active = _open_run(args, name, resume_run)
    run_id = active.info.run_id
    experiment = mlflow.get_experiment(active.info.experiment_id).name
    tracker = MLflowTracker(run_id, hold_when_unavailable=True, resumed=resume_run is not None)
    run_dir = Path(config.train.output_dir) / run_id
    status, code = "FAILED", 1
    after_lost_process = contextlib.ExitStack()  # see _train_until_stopped
    with GracefulStop() as stop:
        try:
            run_tags, summary = _tag_run(args, config, seed, name, tracker)
            print(f"run {run_id} ({name}) in experiment {experiment!r}, tracking {mlflow.get_tracking_uri()}")
            result = _train_until_stopped(config, run_dir, tracker, resume_path, stop, world, after_lost_process)
            _after_training(args, run_id, result, run_dir, tracker, run_tags, summary, register, run_evaluation)
            status, code = "FINISHED", 0
            print(f"done: {result.steps} steps in {result.train_time_s:.1f} s, final train/loss {result.final_loss:.4f}, "
                  f"best val/loss {result.best_val_loss:.4f}; checkpoints in {run_dir / 'checkpoints'}")
        except (TextEncoderError, DataError) as error:
            print(f"error: {error}", file=sys.stderr)
            code = 2
        except TrainingFailure as error:
            print(f"error: {error}", file=sys.stderr)
            tracker.set_tags({"failure_reason": f"{error.reason}: {error}"[:_TAG_LIMIT]})
            if isinstance(error, ProcessLost):
                _tag_resume_command(args, run_id, run_dir, tracker)
        except KeyboardInterrupt:
            status, code = "KILLED", stop.exit_code
            _report_stop(stop, args, run_id, run_dir, tracker)
        except Exception as error:
            tracker.set_tags({"failure_reason": f"error: {type(error).__name__}: {error}"[:_TAG_LIMIT]})
            raise
        finally:
            delivered = _end_run(tracker, run_dir, status, after_lost_process)
    return 3 if code == 0 and not delivered else code


def _tag_run(args: argparse.Namespace, config: Config, seed: int, name: str, tracker) -> tuple[dict[str, str], str]:
    """Tag the run with what it is and its description so far; returns those tags and the ablation's summary,
    from which the description is written again when training ends."""
    from ablations import ablation_summary
    from mlproject.tracking import descriptions

    run_tags = _run_tags(args, config, seed, name)
    summary = ablation_summary(args.ablation)
    tracker.set_tags({**run_tags, descriptions.NOTE: descriptions.training_run(run_tags, {}, summary)})
    return run_tags, summary


def _train_until_stopped(config: Config, run_dir: Path, tracker, resume_path: Path | None, stop: GracefulStop,
                         world: World, after_lost_process: contextlib.ExitStack):
    """Train, a stop signal deferred to the trainer's next checkpoint; a stop it honoured raises KeyboardInterrupt,
    so the run ends as an immediate stop ends it."""
    from text2sign.training.failures import ProcessLost
    from text2sign.training.trainer import train

    with stop.polled():
        try:
            result = train(config, run_dir, tracker, resume_from=resume_path, should_stop=stop.should_stop,
                           world=world)
        except ProcessLost:
            # torchrun answers a lost process by sending the others SIGTERM: once rank 0 knows, that signal must
            # not cut short the run's tags and final status, so the rest of the run is held in a polled (deferring)
            # block, which `after_lost_process` leaves when the run has ended.
            after_lost_process.enter_context(stop.polled())
            raise
    if stop.signum is not None:
        raise KeyboardInterrupt(stop.name)
    return result


def _end_run(tracker, run_dir: Path, status: str, after_lost_process: contextlib.ExitStack) -> bool:
    """End the run with `status`; whether the tracking server took everything (else it waits in a file)."""
    import mlflow

    with after_lost_process:
        delivered = tracker.finish(FINAL_DELIVERY_WAIT_S, run_dir / UNDELIVERED_FILE, status=status)
    # The tracker delivered the status (or saved it to the file); this only takes the run off
    # MLflow's stack of active runs, whose exit hook would otherwise end it again as FINISHED.
    with contextlib.suppress(Exception):
        mlflow.end_run(status)
    return delivered


def _resumed_config(args: argparse.Namespace, config: Config, resume_path: Path) -> Config:
    """The config that continues the checkpoint: `config`, once checked to be the checkpoint's experiment, with the
    checkpoint's length unless this command gives one (`--epochs`, or RUN_LENGTH in the overrides or ablation).
    So a run started when its scale counted epochs ends as it would have, on any corpus."""
    saved = from_dict(json.loads(load_checkpoint(resume_path)["config"]), source=f"checkpoint {resume_path}")
    _check_resume_compatible(config, saved, str(resume_path))
    if length_given(args.ablation, args.epochs, args.overrides):
        return config
    length = {key: value for key, value in flatten(saved).items() if key in RUN_LENGTH}
    return apply_overrides(config, length, source=f"checkpoint {resume_path}")


def _open_run(args: argparse.Namespace, name: str, resume_run: str | None):
    """The MLflow run this training logs to: a new one, or the resumed one (with system metrics on)."""
    import mlflow

    from mlproject.tracking.experiment import start_run

    launched_run = os.environ.get("MLFLOW_RUN_ID")  # set when `mlflow run` created the run for us
    if resume_run and launched_run and launched_run != resume_run:
        mlflow.MlflowClient().set_tag(launched_run, "text2sign.resumed_into", resume_run)
    sample_system_metrics_for_long_runs()
    if resume_run:
        active = mlflow.start_run(run_id=resume_run, log_system_metrics=True)
    else:
        active = start_run(args.experiment, DEFAULT_EXPERIMENT, run_name=name, parent_run_id=args.parent_run_id,
                           log_system_metrics=True)
    if "resume_with" in active.data.tags:  # it named this continuation; a later stop writes a new one
        mlflow.MlflowClient().delete_tag(active.info.run_id, "resume_with")
    return active


def _run_tags(args: argparse.Namespace, config: Config, seed: int, name: str) -> dict[str, str]:
    from ablations import ablation_name

    return {
        "mlflow.runName": name,
        "ablation": ablation_name(args.ablation),
        "scale": args.scale,
        "seed": str(seed),
        "dataset": config.data.name,
        "git_commit": _git_commit(),
        **({"study": args.study} if args.study else {}),
        **({"mlflow.parentRunId": args.parent_run_id} if args.parent_run_id else {}),
    }


def _after_training(args: argparse.Namespace, run_id: str, result, run_dir: Path, tracker, run_tags: dict[str, str],
                    summary: str, register: bool, run_evaluation: bool) -> None:
    """Describe the finished run, register and evaluate it, and log every metric it has as a CSV."""
    from mlproject.tracking import descriptions

    metrics_so_far = {key: value for _, key, value in tracker.history}  # by step: the last value wins
    tracker.set_tags({descriptions.NOTE: descriptions.training_run(run_tags, metrics_so_far, summary)})
    if register:  # the version takes the description as it stands; evaluation rewrites both
        run_tags.update(register_after_training(run_id, result, run_dir, run_tags["ablation"], tracker))
        tracker.set_tags({descriptions.NOTE: descriptions.training_run(run_tags, metrics_so_far, summary)})
    if run_evaluation:
        evaluate_after_training(run_id, tracker, args.judge.strip())
    tracker.log_artifact(tracker.write_metric_log(run_dir / "logs" / "metrics.csv"), "logs")


def _report_stop(stop: GracefulStop, args: argparse.Namespace, run_id: str, run_dir: Path, tracker) -> None:
    """Say where the stopped run can be resumed from, on stderr and in the run's tag `resume_with`."""
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        print(f"stopped by {stop.name} before this run wrote a checkpoint: there is nothing to resume; "
              "start it again.", file=sys.stderr)
        return
    mlflow_run, python = _tag_resume_command(args, run_id, run_dir, tracker)
    print(f"stopped by {stop.name}; the run is marked KILLED, its last checkpoint is {checkpoint}. "
          f"Resume it with:\n  {mlflow_run}\nor:\n  {python}", file=sys.stderr, flush=True)


def _tag_resume_command(args: argparse.Namespace, run_id: str, run_dir: Path, tracker) -> tuple[str, str]:
    """Tag the run `resume_with` the command that continues it, when it has a checkpoint to continue from."""
    mlflow_run, python = resume_commands(args, run_id)
    if latest_checkpoint(run_dir / "checkpoints") is not None:
        tracker.set_tags({"resume_with": mlflow_run})
    return mlflow_run, python


if __name__ == "__main__":
    sys.exit(main())
