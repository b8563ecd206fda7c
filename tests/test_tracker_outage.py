"""A tracking store that is unavailable for a while costs no metric: the tracker holds what it could not
deliver, delivers it in order when the store is back, and reports the gap; what never got through is saved
to a file that `mlproject.tracking.undelivered` uploads. A resumed run never logs a step twice."""

from __future__ import annotations

import json
import sqlite3

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient

from mlproject.tracking import undelivered
from mlproject.tracking.tracker import MLflowTracker, is_unavailable


class FlakyClient:
    """A real MlflowClient whose next `failures` writes fail as they do when the server is unreachable."""

    def __init__(self, client: MlflowClient, failures: int = 0):
        self._client = client
        self.failures = failures
        self.attempts = 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _write(self, name, *args, **kwargs):
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise MlflowException("API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/log-batch failed with "
                                  "exception HTTPConnectionPool: Max retries exceeded (Connection refused)")
        return getattr(self._client, name)(*args, **kwargs)

    def log_batch(self, *args, **kwargs):
        return self._write("log_batch", *args, **kwargs)

    def log_artifact(self, *args, **kwargs):
        return self._write("log_artifact", *args, **kwargs)

    def set_terminated(self, *args, **kwargs):
        return self._write("set_terminated", *args, **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("outage", artifact_location=str(folder / "artifacts"))
    return folder, client, experiment


def steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def test_an_outage_holds_metrics_and_delivers_them_in_order_then_reports_the_gap(store, capsys):
    _, client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    flaky = FlakyClient(client, failures=3)
    tracker = MLflowTracker(run_id, flaky, hold_when_unavailable=True, retry_after_s=0)
    for step in range(1, 7):
        tracker.log_metrics({"train/loss": 1.0 / step, "train/lr": 0.1}, step)
    assert steps(client, run_id, "train/loss") == steps(client, run_id, "train/lr") == [1, 2, 3, 4, 5, 6]
    assert [m.value for m in client.get_metric_history(run_id, "train/loss")] == [1.0 / s for s in range(1, 7)]
    tags = client.get_run(run_id).data.tags
    assert tags["tracking/outages"].startswith("steps 1-4: ")
    assert "8 metric values delivered late (API request to" in tags["tracking/outages"]
    assert steps(client, run_id, "tracking/outage_s") == [4]
    err = capsys.readouterr().err
    assert "tracking server is unavailable at step 1" in err and "available again: steps 1-4" in err


def test_during_an_outage_retries_wait_for_their_interval(store):
    _, client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    flaky = FlakyClient(client, failures=1)
    tracker = MLflowTracker(run_id, flaky, hold_when_unavailable=True, retry_after_s=3600)
    for step in range(1, 11):
        tracker.log_metrics({"train/loss": 0.5}, step)
    assert flaky.attempts == 1 and steps(client, run_id, "train/loss") == []  # training was not held up
    assert tracker.finish(wait_s=0, undelivered_path=store[0] / "unused.json", status="FINISHED")
    assert steps(client, run_id, "train/loss") == list(range(1, 11))
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_request_the_store_refuses_is_raised_not_retried(store):
    _, client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    tracker = MLflowTracker(run_id, client, hold_when_unavailable=True)
    with pytest.raises(MlflowException) as caught:
        tracker.set_tags({"": "a tag needs a name"})
    assert not is_unavailable(caught.value) and not tracker.pending
    tracker.log_metrics({"train/loss": 0.5}, 1)  # later calls are not held up by the refused one
    assert steps(client, run_id, "train/loss") == [1]


def test_a_store_down_at_the_end_leaves_a_file_that_undelivered_uploads(store, capsys, monkeypatch):
    folder, client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    checkpoint = folder / "step_00000002.pt"
    checkpoint.write_bytes(b"weights")
    flaky = FlakyClient(client, failures=10**6)
    tracker = MLflowTracker(run_id, flaky, hold_when_unavailable=True, retry_after_s=0.05)
    tracker.log_metrics({"train/loss": 0.9}, 1)
    tracker.log_metrics({"train/loss": 0.8}, 2)
    tracker.log_artifact(checkpoint, "checkpoints")
    tracker.set_tags({"eval/status": "skipped"})
    saved = folder / "run" / "undelivered_tracking.json"
    assert not tracker.finish(wait_s=0.3, undelivered_path=saved, status="FINISHED")
    err = capsys.readouterr().err
    assert "2 metric values, 1 artifact, the tags, the final status (FINISHED) could not be delivered" in err
    assert f"python -m mlproject.tracking.undelivered {saved}" in err
    assert json.loads(saved.read_text())["run_id"] == run_id
    assert client.get_run(run_id).info.status == "RUNNING"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    assert undelivered.main([str(saved)]) == 0
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["eval/status"] == "skipped"
    assert steps(client, run_id, "train/loss") == [1, 2]
    assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == ["checkpoints/step_00000002.pt"]
    assert run.data.tags["tracking/outages"].startswith("steps 1-2: ")
    assert not saved.exists() and saved.with_suffix(".delivered.json").exists()


def test_a_resumed_run_logs_each_step_once_and_exports_the_whole_history(store, tmp_path):
    _, client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    first = MLflowTracker(run_id, client)
    for step in range(1, 6):  # the crashed process got to step 5; its last checkpoint was at step 3
        first.log_metrics({"train/loss": step / 10}, step)
    resumed = MLflowTracker(run_id, client, resumed=True)
    for step in range(4, 9):
        resumed.log_metrics({"train/loss": step / 10, "val/loss": 1.0}, step)
    history = client.get_metric_history(run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(s, s / 10) for s in range(1, 9)]
    csv = resumed.write_metric_log(tmp_path / "metrics.csv").read_text().splitlines()
    assert csv[0] == "step,metric,value" and len([line for line in csv if ",train/loss," in line]) == 8


@pytest.mark.slow
def test_a_sqlite_store_locked_past_its_busy_timeout_is_held_and_retried_not_fatal(store):
    folder, client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    tracker = MLflowTracker(run_id, client, hold_when_unavailable=True, retry_after_s=0)
    other_writer = sqlite3.connect(folder / "mlflow.db")
    other_writer.execute("BEGIN EXCLUSIVE")  # as a busy parallel run would, for longer than MLflow waits (20 s)
    try:
        tracker.log_metrics({"train/loss": 0.5}, 1)
        assert tracker.outage is not None and "database is locked" in tracker.outage.error
    finally:
        other_writer.rollback()
        other_writer.close()
    tracker.log_metrics({"train/loss": 0.4}, 2)
    assert steps(client, run_id, "train/loss") == [1, 2] and tracker.outage is None


def test_without_holding_an_unavailable_store_raises_at_once(store):
    _, client, experiment = store
    run_id = client.create_run(experiment).info.run_id
    tracker = MLflowTracker(run_id, FlakyClient(client, failures=1))  # what evaluation uses: a short run
    with pytest.raises(MlflowException, match="Connection refused"):
        tracker.log_metrics({"eval/fsd": 1.0}, 8)
    assert not tracker.pending


@pytest.mark.parametrize(("error", "retry"), [
    (MlflowException("connection refused"), True),  # what MLflow's HTTP client raises once its retries are spent
    (MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE), True),
    (requests.ConnectionError("refused"), True),
    (MlflowException("bad key", error_code=INVALID_PARAMETER_VALUE), False),
    (ValueError("a bug"), False),
])
def test_only_an_unavailable_store_is_retried(error, retry):
    assert is_unavailable(error) is retry


