"""A training process stopped by SIGKILL at a random step, by Ctrl-C or by SIGTERM, then resumed by run id,
ends with the weights and the metric history of a run that was never interrupted: every step logged once,
none missing, and a half-copied checkpoint never picked up."""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from mlproject.tracking.runs import latest_run_checkpoint
from tests.helpers import REPO, subprocess_env
from text2sign.checkpoint import checkpoint_name, load_checkpoint, save_checkpoint

EXPERIMENT = "text2sign-ablations"
STEPS = 24  # 3 epochs of 8 steps (16 clips, batch 2); a checkpoint after each epoch
# One DataLoader worker, so a Ctrl-C that reaches the whole process group reaches a worker too.
OVERRIDES = "train.num_sample_prompts=0 train.batch_size=2 data.num_workers=1"
# The metrics a replay reproduces exactly; speed and memory are measured again and differ.
DETERMINISTIC = ("train/loss", "train/lr", "train/grad_norm", "val/loss")


def train_command(store: Path) -> list[str]:
    return [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--epochs", "3", "--evaluate", "false",
            "--register", "false", "--overrides", f"{OVERRIDES} train.output_dir={store / 'outputs'}"]


def new_store(store: Path) -> MlflowClient:
    """The store and its experiment, created before the training process starts, which this test then polls."""
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    client.create_experiment(EXPERIMENT, artifact_location=str(store / "artifacts"))
    return client


def start_training(store: Path) -> subprocess.Popen:
    with (store / "train.log").open("w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(train_command(store), cwd=store, env=subprocess_env(store), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # its own group, as a shell job


def wait_for_step(client: MlflowClient, process: subprocess.Popen, store: Path, step: int) -> str:
    """The run id, once the store holds train/loss at `step` or later."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
        if runs and any(m.step >= step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")):
            return runs[0].info.run_id
        if process.poll() is not None:
            pytest.fail(f"training ended (exit {process.returncode}) before step {step}:\n{log_tail(store)}")
        time.sleep(0.1)
    pytest.fail(f"training did not reach step {step} in 300 s:\n{log_tail(store)}")


def log_tail(store: Path) -> str:
    return (store / "train.log").read_text()[-3000:]


def history(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
            for key in client.get_run(run_id).data.metrics}


def last_checkpoint(store: Path, run_id: str) -> dict:
    return load_checkpoint(store / "outputs" / run_id / "checkpoints" / checkpoint_name(STEPS))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    store = tmp_path_factory.mktemp("uninterrupted")
    client = new_store(store)
    out = subprocess.run(train_command(store), cwd=store, env=subprocess_env(store), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    return history(client, run.info.run_id), last_checkpoint(store, run.info.run_id)


def assert_same_as_uninterrupted(uninterrupted, client: MlflowClient, store: Path, run_id: str) -> None:
    expected, expected_state = uninterrupted
    got = history(client, run_id)
    assert sorted(got) == sorted(expected)
    for key, rows in got.items():  # every step exactly once, none missing
        assert [step for step, _ in rows] == [step for step, _ in expected[key]], key
    for key in DETERMINISTIC:
        assert got[key] == expected[key], key
    state = last_checkpoint(store, run_id)
    for part in ("model", "ema"):
        for key, value in expected_state[part].items():
            assert torch.equal(value, state[part][key]), (part, key)
    assert client.get_run(run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_resume_by_run_id_matches_the_uninterrupted_run(tmp_path, uninterrupted):
    kill_at = random.Random(2026).randint(9, 14)  # after the first checkpoint (step 8), well before the end
    client = new_store(tmp_path)
    process = start_training(tmp_path)
    run_id = wait_for_step(client, process, tmp_path, kill_at)
    process.kill()
    assert process.wait(timeout=60) == -signal.SIGKILL
    logged = max(step for step, _ in history(client, run_id)["train/loss"])
    assert kill_at <= logged < STEPS and client.get_run(run_id).info.status == "RUNNING"

    resumed = subprocess.run([*train_command(tmp_path), "--resume", run_id], cwd=tmp_path, env=subprocess_env(tmp_path),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_as_uninterrupted(uninterrupted, client, tmp_path, run_id)


@pytest.mark.slow
def test_ctrl_c_checkpoints_after_the_step_and_the_resume_with_command_continues_to_the_same_weights(
        tmp_path, uninterrupted):
    client = new_store(tmp_path)
    process = start_training(tmp_path)
    run_id = wait_for_step(client, process, tmp_path, 10)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group, workers included
    assert process.wait(timeout=300) == 130, log_tail(tmp_path)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    stopped_at = max(step for step, _ in history(client, run_id)["train/loss"])
    assert f"checkpoints/{checkpoint_name(stopped_at)}" in [a.path for a in client.list_artifacts(run_id, "checkpoints")]
    command = run.data.tags["resume_with"]
    assert command.startswith(f"mlflow run . -e train -P resume={run_id} -P scale=tiny -P epochs=3 ")
    assert "stopped by SIGINT" in log_tail(tmp_path) and "Traceback" not in log_tail(tmp_path)

    resumed = subprocess.run(shlex.split(command), cwd=REPO, env=subprocess_env(tmp_path), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_as_uninterrupted(uninterrupted, client, tmp_path, run_id)
    assert "resume_with" not in client.get_run(run_id).data.tags


@pytest.mark.slow
def test_sigterm_ends_the_run_killed_with_a_checkpoint_at_the_stop_step(tmp_path):
    client = new_store(tmp_path)
    process = start_training(tmp_path)
    run_id = wait_for_step(client, process, tmp_path, 3)
    process.terminate()  # a scheduler's stop: SIGTERM to the training process only
    assert process.wait(timeout=300) == 143, log_tail(tmp_path)
    run = client.get_run(run_id)
    stopped_at = max(step for step, _ in history(client, run_id)["train/loss"])
    assert run.info.status == "KILLED" and stopped_at < STEPS and run.data.tags["resume_with"]
    state = load_checkpoint(tmp_path / "outputs" / run_id / "checkpoints" / checkpoint_name(stopped_at))
    assert state["step"] == stopped_at
    assert not any(key.startswith("summary/") for key in run.data.metrics)  # the run is not over


def test_resume_by_run_id_skips_a_checkpoint_copy_cut_short_by_a_crash(tmp_path, capsys):
    client = new_store(tmp_path)
    run_id = client.create_run(client.get_experiment_by_name(EXPERIMENT).experiment_id).info.run_id
    good = save_checkpoint({"step": 8}, tmp_path / "local" / checkpoint_name(8))
    client.log_artifact(run_id, str(good), "checkpoints")
    torn = tmp_path / "torn" / checkpoint_name(16)
    torn.parent.mkdir()
    torn.write_bytes(save_checkpoint({"step": 16}, tmp_path / "whole" / checkpoint_name(16)).read_bytes()[:100])
    client.log_artifact(run_id, str(torn), "checkpoints")
    found = latest_run_checkpoint(client, run_id, tmp_path / "download")
    assert found.name == checkpoint_name(8) and load_checkpoint(found)["step"] == 8
    assert f"skipping checkpoints/{checkpoint_name(16)}" in capsys.readouterr().err
