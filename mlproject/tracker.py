"""The MLflow side of the tracking contract (../shared/DESIGN.md): what text2sign reports, logged to a run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

# MLflow accepts at most this many params / metrics per batch call.
_PARAM_BATCH = 100
_METRIC_BATCH = 1000


class MLflowTracker:
    """Implements text2sign.tracking.Tracker against one MLflow run, and keeps a local copy of every metric."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.client = MlflowClient()
        self.history: list[tuple[int, str, float]] = []

    def log_params(self, params: dict[str, Any]) -> None:
        existing = self.client.get_run(self.run_id).data.params
        # A resumed run logs its params again. MLflow params are immutable, so the first value stays;
        # a run resumed to a new length records the change as a tag instead.
        changed = {k: str(v) for k, v in params.items() if k in existing and existing[k] != str(v)}
        if changed:
            self.set_tags({f"resumed_with.{k}": v for k, v in changed.items()})
        items = [mlflow.entities.Param(k, str(v)) for k, v in params.items() if k not in existing]
        for i in range(0, len(items), _PARAM_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _PARAM_BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        timestamp = int(mlflow.utils.time.get_current_time_millis())
        items = [mlflow.entities.Metric(k, float(v), timestamp, step) for k, v in metrics.items()]
        for i in range(0, len(items), _METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=items[i : i + _METRIC_BATCH])
        self.history.extend((step, k, float(v)) for k, v in metrics.items())

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        local_path = Path(local_path)
        if local_path.is_dir():
            self.client.log_artifacts(self.run_id, str(local_path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(local_path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def write_metric_log(self, path: Path) -> Path:
        """This process's metrics as a CSV (step, metric, value): the `logs/` export of the contract."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "metric", "value"])
            writer.writerows(self.history)
        return path
