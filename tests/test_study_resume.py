"""A study outlives its process: resumed, it keeps finished children, continues stopped ones from their
checkpoints, trains only what it lacks, and refuses to mix children of different configs. On a CPU,
children that run at once share the cores instead of oversubscribing them."""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlproject.study import child_env, main as study_main

# The end-to-end resume (keeps finished children, continues a stopped one, adds a seed) reuses the study
# of tests/test_study_analysis_registry.py, whose children are already trained.


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
