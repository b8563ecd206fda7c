"""A whole study as a user runs it: study -> analyze -> champion in the registry -> load it and serve it, and
the MLflow UI over it. The same against a tracking server (on PostgreSQL, with users): tests/test_team_server.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.browser import headless_chromium, missing_browser
from tests.helpers import free_port, mlflow_cli, mlflow_server, module_folder, subprocess_env
from tests.mlflow_ui import MlflowUI, compare_route

pytestmark = pytest.mark.slow

# One checkpoint per child, at the end: two text_finetuned children would otherwise write 3 GB. One sample
# prompt, so the UI test has a filmstrip per run to look at.
CHILD_OVERRIDES = "train.num_sample_prompts=1 diffusion.sample_steps=2 train.checkpoint_every=2"


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def study(request, tmp_path_factory):
    """3 ablations x 2 seeds at tiny scale, plus an ablation that fails at run time (CUDA on a CPU machine)."""
    with module_folder(request, tmp_path_factory, "study") as store:
        (store / "cuda_only.py").write_text('"""Needs a GPU."""\noverrides = {"train.device": "cuda"}\n')
        # A system metrics sample every second, so the UI test has some: a tiny child lasts under a minute.
        env = {**subprocess_env(store), "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "1",
               "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING": "1"}
        out = _run([sys.executable, "-m", "mlproject.study", "--ablations",
                    f"baseline,text_finetuned,no_ema,{store / 'cuda_only.py'}", "--seeds", "2", "--scale", "tiny",
                    "--overrides", f"{CHILD_OVERRIDES} train.output_dir={store / 'outputs'}"], store, env,
                   timeout=1800)  # 8 children, one at a time; on 2 cores shared with other jobs it took over 15 min
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        (store / "study_stdout.txt").write_text(out.stdout)
        client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("text2sign-ablations")
        (parent,) = client.search_runs([experiment.experiment_id], "tags.role = 'study'")
        analysis = _run([sys.executable, "-m", "mlproject.analyze", "--study", parent.info.run_id,
                         "--output", str(store / "analysis"), "--champion-metric", "eval/temporal_consistency"], store, env)
        assert analysis.returncode == 0, analysis.stderr[-3000:]
        yield store, env, client, parent


def test_study_runs_every_child_under_one_parent_and_names_the_failures(study):
    store, env, client, parent = study
    children = client.search_runs([parent.info.experiment_id], f"tags.study = '{parent.info.run_id}' and tags.ablation != ''")
    assert len(children) == 8
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    finished = sorted(c.info.run_name for c in children if c.info.status == "FINISHED")
    assert len(finished) == 6 and "no_ema-tiny-s1" in finished
    assert parent.data.tags["study/failed_runs"] == "cuda_only-tiny-s0, cuda_only-tiny-s1"
    printed = (store / "study_stdout.txt").read_text()
    compare_line = next(line for line in printed.splitlines() if line.startswith("compare the runs: "))
    assert "#/compare-runs?" in compare_line and "workflowType=machine_learning" in compare_line
    assert all(run.info.run_id in compare_line for run in children if run.info.status == "FINISHED")


def test_analysis_writes_tables_with_intervals_and_p_values_a_report_and_plots(study):
    store, *_ = study
    folder = store / "analysis"
    table = pd.read_csv(folder / "comparison_table.csv")
    assert set(table["ablation"]) == {"baseline", "text_finetuned", "no_ema"}
    assert {"mean", "std", "n", "ci95", "change_pct", "p_value", "p_holm"} <= set(table.columns)
    finetuned = table[(table["ablation"] == "text_finetuned") & (table["metric"] == "summary/train_time_s")].iloc[0]
    assert finetuned["n"] == 2 and pd.notna(finetuned["p_value"]) and pd.notna(finetuned["ci95"])
    assert "eval/fsd" not in set(table["metric"]) or table[table["metric"] == "eval/fsd"]["mean"].isna().all()
    report = (folder / "ABLATION_RESULTS_REPORT.txt").read_text()
    assert "cuda_only-tiny-s0" in report and "text_finetuned" in report and "no_ema" in report
    markdown = (folder / "comparison_table.md").read_text()
    assert markdown.count("|") > 20 and "text_finetuned" in markdown
    pngs = list(folder.glob("*.png"))
    assert len(pngs) >= 2 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_champion_loads_in_a_fresh_process_and_generates_a_video(study):
    store, env, client, _ = study
    version = client.get_model_version_by_alias("text2sign", "champion")
    assert version.tags["ablation"] in {"baseline", "text_finetuned", "no_ema"}
    assert client.get_model_version_by_alias("text2sign", "best-no_ema")
    code = ("import json, mlflow, pandas as pd; m = mlflow.pyfunc.load_model('models:/text2sign@champion'); "
            "out = m.predict(pd.DataFrame({'text': ['hello', 'where is my house']}), params={'steps': 2}); "
            "print(json.dumps({'n': len(out), 'shape': out['shape'][0], 'gif': out['gif_base64'][0][:8]}))")
    out = _run([sys.executable, "-c", code], store, env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["n"] == 2 and json.loads(answer["shape"]) == [4, 16, 16, 3]
    assert answer["gif"].startswith("R0lGOD")  # base64 of "GIF8"


def test_a_registered_model_carries_only_the_weights_it_generates_with(study):
    store, env, client, _ = study
    import torch

    version = client.get_model_version_by_alias("text2sign", "best-text_finetuned")
    model_folder = Path(client.get_model_version_download_uri("text2sign", version.version).removeprefix("file://"))
    (weights,) = model_folder.rglob("step_*.pt")
    (checkpoint,) = (store / "outputs" / version.run_id / "checkpoints").glob(version.tags["checkpoint"])
    kept = torch.load(weights, weights_only=True)
    assert kept["ema"] and not kept["model"] and "optimizer" not in kept  # the EMA copy the run is evaluated with
    assert weights.stat().st_size < checkpoint.stat().st_size / 3  # fine-tuned MiniLM: ~90 MB of ~370 MB
    assert not list((store / "tmp").glob("text2sign-eval-*"))  # evaluations leave no checkpoint copies behind


def test_served_champion_answers_rest_requests_and_rejects_bad_payloads(study):
    store, env, *_ = study
    port = _free_port()
    server = subprocess.Popen([*mlflow_cli(), "models", "serve", "-m", "models:/text2sign@champion", "--env-manager",
                               "local", "--host", "127.0.0.1", "--port", str(port)], cwd=store, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/ping", 180)

        def post(payload: dict) -> tuple[int, dict]:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(payload).encode(),
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read() or b"{}")

        status, body = post({"dataframe_records": [{"text": "hello"}], "params": {"steps": 2}})
        assert status == 200 and body["predictions"][0]["gif_base64"].startswith("R0lGOD")
        status, body = post({"dataframe_records": [{"words": "hello"}]})
        assert status == 400 and "text" in json.dumps(body)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.skipif(bool(missing_browser()), reason=missing_browser())
def test_the_mlflow_ui_shows_a_user_the_study_its_runs_and_the_registered_models(study, tmp_path):
    """`mlflow server` over the study's store, looked at in headless Chromium. Screenshots go to
    $TEXT2SIGN_UI_SCREENSHOTS (how docs/ui-*.png are made) or the test's folder, kept when it fails."""
    store, env, client, parent = study
    runs = {r.info.run_name: r for r in client.search_runs(
        [parent.info.experiment_id], f"tags.study = '{parent.info.run_id}' and attributes.status = 'FINISHED'")}
    shots = Path(os.environ.get("TEXT2SIGN_UI_SCREENSHOTS") or tmp_path / "screenshots")
    with mlflow_server(store, free_port(), env, backend_store_uri=env["MLFLOW_TRACKING_URI"]) as uri, \
            headless_chromium() as driver:
        ui = MlflowUI(driver, uri, shots)
        try:
            walk_through_the_ui(ui, parent.info.experiment_id, parent.info.run_name, runs)
        except Exception:
            print(f"screenshot of the failure: {ui.screenshot('failure')}")
            raise


