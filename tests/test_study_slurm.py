"""A study on a cluster: each child a Slurm job through submitit (here submitit's local executor)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from mlproject.scheduling import slurm
from tests.helpers import REPO, module_folder, subprocess_env


def study(store, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mlproject.study", "--scale", "tiny", "--evaluate", "false", *args]
    return subprocess.run(command, cwd=REPO, env=subprocess_env(store), capture_output=True, text=True, timeout=timeout)


def study_runs(store) -> list:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.role = 'study'")


@pytest.fixture
def slurm_commands(tmp_path, monkeypatch):
    """sbatch and srun on PATH, as on a login node (they are never run: nothing is submitted)."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    for name in ("sbatch", "srun"):
        (bin_folder / name).write_text("#!/bin/sh\nexit 1\n")
        (bin_folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_folder}:{os.environ['PATH']}")
    return bin_folder


def test_a_slurm_study_needs_slurm_commands_where_it_starts(tmp_path):
    result = study(tmp_path, "--executor", "slurm", "--ablations", "baseline", "--seeds", "1")
    assert result.returncode == 2 and "executor=slurm: sbatch and srun not found on this machine's PATH" in result.stderr
    assert study_runs(tmp_path) == []


def test_a_slurm_study_refuses_a_local_sqlite_store_before_it_starts(tmp_path, slurm_commands):
    result = study(tmp_path, "--executor", "slurm", "--ablations", "baseline", "--seeds", "1")
    assert result.returncode == 2
    assert "executor=slurm: the tracking store is 'sqlite:///" in result.stderr
    assert "MLFLOW_TRACKING_URI=http://HOST:PORT" in result.stderr and "docs/server.md" in result.stderr
    assert study_runs(tmp_path) == []


@pytest.mark.parametrize("option, message", [("--slurm-options=qos", "'qos' is not key=value"),
                                             ("--executor=kubernetes", "'kubernetes' is not one of local, slurm"),
                                             ("--time-min=0", "time_min: each must be at least 1")])
def test_bad_cluster_settings_are_usage_errors_that_name_the_setting(tmp_path, option, message):
    result = study(tmp_path, "--executor=submitit-local", option, "--ablations", "baseline", "--seeds", "1")
    assert result.returncode == 2 and message in result.stderr


def test_each_child_job_asks_slurm_for_its_gpus_cpus_time_partition_and_account(tmp_path, slurm_commands):
    args = argparse.Namespace(executor="slurm", gpus="4", cpus_per_gpu="6", time_min="2880", partition="gpu",
                              account="my-lab", slurm_options="qos=high, constraint=h100", job_folder=str(tmp_path))
    settings = slurm.cluster_settings(args, tmp_path / "unused")
    executor = slurm.make_executor("slurm", settings)
    script = executor._executor._make_submission_file_text("python -m something", "uid")  # the sbatch file
    for line in ("--gpus-per-node=4", "--cpus-per-task=24", "--time=2880", "--partition=gpu", "--account=my-lab",
                 "--qos=high", "--constraint=h100", "--nodes=1", "--ntasks-per-node=1"):
        assert f"#SBATCH {line}" in script, line


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    with module_folder(request, tmp_path_factory, "slurm-study") as path:
        yield path


@pytest.mark.slow
def test_a_failed_job_is_named_and_a_resumed_study_resubmits_only_what_did_not_finish(store):
    broken = store / "broken_encoder.py"  # valid when planned; its job fails when training starts
    broken.write_text('"""An encoder folder that is not there."""\n\noverrides = {"text.encoder": "/nowhere/encoder"}\n')
    settings = ["--executor", "submitit-local", "--job-folder", str(store / "jobs"), "--seeds", "1",
                "--ablations", f"baseline,{broken}", "--overrides", f"train.output_dir={store / 'outputs'}"]
    first = study(store, *settings)
    assert first.returncode == 0, first.stdout + first.stderr  # one of two failed: the study itself finished
    (parent,) = study_runs(store)
    tags = parent.data.tags
    ok_job, ok_state = tags["job/baseline-tiny-s0"].split()
    failed_job, failed_state = tags["job/broken_encoder-tiny-s0"].split()
    assert (ok_state, failed_state) == ("COMPLETED", "FAILED")
    assert tags["study/failed_runs"] == "broken_encoder-tiny-s0"
    assert f"broken_encoder-tiny-s0: FAILED (job {failed_job}: FAILED)" in first.stdout
    summary = json.loads((store / "jobs" / "study_summary.json").read_text())
    assert {run["run_name"]: run["job_id"] for run in summary["runs"]} == {
        "baseline-tiny-s0": ok_job, "broken_encoder-tiny-s0": failed_job}

    again = study(store, *settings, "--resume", parent.info.run_id)
    assert "resumed: 1 already finished, 0 to continue" in again.stdout, again.stdout + again.stderr
    summary = json.loads((store / "jobs" / "study_summary.json").read_text())
    assert {run["run_name"]: run["previous"].split(" (")[0] for run in summary["runs"]} == {
        "baseline-tiny-s0": "finished before", "broken_encoder-tiny-s0": ""}
    (parent,) = study_runs(store)
    assert parent.data.tags["job/baseline-tiny-s0"] == f"{ok_job} COMPLETED"  # not submitted again
    resubmitted, state = parent.data.tags["job/broken_encoder-tiny-s0"].split()
    assert resubmitted != failed_job and state == "FAILED"
