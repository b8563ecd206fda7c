"""One experiment per run, by one rule (mlproject/tracking/experiment.py), and every experiment we use opens in the UI
on its training runs; end to end, a study launched by `mlflow run --experiment-name` keeps its children."""

from __future__ import annotations

import subprocess

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlproject.tracking.experiment import KIND_TAG, MODEL_TRAINING_KIND, start_run
from tests.helpers import REPO, mlflow_cli, subprocess_env


@pytest.fixture
def store(in_tmp, monkeypatch):
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    yield MlflowClient(uri)
    while mlflow.active_run():
        mlflow.end_run()


def _experiment_of(run) -> str:
    return mlflow.get_experiment(run.info.experiment_id).name


def test_outside_mlflow_run_the_flag_then_the_environment_then_the_default_names_the_experiment(store, monkeypatch):
    with start_run("", "text2sign-ablations") as run:
        assert _experiment_of(run) == "text2sign-ablations"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with start_run("", "text2sign-ablations") as run:
        assert _experiment_of(run) == "from-env"
    with start_run("from-flag", "text2sign-ablations") as run:
        assert _experiment_of(run) == "from-flag"


def test_a_new_experiment_opens_on_training_runs_and_a_chosen_kind_is_kept(store):
    with start_run("fresh", "text2sign-ablations") as run:
        assert store.get_experiment(run.info.experiment_id).tags[KIND_TAG] == MODEL_TRAINING_KIND
    chosen = store.create_experiment("chosen", tags={KIND_TAG: "genai_development"})
    with start_run("chosen", "text2sign-ablations"):
        pass
    assert store.get_experiment(chosen).tags[KIND_TAG] == "genai_development"


def test_under_mlflow_run_the_run_mlflow_created_is_used_and_its_experiment_marked(store, monkeypatch):
    default = store.get_experiment_by_name("Default") or store.get_experiment("0")
    launched = store.create_run(default.experiment_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", launched.info.run_id)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", default.experiment_id)
    with start_run("ignored-under-mlflow-run", "text2sign-ablations") as run:
        assert run.info.run_id == launched.info.run_id
    assert store.get_experiment(default.experiment_id).tags[KIND_TAG] == MODEL_TRAINING_KIND


def test_a_child_run_goes_to_its_parents_experiment_whatever_the_environment_says(store, monkeypatch):
    parent = store.create_run(store.create_experiment("my-study"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "elsewhere")
    with start_run("also-elsewhere", "text2sign-ablations", parent_run_id=parent.info.run_id) as child:
        assert child.info.experiment_id == parent.info.experiment_id
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_an_entry_point_names_the_run_mlflow_run_made_for_it(store, monkeypatch):
    """`mlflow run` creates the run under a random name before the entry point starts."""
    launched = store.create_run(store.create_experiment("launched"), run_name="random-otter-42")
    monkeypatch.setenv("MLFLOW_RUN_ID", launched.info.run_id)
    with start_run("", "text2sign-ablations", run_name="analysis-study-medium-12runs"):
        pass
    assert store.get_run(launched.info.run_id).data.tags["mlflow.runName"] == "analysis-study-medium-12runs"


def test_an_analysis_run_is_named_after_its_study(store):
    from mlproject.analyze import analysis_run_name

    study = store.create_run(store.create_experiment("my-study"), run_name="study-medium-12runs")
    assert analysis_run_name(study.info.run_id) == "analysis-study-medium-12runs"
    assert analysis_run_name("") == "analysis-all"


def test_analyze_finds_a_study_in_any_experiment(store, monkeypatch):
    from mlproject.analyze import where_to_look

    study = store.create_run(store.create_experiment("my-study"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "text2sign-ablations")
    assert where_to_look("", study.info.run_id)[0] == study.info.experiment_id


@pytest.mark.slow
def test_a_study_under_mlflow_run_keeps_its_children_in_its_experiment_and_analyze_finds_it(tmp_path):
    """The defect as a user met it: the parent in `my-study`, its children in `text2sign-ablations`."""
    env = subprocess_env(tmp_path)
    overrides = (f"train.output_dir={tmp_path / 'outputs'} train.num_sample_prompts=0 diffusion.sample_steps=2 "
                 "train.epochs=1")
    study = subprocess.run(
        [*mlflow_cli(), "run", str(REPO), "-e", "study", "-P", "ablations=baseline", "-P", "seeds=1",
         "-P", "scale=tiny", "-P", f"overrides={overrides}", "-P", "evaluate=false",
         "--env-manager", "local", "--experiment-name", "my-study"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("my-study")
    assert experiment.tags[KIND_TAG] == MODEL_TRAINING_KIND
    (parent,) = client.search_runs([experiment.experiment_id], "tags.role = 'study'")
    (child,) = client.search_runs([experiment.experiment_id], "tags.ablation = 'baseline'")
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert client.get_experiment_by_name("text2sign-ablations") is None

    analysis = subprocess.run(
        [*mlflow_cli(), "run", str(REPO), "-e", "analyze", "-P", f"study={parent.info.run_id}",
         "-P", f"output={tmp_path / 'analysis'}", "--env-manager", "local"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert analysis.returncode == 0, analysis.stdout[-3000:] + analysis.stderr[-3000:]
    assert (tmp_path / "analysis" / "comparison_table.md").is_file()
    assert "#/compare-runs?" in analysis.stdout and "workflowType=machine_learning" in analysis.stdout
    assert "workflowType=machine_learning" in (tmp_path / "analysis" / "ABLATION_RESULTS_REPORT.txt").read_text()
    names = [r.data.tags.get("mlflow.runName") for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`mlflow.runName` LIKE 'analysis-%'")]
    assert names == [f"analysis-{parent.data.tags['mlflow.runName']}"]