def walk_through_the_ui(ui: MlflowUI, experiment_id: str, study_name: str, runs: dict) -> None:
    # Home -> "Model training" -> the experiment: it opens on its training runs, with their dataset.
    ui.open("")
    ui.close_assistant()
    ui.choose_model_training()
    ui.find_text("text2sign-ablations", exact=True).click()
    ui.wait_until(lambda: f"/experiments/{experiment_id}/runs" in ui.driver.current_url, "the experiment opens on its runs")
    ui.expand_run(study_name)  # the study's runs are nested under it
    for name in ("baseline-tiny-s0", "text_finetuned-tiny-s0", "no_ema-tiny-s0"):
        ui.find_text(name, exact=True)
    train_digest = next(d.dataset.digest for d in runs["baseline-tiny-s0"].inputs.dataset_inputs
                        if any(t.value == "train" for t in d.tags))
    ui.wait_until(lambda: f"synthetic ({train_digest})" in ui.text(), "the Dataset column names the train split")
    ui.show_tag_columns("ablation", "seed")
    ui.wait_until(lambda: {"ablation", "seed"} <= set(ui.text().split("\n")), "the ablation and seed columns show")
    ui.find_text("text_finetuned", exact=True)
    ui.screenshot("ui-runs")

    # A run: its description, the train/loss chart, the samples by step, the system metrics.
    run = runs["baseline-tiny-s0"]
    ui.open(f"experiments/{experiment_id}/runs/{run.info.run_id}")
    ui.wait_until(lambda: "data: synthetic" in ui.text(), "the description shows")  # rendered from Markdown
    ui.wait_until(lambda: f"synthetic ({train_digest})" in ui.text(), "the run's datasets show")
    ui.screenshot("ui-run")
    ui.open(f"experiments/{experiment_id}/runs/{run.info.run_id}/model-metrics")
    ui.search_charts("train/loss")
    ui.find_text("(train/loss)")  # the chart's legend: run name (metric)
    ui.search_charts("samples")
    ui.slide_images_to_step(int(run.data.metrics["summary/steps"]))
    ui.wait_until(lambda: any("samples" in src for src in ui.artifact_images()), "the sample filmstrip shows")
    ui.screenshot("ui-run-samples")
    ui.find_text("System metrics", exact=True).click()
    ui.find_text("cpu_utilization_percentage")

    # Three runs side by side.
    chosen = [runs[name].info.run_id for name in ("baseline-tiny-s0", "text_finetuned-tiny-s0", "no_ema-tiny-s0")]
    ui.open(compare_route(chosen, experiment_id))
    for name in ("baseline-tiny-s0", "text_finetuned-tiny-s0", "no_ema-tiny-s0"):
        ui.find_text(name)
    ui.find_text("train.lr")  # the parameters table compares them

    # The registered model: a version per run, the best-* aliases and the champion.
    ui.open("models/text2sign")
    for alias in ("best-baseline", "best-text_finetuned", "best-no_ema", "champion"):
        ui.find_text(alias)
    ui.screenshot("ui-model")