class RacedClient:
    """A real MlflowClient whose first `log_inputs` loses the race that parallel runs in one experiment run:
    a sibling run inserts the same dataset between this run's lookup and its insert."""

    def __init__(self, client: MlflowClient, sibling_run_id: str, error: str):
        self._client, self.sibling_run_id, self.error, self.attempts = client, sibling_run_id, error, 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def log_inputs(self, run_id, datasets):
        self.attempts += 1
        if self.attempts == 1:
            self._client.log_inputs(self.sibling_run_id, datasets=datasets)
            raise MlflowException(self.error, error_code=INVALID_PARAMETER_VALUE)
        return self._client.log_inputs(run_id, datasets=datasets)


RACE_ERRORS = [
    "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest",
    '(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "dataset_pk" '
    "DETAIL: Key (experiment_id, name, digest) already exists. [SQL: INSERT INTO datasets ...]",
]


@pytest.mark.parametrize("error", RACE_ERRORS, ids=["sqlite", "postgresql"])
def test_a_run_that_loses_the_dataset_insert_race_to_a_sibling_still_records_its_dataset(store, error):
    _, client, experiment = store
    run_id, sibling = (client.create_run(experiment).info.run_id for _ in range(2))
    raced = RacedClient(client, sibling, error)
    tracker = MLflowTracker(run_id, raced, hold_when_unavailable=True, retry_after_s=0)
    digest = f"race{error[:3]}"
    tracker.log_dataset("train", "synthetic", digest, 16)
    assert raced.attempts == 2 and not tracker.pending and tracker.outage is None
    for run in (run_id, sibling):
        assert [d.dataset.digest for d in client.get_run(run).inputs.dataset_inputs] == [digest]


def test_any_other_refused_dataset_is_raised_not_retried(store):
    _, client, experiment = store
    run_id, sibling = (client.create_run(experiment).info.run_id for _ in range(2))
    raced = RacedClient(client, sibling, "INVALID_PARAMETER_VALUE: dataset name too long")
    tracker = MLflowTracker(run_id, raced, hold_when_unavailable=True, retry_after_s=0)
    with pytest.raises(MlflowException, match="too long"):
        tracker.log_dataset("train", "synthetic", "other", 16)
    assert raced.attempts == 1
