"""A study's children as Slurm jobs, submitted with submitit: one job array, one child per job.

    MLFLOW_TRACKING_URI=http://tracking-host:5000 mlflow run . -e study -P executor=slurm -P gpus=4 \\
        -P partition=gpu -P account=my-lab -P time_min=2880 --env-manager local

Each job runs the `train` entry point on its node; a child with several GPUs runs there as one
data-parallel run under torchrun (text2sign.training.distributed). The jobs report to MLflow themselves, so
MLFLOW_TRACKING_URI must be a server every node reaches, not a local SQLite file. The study process
waits for its jobs and names every one that failed, ran out of time or was pre-empted; `-P resume=<study
run id>` resubmits only the children that did not finish, each continuing from its last checkpoint.
`submitit-local` runs the same jobs with submitit's local executor, on this machine: a check of a cluster
study's settings before it queues, and what the tests run (there is no Slurm here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from text2sign.config import ConfigError

from mlproject.cli import non_negative_int

EXECUTORS = ("local", "slurm", "submitit-local")
# Tracking stores whose file lives on the machine that opened it: jobs on other nodes would each write
# their own copy, or, on a shared filesystem, fight over SQLite's locks.
_LOCAL_STORES = ("", "file", "sqlite")


@dataclass(frozen=True)
class ClusterSettings:
    """What each child's job asks the scheduler for."""

    gpus: int  # per child, on one node; >1 trains as a data-parallel run
    cpus_per_gpu: int
    time_min: int
    partition: str
    account: str
    extra: dict[str, str]  # further sbatch options, e.g. {"qos": "high", "constraint": "a100"}
    folder: Path  # job scripts and logs: on a filesystem the nodes share


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    returncode: int  # of the train entry point; -1 when the job itself did not end normally
    state: str  # the scheduler's word for how the job ended (COMPLETED, FAILED, PREEMPTED, TIMEOUT, ...)
    seconds: float
    log: str


def cluster_settings(args, default_folder: Path) -> ClusterSettings:
    """The study's cluster parameters, checked: a ConfigError names the one that is wrong."""
    if args.executor not in EXECUTORS:
        raise ConfigError(f"executor: {args.executor!r} is not one of {', '.join(EXECUTORS)}.")
    gpus, cpus, minutes = (non_negative_int(name, getattr(args, name)) for name in ("gpus", "cpus_per_gpu", "time_min"))
    if cpus < 1 or minutes < 1:
        raise ConfigError("cpus_per_gpu and time_min: each must be at least 1.")
    extra = {}
    for item in filter(None, (part.strip() for part in args.slurm_options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"slurm_options: {item!r} is not key=value; e.g. slurm_options=qos=high,constraint=a100.")
        extra[key.strip()] = value.strip()
    folder = Path(args.job_folder).expanduser() if args.job_folder else default_folder
    return ClusterSettings(gpus, cpus, minutes, args.partition, args.account, extra, folder.resolve())


def check_cluster_reachable(executor: str, tracking_uri: str) -> None:
    """A Slurm study is started where Slurm's commands are (a login node), and its jobs, which run on
    other nodes, need a tracking server rather than this machine's SQLite file."""
    if executor != "slurm":
        return
    missing = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
    if missing:
        raise ConfigError(f"executor=slurm: {' and '.join(missing)} not found on this machine's PATH. Start the study "
                          "on a node that submits Slurm jobs (a login node), or use executor=local here.")
    scheme = urlparse(tracking_uri).scheme
    if scheme in _LOCAL_STORES or len(scheme) == 1:  # a Windows drive letter is a path too
        raise ConfigError(
            f"executor=slurm: the tracking store is {tracking_uri!r}, a file on this machine. The study's jobs run "
            "on other nodes and report to MLflow themselves, so they need a server they can all reach: start one "
            "(docs/server.md) and set MLFLOW_TRACKING_URI=http://HOST:PORT before the study, or run it here with "
            "executor=local.")


def train_in_job(command: list[str], tracking_uri: str, cwd: str) -> int:
    """What a child's job runs on its node: the train entry point, reporting to the study's tracking server.
    Module level, so submitit can pickle it into the job."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return subprocess.run(command, env=env, cwd=cwd).returncode


def make_executor(executor: str, settings: ClusterSettings):
    import submitit

    cluster = "slurm" if executor == "slurm" else "local"
    jobs = submitit.AutoExecutor(folder=settings.folder, cluster=cluster)
    parameters = {"name": "text2sign", "nodes": 1, "tasks_per_node": 1, "timeout_min": settings.time_min,
                  "cpus_per_task": settings.cpus_per_gpu * max(1, settings.gpus), "gpus_per_node": settings.gpus}
    if cluster == "slurm":
        parameters.update({f"slurm_{k}": v for k, v in (("partition", settings.partition),
                                                        ("account", settings.account)) if v})
        if settings.extra:
            parameters["slurm_additional_parameters"] = dict(settings.extra)
    jobs.update_parameters(**parameters)
    return jobs


def run_jobs(commands: dict[str, list[str]], executor: str, settings: ClusterSettings, tracking_uri: str, cwd: Path,
             on_submit=None, on_done=None) -> dict[str, JobOutcome]:
    """Submit one job per child (a job array), wait for all, and say how each ended.

    `on_submit(name, job_id)` is called once the array is queued (the study records the ids at once, so a
    study process that dies still leaves them); `on_done(name, outcome)` as each job ends."""
    import submitit

    jobs_executor = make_executor(executor, settings)
    names = list(commands)
    start = time.perf_counter()
    with jobs_executor.batch():
        jobs = [jobs_executor.submit(train_in_job, commands[name], tracking_uri, str(cwd)) for name in names]
    by_id = {}
    for name, job in zip(names, jobs):
        by_id[job.job_id] = name
        if on_submit:
            on_submit(name, job.job_id)
    outcomes = {}
    for job in submitit.helpers.as_completed(jobs, poll_frequency=2 if executor != "slurm" else 30):
        name = by_id[job.job_id]
        outcomes[name] = outcome(job, time.perf_counter() - start)
        if on_done:
            on_done(name, outcomes[name])
    return outcomes


def outcome(job, seconds: float) -> JobOutcome:
    """How a finished job ended: the entry point's exit code, or the scheduler's reason when it never got one."""
    log = str(job.paths.stdout)
    error = job.exception()
    if error is None:
        returncode = int(job.result())
        return JobOutcome(job.job_id, returncode, "COMPLETED" if returncode == 0 else "FAILED", seconds, log)
    state = str(job.state or "FAILED").split()[0]  # e.g. "PREEMPTED", "TIMEOUT", "CANCELLED by 1234"
    if state in ("RUNNING", "COMPLETED", "UNKNOWN", "FINISHED"):
        state = "FAILED"
    return JobOutcome(job.job_id, -1, state, seconds, log)
