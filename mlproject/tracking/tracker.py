"""The MLflow side of the tracking contract (docs/tracking.md): what text2sign reports, logged to a run.

A tracking server that goes away for a while must not kill a training run with hours left. Every call
is queued and delivered in order; when the store is unavailable (connection refused, timeout, a 5xx
answer, SQLite's "database is locked") the rest of the queue waits, training goes on, and delivery is
retried on later calls at a growing interval. When it gets through, the gap is reported: metric
`tracking/outage_s` and tag `tracking/outages`. What is still undelivered when the run ends is written
to a file that `python -m mlproject.tracking.undelivered` uploads later.

Delivering in order is what makes resuming safe after a crash: a checkpoint in the store means that
every metric logged before it is there too.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

# MLflow accepts at most this many params / metrics / tags per batch call.
_PARAM_BATCH = 100
_METRIC_BATCH = 1000
_TAG_BATCH = 100
_TAG_VALUE_LIMIT = 5000  # MLflow's limit is 8000 characters; leave room
_FINAL_RETRY_S = 5.0

# MLflow's HTTP client retries a failed request 7 times with exponential back-off (about 4 minutes) and
# waits up to 120 s for each answer, so an unreachable server would freeze training for minutes at every
# log call. The tracker keeps what it could not deliver and retries on its own schedule, so one request
# may give up quickly: a refused connection costs about 3 s, a hung server at most ~1 minute. A value the
# user set in the environment wins.
FAIL_FAST_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def fail_fast_http() -> None:
    for name, value in FAIL_FAST_HTTP.items():
        os.environ.setdefault(name, value)


def is_unavailable(error: BaseException) -> bool:
    """The store is down, overloaded or locked (worth retrying), as opposed to refusing what we sent."""
    if isinstance(error, MlflowException):
        status = error.get_http_status_code()
        return status >= 500 or status == 429
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code >= 500 or error.response.status_code == 429
    return isinstance(error, (requests.RequestException, ConnectionError, TimeoutError))


@dataclass
class Outage:
    started: float  # wall clock, so a later process delivering the leftovers can still say how long
    first_step: int
    error: str
    late_values: int = 0


class MLflowTracker:
    """Implements text2sign.training.reporting.Tracker against one MLflow run, and keeps a local copy of every metric.

    `hold_when_unavailable=True` (training) holds what an unavailable store could not take and retries it;
    the caller must then `finish` the run, which delivers or saves the rest. Otherwise (short entry points)
    an unavailable store raises at once, as a plain MLflow call would.

    `resumed=True` for a process that continues a run: the steps it replays between the run's last
    checkpoint and the crash are already in the store, and MLflow cannot delete metric values, so a
    (key, step) the run already has is not logged again. An exact resume replays the same values.
    """

    def __init__(self, run_id: str, client: MlflowClient | None = None, hold_when_unavailable: bool = False,
                 resumed: bool = False, retry_after_s: float = 2.0, max_retry_after_s: float = 60.0):
        self.run_id = run_id
        self.client = client or MlflowClient()
        self.hold_when_unavailable = hold_when_unavailable
        self.history: list[tuple[int, str, float]] = []
        self.pending: deque[tuple[str, Any]] = deque()
        self.step = 0
        self.outage: Outage | None = None
        self.outage_reports: list[str] = []
        self._first_retry_s, self._max_retry_s = retry_after_s, max_retry_after_s
        self._retry_s, self._next_attempt = retry_after_s, 0.0
        self._logged_before: set[tuple[str, int]] = set()  # by the processes this one resumes
        if resumed:
            self._read_logged_steps()

    def _read_logged_steps(self) -> None:
        for key in self.client.get_run(self.run_id).data.metrics:
            for metric in self.client.get_metric_history(self.run_id, key):
                self._logged_before.add((key, metric.step))
                self.history.append((metric.step, key, metric.value))
        self.history.sort(key=lambda row: row[0])

    # --- the Tracker protocol ---------------------------------------------------------------------

    def log_params(self, params: dict[str, Any]) -> None:
        self._submit("params", {k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.step = step
        fresh = {k: float(v) for k, v in metrics.items() if (k, step) not in self._logged_before}
        self.history.extend((step, k, v) for k, v in fresh.items())
        timestamp = int(mlflow.utils.time.get_current_time_millis())
        rows = [[k, v, timestamp, step] for k, v in fresh.items()]
        for i in range(0, len(rows), _METRIC_BATCH):
            self._submit("metrics", rows[i : i + _METRIC_BATCH])

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        # The file stays where it is until delivered: checkpoints and samples are never deleted by training.
        self._submit("artifact", [str(Path(local_path).resolve()), artifact_path])

    def set_tags(self, tags: dict[str, str]) -> None:
        self._submit("tags", {k: str(v) for k, v in tags.items()})

    def log_image(self, local_path: str | Path, key: str, step: int) -> None:
        # The image view of the run page slides through these by step; the file is kept as with artifacts.
        self._submit("image", [str(Path(local_path).resolve()), key, step])

    def log_dataset(self, split: str, corpus: str, digest: str, size: int) -> None:
        self._submit("dataset", {"split": split, "corpus": corpus, "digest": digest, "size": size})

    # --- the end of the run -----------------------------------------------------------------------

    def finish(self, wait_s: float, undelivered_path: Path, status: str | None = None) -> bool:
        """Deliver what is pending, then the run's final `status` if given, retrying for at most `wait_s` s.

        True when all of it got through. Otherwise it is written to `undelivered_path`, the message says
        how to upload it later, and False is returned.
        """
        if status is not None:
            self.pending.append(("status", status))
        deadline = time.monotonic() + wait_s
        self._deliver_pending(force=True)
        if self.pending:
            print(f"waiting up to {wait_s:.0f} s for the tracking server to take {self._describe_pending()}",
                  file=sys.stderr, flush=True)
        while self.pending and time.monotonic() < deadline:
            # No training left to hold up: try often, so a server that comes back is used at once.
            time.sleep(max(0.0, min(_FINAL_RETRY_S, deadline - time.monotonic())))
            self._deliver_pending(force=True)
        if not self.pending:
            return True
        self.save_undelivered(undelivered_path)
        print(f"error: the tracking server {self.client._tracking_client.tracking_uri} stayed unreachable; "
              f"{self._describe_pending()} could not be delivered to run {self.run_id}. They are saved in "
              f"{undelivered_path}; when the server is back, upload them with:\n"
              f"  python -m mlproject.tracking.undelivered {undelivered_path}", file=sys.stderr, flush=True)
        return False

    def save_undelivered(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "run_id": self.run_id,
            "tracking_uri": self.client._tracking_client.tracking_uri,
            "step": self.step,
            "outage": asdict(self.outage) if self.outage else None,
            "outage_reports": self.outage_reports,
            "pending": list(self.pending),
        }, indent=1))

    @classmethod
    def from_undelivered(cls, path: Path, client: MlflowClient | None = None) -> MLflowTracker:
        """A tracker holding what an earlier process could not deliver, ready for `finish`."""
        saved = json.loads(path.read_text())
        tracker = cls(saved["run_id"], client or MlflowClient(saved["tracking_uri"]), hold_when_unavailable=True)
        tracker.step = saved["step"]
        tracker.outage = Outage(**saved["outage"]) if saved["outage"] else None
        tracker.outage_reports = saved["outage_reports"]
        tracker.pending.extend((kind, payload) for kind, payload in saved["pending"])
        return tracker

    def write_metric_log(self, path: Path) -> Path:
        """The run's metrics as a CSV (step, metric, value): the `logs/` export of the contract."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "metric", "value"])
            writer.writerows(self.history)
        return path

    # --- delivery ---------------------------------------------------------------------------------

    def _submit(self, kind: str, payload: Any) -> None:
        self.pending.append((kind, payload))
        if self.outage is not None and kind == "metrics":
            self.outage.late_values += len(payload)
        self._deliver_pending()

    def _deliver_pending(self, force: bool = False) -> None:
        """Deliver the queue in order; on an unavailable store keep the rest and try again later."""
        if not force and time.monotonic() < self._next_attempt:
            return
        while self.pending:
            kind, payload = self.pending[0]
            try:
                self._deliver(kind, payload)
            except Exception as error:
                if not (self.hold_when_unavailable and is_unavailable(error)):
                    self.pending.popleft()  # a refused request will be refused again: report it, do not retry it
                    raise
                self._note_failure(error)
                return
            self.pending.popleft()
        self._retry_s, self._next_attempt = self._first_retry_s, 0.0
        if self.outage is not None:
            self._report_outage()

    def _deliver(self, kind: str, payload: Any) -> None:
        if kind == "metrics":
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in payload])
        elif kind == "tags":
            tags = [RunTag(k, v) for k, v in payload.items()]
            for i in range(0, len(tags), _TAG_BATCH):
                self.client.log_batch(self.run_id, tags=tags[i : i + _TAG_BATCH])
        elif kind == "params":
            existing = self.client.get_run(self.run_id).data.params
            # A resumed run logs its params again. MLflow params are immutable, so the first value stays;
            # a run resumed to a new length records the change as a tag instead.
            changed = {f"resumed_with.{k}": v for k, v in payload.items() if k in existing and existing[k] != v}
            if changed:
                self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in changed.items()])
            items = [Param(k, v) for k, v in payload.items() if k not in existing]
            for i in range(0, len(items), _PARAM_BATCH):
                self.client.log_batch(self.run_id, params=items[i : i + _PARAM_BATCH])
        elif kind == "artifact":
            local_path, artifact_path = payload
            if Path(local_path).is_dir():
                self.client.log_artifacts(self.run_id, local_path, artifact_path)
            else:
                self.client.log_artifact(self.run_id, local_path, artifact_path)
        elif kind == "image":
            from PIL import Image

            local_path, key, step = payload
            with Image.open(local_path) as image:
                self.client.log_image(self.run_id, image.convert("RGB"), key=key, step=step)
        elif kind == "dataset":
            self._log_dataset(dataset_input(**payload))
        elif kind == "status":
            self.client.set_terminated(self.run_id, payload)
        else:
            raise ValueError(f"unknown tracking record kind {kind!r}")

    def _log_dataset(self, dataset: DatasetInput) -> None:
        # MLflow's SQL store looks a dataset up, then inserts it. Runs started together in one experiment
        # race between the two, and the loser is refused by the unique key although the row it wanted now
        # exists; a second try finds that row and only links the run to it.
        try:
            self.client.log_inputs(self.run_id, datasets=[dataset])
        except MlflowException as error:
            if not _lost_dataset_race(error):
                raise
            self.client.log_inputs(self.run_id, datasets=[dataset])

    def _note_failure(self, error: BaseException) -> None:
        now = time.monotonic()
        self._next_attempt = now + self._retry_s
        self._retry_s = min(self._retry_s * 2, self._max_retry_s)
        if self.outage is None:
            message = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
            late = sum(len(payload) for kind, payload in self.pending if kind == "metrics")
            self.outage = Outage(time.time(), self.step, message, late)
            print(f"warning: the tracking server is unavailable at step {self.step} ({message}); training goes "
                  "on, and what it logs is held and delivered when the server is back.", file=sys.stderr, flush=True)

    def _report_outage(self) -> None:
        outage, self.outage = self.outage, None
        seconds = time.time() - outage.started
        report = (f"steps {outage.first_step}-{self.step}: {seconds:.1f} s unavailable, "
                  f"{outage.late_values} metric values delivered late ({outage.error})")
        self.outage_reports.append(report)
        print(f"tracking server available again: {report}", file=sys.stderr, flush=True)
        text = "; ".join(self.outage_reports)
        if len(text) > _TAG_VALUE_LIMIT:
            text = f"{len(self.outage_reports)} outages, the last: {report}"[:_TAG_VALUE_LIMIT]
        self.log_metrics({"tracking/outage_s": seconds}, self.step)
        self.set_tags({"tracking/outages": text})

    def _describe_pending(self) -> str:
        counts = {"metrics": 0, "artifact": 0}
        for kind, payload in self.pending:
            counts[kind] = counts.get(kind, 0) + (len(payload) if kind == "metrics" else 1)
        parts = [_count(counts["metrics"], "metric value"), _count(counts["artifact"], "artifact")]
        parts += [f"the {kind}" for kind in ("params", "tags") if counts.get(kind)]
        parts += [f"the final status ({payload})" for kind, payload in self.pending if kind == "status"]
        return ", ".join(parts)


def dataset_input(split: str, corpus: str, digest: str, size: int) -> DatasetInput:
    """One split as an MLflow dataset input: what the runs table's Dataset column shows and filters by.

    Named after the corpus (`synthetic`, `phoenix2014t-phoenix-2014-t`), the split as its context; the
    source is the corpus spec, the profile its number of clips. Built as the entity `mlflow.log_input`
    builds, so the tracker can queue and retry it like everything else it logs.
    """
    from text2sign.data.spec import DataSpec

    dataset = Dataset(name=DataSpec.from_text(corpus).slug, digest=digest, source_type="local",
                      source=json.dumps({"uri": corpus}), profile=json.dumps({"num_rows": size}))
    return DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, split)])


def _lost_dataset_race(error: MlflowException) -> bool:
    text = str(error).lower()
    return "datasets" in text and ("unique constraint" in text or "duplicate key" in text)


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'s' if n != 1 else ''}"
