"""A study travels: exported into a folder (mlflow-export-import's layout), imported into a fresh store with its
names, parent links, metric histories and judge, imported twice without a duplicate, exported back unchanged,
analyzed to the same table, and resumed there from the record: finished children kept, the rest trained and read
by the same judge, each exported as it finishes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mlproject.export_import import layout
from mlproject.export_import.references import References, model_reference
from tests.helpers import module_folder, subprocess_env

pytestmark = pytest.mark.slow

CHILD_OVERRIDES = "train.num_sample_prompts=1 diffusion.sample_steps=2"


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _entry(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"mlproject.{name}", *args]


def _store(folder: Path) -> tuple[dict[str, str], MlflowClient]:
    folder.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(folder)
    return env, MlflowClient(env["MLFLOW_TRACKING_URI"])


@pytest.fixture(scope="module")
def exported(request, tmp_path_factory):
    """A tiny study (judge first; baseline and no_ema, one seed each) in store A, exported into a folder."""
    with module_folder(request, tmp_path_factory, "travel") as root:
        env, client = _store(root / "a")
        _run(_entry("train_recognizer", "--scale", "tiny"), root / "a", env)
        _run(_entry("study", "--ablations", "baseline,no_ema", "--seeds", "1", "--scale", "tiny",
                    "--overrides", f"{CHILD_OVERRIDES} train.output_dir={root / 'a' / 'outputs'}"), root / "a", env)
        (study,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.role = 'study'")
        out = _run(_entry("export_study", "--study", study.info.run_id, "--output", str(root / "record")), root, env)
        yield root, study.info.run_id, out.stdout


@pytest.fixture(scope="module")
def imported(exported):
    """The record imported into a fresh store B."""
    root, study_id, _ = exported
    env, client = _store(root / "b")
    _run(_entry("import_study", "--folder", str(root / "record")), root / "b", env)
    return env, client


def _runs(client: MlflowClient) -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()], "", max_results=1000)


def _by_name(client: MlflowClient) -> dict:
    return {r.info.run_name: r for r in _runs(client) if r.data.tags.get("role") in ("study", "recognizer")
            or r.data.tags.get("ablation")}


def _histories(client: MlflowClient, run) -> dict[str, list[tuple]]:
    return {key: sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, key))
            for key in run.data.metrics}


def test_the_export_is_in_the_layout_mlflow_export_import_reads_and_small(exported):
    root, study_id, printed = exported
    record = root / "record"
    experiments = sorted((record / "experiments").glob("*/experiment.json"))
    assert len(experiments) == 2  # the study's and the judges'
    for path in experiments:
        document = json.loads(path.read_text())
        assert {"system", "info", "mlflow"} <= set(document) and document["info"]["failed_runs"] == []
        assert isinstance(document["mlflow"]["experiment"]["tags"], dict)
        for run_id in document["mlflow"]["runs"]:
            run = json.loads((path.parent / "runs" / run_id / "run.json").read_text())["mlflow"]
            assert {"info", "params", "metrics", "tags", "inputs"} <= set(run) and "model_inputs" in run["inputs"]
            assert all(set(p) == {"value", "timestamp", "step"} for points in run["metrics"].values() for p in points)
            artifacts = path.parent / "runs" / run_id / "artifacts"
            assert not (artifacts / "checkpoints").exists()  # only when asked
            assert layout.folder_bytes(path.parent / "runs" / run_id) < 5e6
    manifest = json.loads((record / "manifest.json").read_text())["mlflow"]
    assert manifest["study"] == study_id
    assert sorted(r["role"] for r in manifest["runs"].values()) == ["child", "child", "judge", "study"]
    assert next(record.glob("experiments/*/logged_models/*/artifacts/**/recognizer.safetensors"))  # the judge's weights
    assert "MB in" in printed  # the size is reported


def test_a_fresh_store_gets_every_run_with_its_name_parent_times_and_whole_metric_history(exported, imported):
    root, study_id, _ = exported
    _, original = _store(root / "a")
    _, client = imported
    before, after = _by_name(original), _by_name(client)
    assert sorted(before) == sorted(after)
    (study_here,) = [r for r in after.values() if r.data.tags.get("role") == "study"]
    for name, run in before.items():
        copy = after[name]
        assert copy.data.tags[layout.SOURCE_RUN_ID_TAG] == run.info.run_id  # the original id stays as a tag
        assert (copy.info.status, copy.info.start_time, copy.info.end_time) == (run.info.status, run.info.start_time, run.info.end_time)
        assert copy.data.params == run.data.params
        assert _histories(client, copy) == _histories(original, run)  # every step of every metric
        assert copy.data.tags.get("mlflow.note.content") == run.data.tags.get("mlflow.note.content")
        if run.data.tags.get("ablation"):
            assert copy.data.tags["mlflow.parentRunId"] == study_here.info.run_id
            assert copy.data.tags["study"] == study_here.info.run_id
            files = {a.path for a in client.list_artifacts(copy.info.run_id, "eval")}
            assert files == {a.path for a in original.list_artifacts(run.info.run_id, "eval")} and files
            assert sorted(d.dataset.digest for d in copy.inputs.dataset_inputs) == sorted(d.dataset.digest for d in run.inputs.dataset_inputs)


def test_the_judge_comes_with_its_weights_and_the_children_name_it_in_the_new_store(imported):
    from mlproject.registry.recognizer_registry import load_recognizer_for
    from text2sign.config import Config

    env, client = imported
    (version,) = client.search_model_versions("name='text2sign-recognizer-synthetic'")
    children = [r for r in _runs(client) if r.data.tags.get("ablation")]
    assert {c.data.tags["eval/recognizer"] for c in children} == {f"{version.name} version {version.version}"}
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    try:
        from mlproject.config_from_params import resolve_config

        data = resolve_config("baseline", "tiny", 0).data
        judge, status = load_recognizer_for(data, "tiny", judge=f"{version.name}/{version.version}")
        assert judge is not None and status.endswith(f"version {version.version}")
    finally:
        mlflow.set_tracking_uri(None)


def test_importing_the_same_folder_twice_adds_nothing(exported, imported):
    root, *_ = exported
    env, client = imported
    def census():
        runs = _runs(client)
        return (len(runs), sum(len(v) for r in runs for v in _histories(client, r).values()),
                len(client.search_model_versions("name='text2sign-recognizer-synthetic'")),
                sorted((r.info.run_name, r.data.tags.get("mlflow.parentRunId", "")) for r in runs))
    before = census()
    out = _run(_entry("import_study", "--folder", str(root / "record")), root / "b", env)
    assert "new runs: none" in out.stdout and "registered: none" in out.stdout
    assert census() == before


def test_the_imported_study_exports_back_to_the_same_folder(exported, imported):
    root, study_id, _ = exported
    env, _ = imported
    again = root / "record-again"
    shutil.copytree(root / "record", again)
    # Exported from store B by its id in the record: every run keeps its record id and nothing is rewritten.
    out = _run(_entry("export_study", "--study", study_id, "--output", str(again)), root / "b", env)
    assert out.stdout.count("(unchanged)") == 4
    for path in (root / "record").rglob("*"):
        if path.is_file():
            copy = again / path.relative_to(root / "record")
            assert copy.read_bytes() == path.read_bytes(), path


def test_analyze_gives_the_same_comparison_table_on_the_imported_study(exported, imported):
    root, study_id, _ = exported
    env_b, _ = imported
    env_a, _ = _store(root / "a")
    _run(_entry("analyze", "--study", study_id, "--output", str(root / "analysis-a"), "--baseline", "baseline"), root / "a", env_a)
    # In store B the study is asked for by its id in the record.
    _run(_entry("analyze", "--study", study_id, "--output", str(root / "analysis-b"), "--baseline", "baseline"), root / "b", env_b)
    pd.testing.assert_frame_equal(pd.read_csv(root / "analysis-a" / "comparison_table.csv"),
                                  pd.read_csv(root / "analysis-b" / "comparison_table.csv"))


def test_a_study_resumed_from_its_record_keeps_finished_children_and_restarts_one_without_checkpoints(exported):
    """no_ema was stopped (KILLED) before the export: without its checkpoints the record cannot carry it, so the
    study resumed elsewhere trains it afresh, reads it with the study's judge, and exports each child it finishes."""
    root, study_id, _ = exported
    env_a, original = _store(root / "a")
    source = root / "c-source"
    shutil.copytree(root / "a", source, ignore=shutil.ignore_patterns("outputs"))
    env_s, copy = _store(source)
    (stopped,) = [r for r in _runs(copy) if r.data.tags.get("ablation") == "no_ema"]
    copy.set_terminated(stopped.info.run_id, "KILLED")
    out = _run(_entry("export_study", "--study", study_id, "--output", str(root / "record-c")), source, env_s)
    assert "not exported: no_ema-tiny-s0" in out.stdout
    env, client = _store(root / "c")
    _run(_entry("import_study", "--folder", str(root / "record-c")), root / "c", env)
    out = _run(_entry("study", "--ablations", "baseline,no_ema", "--seeds", "1", "--scale", "tiny", "--resume", study_id,
                      "--overrides", f"{CHILD_OVERRIDES} train.output_dir={root / 'a' / 'outputs'}",  # the study's own
                      "--export", str(root / "record-c")), root / "c", env)
    assert "resumed: 1 already finished, 0 to continue" in out.stdout
    children = [r for r in _runs(client) if r.data.tags.get("ablation")]
    assert sorted((c.data.tags["ablation"], c.info.status) for c in children) == [("baseline", "FINISHED"), ("no_ema", "FINISHED")]
    (judge,) = client.search_model_versions("name='text2sign-recognizer-synthetic'")
    (study_here,) = [r for r in _runs(client) if r.data.tags.get("role") == "study"]
    assert study_here.data.tags["study/judge"] == f"{judge.name}/{judge.version}"
    assert {c.data.tags["eval/recognizer"] for c in children} == {f"{judge.name} version {judge.version}"}
    manifest = json.loads((root / "record-c" / "manifest.json").read_text())["mlflow"]
    assert sorted(r["name"] for r in manifest["runs"].values() if r["role"] == "child") == ["baseline-tiny-s0", "no_ema-tiny-s0"]
    assert manifest["study"] == study_id  # the study keeps its record's id wherever it resumed


def test_tags_that_name_runs_or_versions_are_translated_and_the_rest_kept():
    references = References(runs={"a" * 32: "b" * 32}, versions={("text2sign-recognizer-synthetic", "2"): "7"})
    tags = {"mlflow.parentRunId": "a" * 32, "study": "a" * 32, "eval/recognizer": "text2sign-recognizer-synthetic version 2",
            "study/judge": "text2sign-recognizer-synthetic/2", "registry/model": "text2sign/3", "seed": "2"}
    assert references.tags(tags) == {**tags, "mlflow.parentRunId": "b" * 32, "study": "b" * 32,
                                     "eval/recognizer": "text2sign-recognizer-synthetic version 7",
                                     "study/judge": "text2sign-recognizer-synthetic/7"}
    assert model_reference("text2sign/3") == ("text2sign", "3") and model_reference("not a version") is None


def test_importing_a_folder_that_is_not_an_export_is_a_usage_error(tmp_path):
    env, _ = _store(tmp_path / "store")
    (tmp_path / "empty").mkdir()
    for folder, message in ((tmp_path / "missing", "is not a folder"), (tmp_path / "empty", "holds no experiments")):
        out = subprocess.run(_entry("import_study", "--folder", str(folder)), cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