def test_a_resumed_study_keeps_finished_children_continues_a_stopped_one_and_adds_a_seed(study):
    # Last in this module: it adds a child to the shared study.
    store, env, client, parent = study
    study_id = parent.info.run_id

    def baseline_children():
        return {run.info.run_name: run for run in client.search_runs(
            [parent.info.experiment_id], f"tags.study = '{study_id}' and tags.ablation = 'baseline'")}

    before = baseline_children()
    # Seed 1 was stopped (a scheduler's SIGTERM ends a run KILLED after its checkpoint).
    client.set_terminated(before["baseline-tiny-s1"].info.run_id, "KILLED")
    resumed = _run([sys.executable, "-m", "mlproject.study", "--ablations", "baseline", "--seeds", "3", "--scale", "tiny",
                    "--overrides", f"{CHILD_OVERRIDES} train.output_dir={store / 'outputs'}", "--resume", study_id],
                   store, env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "1 already finished, 1 to continue" in resumed.stdout

    after = baseline_children()
    assert sorted(after) == ["baseline-tiny-s0", "baseline-tiny-s1", "baseline-tiny-s2"]  # no duplicate runs
    assert all(run.info.status == "FINISHED" for run in after.values())
    for name in ("baseline-tiny-s0", "baseline-tiny-s1"):
        assert after[name].info.run_id == before[name].info.run_id
    assert after["baseline-tiny-s0"].info.end_time == before["baseline-tiny-s0"].info.end_time  # not retrained
    assert after["baseline-tiny-s2"].data.tags["mlflow.parentRunId"] == study_id

    (store / "resumed").mkdir()
    summary_path = client.download_artifacts(study_id, "study_summary.json", str(store / "resumed"))
    summary = {run["run_name"]: run["previous"] for run in json.loads(Path(summary_path).read_text())["runs"]}
    assert summary["baseline-tiny-s0"].startswith("finished before (run ")
    assert summary["baseline-tiny-s1"] == f"resumed run {before['baseline-tiny-s1'].info.run_id}"
    assert summary["baseline-tiny-s2"] == ""
    study_run = client.get_run(study_id)
    assert study_run.info.status == "FINISHED"
    # The failures of the first session were not in this plan: still named.
    assert study_run.data.tags["study/failed_runs"] == "cuda_only-tiny-s0, cuda_only-tiny-s1"
