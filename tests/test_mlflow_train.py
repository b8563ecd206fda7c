"""The `train` entry point end to end: a real `mlflow run` into a temporary SQLite store, read back
through MlflowClient the way the UI and the analysis read it; and usage errors that cost no run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import REPO, mlflow_cli, subprocess_env


@pytest.mark.slow
def test_mlflow_run_trains_tiny_baseline_and_follows_the_tracking_contract(tmp_path, monkeypatch):
    # A system metrics sample every second: the run takes about a minute, the default interval 30 s.
    env = {**subprocess_env(tmp_path), "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL": "1",
           "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING": "1"}
    out = subprocess.run(
        [*mlflow_cli(), "run", str(REPO), "-e", "train", "-P", "scale=tiny", "-P", "epochs=4",
         "-P", f"overrides=train.output_dir={tmp_path / 'outputs'}",
         "--env-manager", "local", "--experiment-name", "text2sign-ablations"],
        cwd=tmp_path, env={**env, "TEXT2SIGN_FVD": "on"}, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("text2sign-ablations")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "baseline-tiny-s0"
    tags = run.data.tags
    assert (tags["ablation"], tags["scale"], tags["seed"], tags["dataset"]) == ("baseline", "tiny", "0", "synthetic")
    assert tags["git_commit"] and tags["device"]

    params = run.data.params
    assert params["text.freeze"] == "True" and params["ema.enabled"] == "True"
    assert params["model.channels"] == "16" and params["train.epochs"] == "4"
    assert params["diffusion.text_dropout"] == "0.1"

    loss = [m.value for m in client.get_metric_history(run.info.run_id, "train/loss")]
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps == list(range(1, 17))
    assert all(math.isfinite(v) for v in loss)
    # Per-step losses swing with the sampled timesteps; the val loss uses fixed noise, so it shows learning.
    val = [m.value for m in client.get_metric_history(run.info.run_id, "val/loss")]
    assert len(val) == 4 and val[-1] < 0.95 * val[0], val
    for key in ("train/lr", "train/grad_norm", "train/videos_per_s", "cpu/rss_gib", "val/loss",
                "summary/train_time_s", "summary/steps"):
        assert key in run.data.metrics, key

    # train evaluates at the end: metrics that need no judge are there, FVD and ST-LPIPS from the installed
    # packages' weights among them; the rest say why not.
    for key in ("eval/temporal_consistency", "eval/fvd", "eval/fvd_real_floor", "eval/stlpips"):
        assert math.isfinite(run.data.metrics[key]) and run.data.metrics[key] >= 0, key
    assert "eval/fvd_status" not in tags and "eval/stlpips_status" not in tags
    assert tags["eval/fvd_frames"] == "4 frames, each repeated 4x to 16 (I3D takes at least 9)"
    assert "train_recognizer" in tags["eval/backtranslation_status"]

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "metadata.json", "checkpoints", "samples", "logs"} <= artifacts
    checkpoints = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    assert len(checkpoints) == 4
    sample_dirs = [a.path for a in client.list_artifacts(run.info.run_id, "samples")]
    gifs = [a.path for a in client.list_artifacts(run.info.run_id, sample_dirs[-1]) if a.path.endswith(".gif")]
    assert len(gifs) == 2
    plans = [a.path for a in client.list_artifacts(run.info.run_id, sample_dirs[-1]) if a.path.endswith(".pose")]
    assert len(plans) == 2  # the planned skeleton of each sample prompt, for pose-format's viewers
    from text2sign.data.pose_file import read_track
    track = read_track(Path(client.download_artifacts(run.info.run_id, plans[0], str(tmp_path))))
    assert track.points.shape[1:] == (50, 3) and (track.points[..., 2] > 0).sum(-1).min() == 10  # the signer's 10
    config = json.loads(Path(client.download_artifacts(run.info.run_id, "config.json", str(tmp_path))).read_text())
    assert config["model"]["channels"] == 16

    # What a user looks for in the UI: the experiment opens on training runs; the splits as dataset inputs;
    # MLflow's system metrics; the samples by step; a description with the headline numbers, which the
    # registered version shares, along with a signature and an input example.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    inputs = {next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"} and {d.name for d in inputs.values()} == {"synthetic"}
    assert json.loads(inputs["train"].profile)["num_rows"] == 16 and json.loads(inputs["train"].source)["uri"] == "synthetic"
    assert len({d.digest for d in inputs.values()}) == 3
    assert "system/cpu_utilization_percentage" in run.data.metrics
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    assert sum(p.endswith(".png") and "samples+step+" in p for p in images) == 4  # one filmstrip per checkpoint
    note = tags["mlflow.note.content"]
    assert "**baseline**" in note and "`synthetic`" in note and "`tiny`" in note and "| temporal consistency" in note
    model, version = tags["registry/model"].split("/")
    assert client.get_model_version(model, version).description == note
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{model}/{version}")
    assert info.signature.inputs.input_names() == ["text"] and info.saved_input_example_info


def test_usage_error_exits_2_names_the_fix_and_creates_no_run(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--overrides", "train.lr=0"],
        cwd=tmp_path, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "train.lr: 0.0 is not allowed; it must be a positive number" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_unknown_ablation_exits_2_listing_the_known_ones(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mlproject.train", "--ablation", "no_such_thing"],
        cwd=tmp_path, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "unknown ablation 'no_such_thing'" in out.stderr and "text_finetuned" in out.stderr


def test_a_removed_switch_in_the_overrides_is_a_usage_error_naming_the_last_commit_that_had_it(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--overrides", "model.pooled_text=true"],
        cwd=tmp_path, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "model.pooled_text is set to 'true', but the switch was removed after commit c1d5b11" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_mlproject_types_a_parameter_float_only_where_every_value_it_takes_is_a_number():
    import yaml

    entry_points = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    for entry_point, spec in entry_points.items():
        for name, parameter in spec["parameters"].items():
            # `path` and `uri` would refuse an empty default or an output folder not made yet.
            assert parameter["type"] in ("string", "float"), (entry_point, name)
            if parameter["type"] == "float":
                assert isinstance(parameter["default"], (int, float)), (entry_point, name)
    assert entry_points["train"]["parameters"]["data"]["type"] == "string"  # synthetic, phoenix2014t:PATH
    assert entry_points["evaluate"]["parameters"]["guidance"]["type"] == "string"  # "" is the run's own


def test_print_config_prints_the_resolved_config_and_starts_nothing(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mlproject.train", "--ablation", "no_ema", "--scale", "full", "--print-config"],
        cwd=tmp_path, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    assert config["ema"]["enabled"] is False and config["model"]["channels"] == 96
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_usage_error_under_mlflow_run_leaves_no_run_running(tmp_path):
    out = subprocess.run(
        [*mlflow_cli(), "run", str(REPO), "-e", "train", "-P", "scale=tiny", "-P", "overrides=ema.decay=1.5",
         "--env-manager", "local"],
        cwd=tmp_path, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode != 0
    assert "ema.decay: 1.5 is not allowed; it must be strictly between 0 and 1" in out.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and all(r.info.status == "FAILED" for r in runs)


@pytest.mark.slow
def test_resume_from_run_id_continues_the_same_mlflow_run(tmp_path):
    env = subprocess_env(tmp_path)
    common = [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--overrides",
              f"train.output_dir={tmp_path / 'outputs'} train.num_sample_prompts=0"]
    first = subprocess.run([*common, "--epochs", "2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("text2sign-ablations").experiment_id])
    again = subprocess.run([*common, "--epochs", "3", "--resume", run.info.run_id], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not list((tmp_path / "tmp").glob("text2sign-*"))  # the checkpoint it downloaded went with the run
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert steps == list(range(1, 13))  # 8 steps, then 4 more: none duplicated, none missing
    resumed = client.get_run(run.info.run_id)
    assert resumed.data.params["train.epochs"] == "2"  # params are immutable: the new length is a tag
    assert resumed.data.tags["resumed_with.train.epochs"] == "3" and resumed.info.status == "FINISHED"

    mismatched = subprocess.run([*common, "--epochs", "3", "--seed", "1", "--resume", run.info.run_id], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=300)
    assert mismatched.returncode == 2 and "train.seed: 0 in the checkpoint vs 1 now" in mismatched.stderr


def test_a_run_that_loses_the_race_to_create_the_experiment_still_lands_in_it(in_tmp, monkeypatch):
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    from mlproject.tracking.tracker import FAIL_FAST_HTTP
    from mlproject.train import main

    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for name, value in FAIL_FAST_HTTP.items():  # the entry point sets them for its process: keep them to this test
        monkeypatch.setenv(name, value)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("text2sign-ablations")  # by a parallel run, a moment ago
    looked_up = TrackingServiceClient.get_experiment_by_name
    calls = []

    def not_there_yet(self, name):  # ... but this run looked before it existed
        calls.append(name)
        return None if len(calls) == 1 else looked_up(self, name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", not_there_yet)
    assert main(["--scale", "tiny", "--epochs", "1", "--overrides", "train.num_sample_prompts=0",
                 "--evaluate", "false", "--register", "false"]) == 0
    (run,) = client.search_runs([experiment_id])
    assert run.info.status == "FINISHED" and len(calls) >= 2
