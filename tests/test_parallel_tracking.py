"""Three training runs at once into one SQLite store, and into one `mlflow server`, lose no metric; a tracking
server that goes away mid-run and comes back on the same port costs no metric either, and the gap is reported."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import free_port, mlflow_server, subprocess_env

pytestmark = pytest.mark.slow

EXPERIMENT = "text2sign-ablations"


def train_command(store: Path, seed: int = 0, epochs: int = 2, overrides: str = "") -> list[str]:
    return [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--seed", str(seed), "--epochs", str(epochs),
            "--evaluate", "false", "--register", "false",
            "--overrides", f"train.num_sample_prompts=0 train.output_dir={store / 'outputs'} {overrides}".strip()]


def start(command: list[str], store: Path, env: dict[str, str], log: str) -> subprocess.Popen:
    with (store / log).open("w") as handle:
        return subprocess.Popen(command, cwd=store, env=env, stdout=handle, stderr=subprocess.STDOUT)


def run_three_at_once(store: Path, env: dict[str, str]) -> None:
    processes = [start(train_command(store, seed), store, env, f"seed{seed}.log") for seed in range(3)]
    for seed, process in enumerate(processes):
        assert process.wait(timeout=900) == 0, (store / f"seed{seed}.log").read_text()[-3000:]


def assert_every_run_finished_with_every_step_once(client: MlflowClient, runs: int, steps: int, epochs: int) -> None:
    found = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(found) == runs and all(run.info.status == "FINISHED" for run in found)
    for run in found:
        for key in run.data.metrics:
            logged = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(logged) == len(set(logged)), (run.info.run_name, key, logged)
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train/loss")) == list(range(1, steps + 1))
        assert len(client.list_artifacts(run.info.run_id, "checkpoints")) == epochs  # one per epoch


def test_three_runs_at_once_into_one_sqlite_store_lose_no_metric(tmp_path):
    # The database exists before the runs start (MLflow creating its tables from several processes at once can fail);
    # the runs race to create the experiment.
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.search_experiments()
    run_three_at_once(tmp_path, subprocess_env(tmp_path))
    assert_every_run_finished_with_every_step_once(client, runs=3, steps=8, epochs=2)


def test_three_runs_at_once_into_one_mlflow_server_lose_no_metric(tmp_path):
    env = subprocess_env(tmp_path)
    with mlflow_server(tmp_path, free_port(), env) as uri:
        env["MLFLOW_TRACKING_URI"] = uri
        run_three_at_once(tmp_path, env)
        assert_every_run_finished_with_every_step_once(MlflowClient(uri), runs=3, steps=8, epochs=2)


def wait_for_step(client: MlflowClient, process: subprocess.Popen, log: Path, step: int) -> None:
    deadline = time.monotonic() + 300
    while True:
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        if runs and any(m.step >= step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"training never reached step {step} (exit {process.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def wait_for_log(path: Path, pattern: str, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not re.search(pattern, path.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{pattern!r} never appeared (exit {process.poll()}):\n{path.read_text()[-3000:]}")
        time.sleep(0.2)


def test_a_tracking_server_that_goes_away_mid_run_costs_no_metric_and_the_gap_is_reported(tmp_path):
    port, env = free_port(), subprocess_env(tmp_path)
    env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
    steps = 64  # 8 epochs of 8 steps: long enough to still be training when the server goes
    command = train_command(tmp_path, epochs=8, overrides="train.batch_size=2")
    with mlflow_server(tmp_path, port, env) as uri:
        process = start(command, tmp_path, env, "train.log")
        wait_for_step(MlflowClient(uri), process, tmp_path / "train.log", 2)
    wait_for_log(tmp_path / "train.log", "the tracking server is unavailable at step", process)
    with mlflow_server(tmp_path, port, env):  # the same store, the same port: the server is back
        assert process.wait(timeout=600) == 0, (tmp_path / "train.log").read_text()[-3000:]
        client = MlflowClient(uri)
        assert_every_run_finished_with_every_step_once(client, runs=1, steps=steps, epochs=8)
        (run,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
        first, last = map(int, re.match(r"steps (\d+)-(\d+): ", run.data.tags["tracking/outages"]).groups())
        assert first < steps and last > first  # it began mid-run, and training went on through it
        assert last in [m.step for m in client.get_metric_history(run.info.run_id, "tracking/outage_s")]
