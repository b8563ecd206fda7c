"""A study outlives its process: resumed, it keeps finished children, continues stopped ones from their
checkpoints, trains only what it lacks, and refuses to mix children of different configs. On a CPU,
children that run at once share the cores instead of oversubscribing them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlproject.study import child_env, main as study_main
from tests.helpers import subprocess_env

CHILD_OVERRIDES = "train.num_sample_prompts=0 diffusion.sample_steps=2"


def test_children_at_once_on_a_cpu_split_the_cores_between_them(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert child_env(None, 2)["OMP_NUM_THREADS"] == "4"
    assert child_env(None, 16)["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in child_env(None, 1)  # alone, a child uses every core as torch decides
    gpu_child = child_env("3", 2)
    assert gpu_child["CUDA_VISIBLE_DEVICES"] == "3" and "OMP_NUM_THREADS" not in gpu_child


def test_a_thread_count_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert child_env(None, 4)["OMP_NUM_THREADS"] == "3"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield tmp_path
    mlflow.set_tracking_uri(None)


def _study_run(scale: str, overrides: str) -> str:
    mlflow.set_experiment("text2sign-ablations")
    with mlflow.start_run() as run:
        mlflow.set_tags({"role": "study", "study": run.info.run_id, "scale": scale, "study/overrides": overrides})
    return run.info.run_id


@pytest.mark.parametrize("what, argv, message", [
    ("scale", ["--scale", "small"], "is at scale 'tiny', not 'small'"),
    ("overrides", ["--scale", "tiny", "--overrides", "train.lr=1e-3"], "was run with overrides ''"),
])
def test_resuming_with_another_scale_or_overrides_is_refused_before_anything_trains(store, capsys, what, argv, message):
    study = _study_run("tiny", "")
    assert study_main(["--ablations", "baseline", "--seeds", "1", "--resume", study, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not MlflowClient().search_runs([mlflow.get_experiment_by_name("text2sign-ablations").experiment_id],
                                          "tags.ablation != ''")


def test_resuming_a_run_that_is_not_a_study_is_refused(store, capsys):
    mlflow.set_experiment("text2sign-ablations")
    with mlflow.start_run() as run:
        mlflow.set_tag("ablation", "baseline")
    assert study_main(["--scale", "tiny", "--resume", run.info.run_id]) == 2
    assert "is not a study run" in capsys.readouterr().err


@pytest.mark.slow
def test_a_resumed_study_keeps_finished_children_continues_a_stopped_one_and_adds_a_seed(tmp_path):
    env = subprocess_env(tmp_path)
    overrides = f"{CHILD_OVERRIDES} train.output_dir={tmp_path / 'outputs'}"
    base = [sys.executable, "-m", "mlproject.study", "--ablations", "baseline", "--scale", "tiny", "--evaluate", "false",
            "--overrides", overrides]
    first = subprocess.run(base + ["--seeds", "2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("text2sign-ablations").experiment_id
    (study,) = client.search_runs([experiment], "tags.role = 'study'")
    study_id = study.info.run_id

    def children():
        return {run.info.run_name: run for run in
                client.search_runs([experiment], f"tags.study = '{study_id}' and tags.ablation != ''")}

    before = children()
    # Seed 1 was stopped (a scheduler's SIGTERM ends a run KILLED after its checkpoint).
    client.set_terminated(before["baseline-tiny-s1"].info.run_id, "KILLED")

    resumed = subprocess.run(base + ["--seeds", "3", "--resume", study_id], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "1 already finished, 1 to continue" in resumed.stdout

    after = children()
    assert sorted(after) == ["baseline-tiny-s0", "baseline-tiny-s1", "baseline-tiny-s2"]  # no duplicate runs
    assert all(run.info.status == "FINISHED" for run in after.values())
    for name in ("baseline-tiny-s0", "baseline-tiny-s1"):
        assert after[name].info.run_id == before[name].info.run_id
    assert after["baseline-tiny-s0"].info.end_time == before["baseline-tiny-s0"].info.end_time  # not retrained
    assert after["baseline-tiny-s2"].data.tags["mlflow.parentRunId"] == study_id

    summary_path = client.download_artifacts(study_id, "study_summary.json", str(tmp_path))
    summary = {run["run_name"]: run["previous"] for run in json.loads(Path(summary_path).read_text())["runs"]}
    assert summary["baseline-tiny-s0"].startswith("finished before (run ")
    assert summary["baseline-tiny-s1"] == f"resumed run {before['baseline-tiny-s1'].info.run_id}"
    assert summary["baseline-tiny-s2"] == ""
    assert client.get_run(study_id).info.status == "FINISHED"


def test_analysis_names_a_stopped_child_that_a_resumed_study_ran_again_as_superseded(store):
    from mlproject.analyze import fetch_runs

    study = _study_run("tiny", "")
    run_ids = {}
    for status in ("KILLED", "FINISHED"):
        with mlflow.start_run() as run:
            mlflow.set_tags({"study": study, "ablation": "baseline", "seed": "0"})
            mlflow.log_metric("eval/fsd", 1.0)
        MlflowClient().set_terminated(run.info.run_id, status)
        run_ids[status] = run.info.run_id
    runs, left_out = fetch_runs("text2sign-ablations", study)
    assert list(runs["run_id"]) == [run_ids["FINISHED"]]
    (stopped,) = left_out
    assert stopped["run_id"] == run_ids["KILLED"]
    assert stopped["reason"] == f"superseded: the same ablation and seed finished in run {run_ids['FINISHED']}"
