"""What the trainer reports through. `mlproject` implements it with MLflow; tests record into memory.

Keeping MLflow out of `text2sign` means the model library runs (and is tested) with no tracking
server at all, and the tracking contract lives in one place: `mlproject/tracking/tracker.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_image(self, local_path: str | Path, key: str, step: int) -> None:
        """An image that belongs to a training step (a filmstrip of samples), for a viewer that slides by step."""

    def log_dataset(self, split: str, corpus: str, digest: str, size: int) -> None:
        """What one split trained or judged the run on: the corpus spec, its fingerprint, its size."""


class NullTracker:
    """Reports nowhere: for library use without tracking."""

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_image(self, local_path: str | Path, key: str, step: int) -> None:
        pass

    def log_dataset(self, split: str, corpus: str, digest: str, size: int) -> None:
        pass


class MemoryTracker:
    """Keeps everything in lists: what tests inspect."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.metrics: list[tuple[int, str, float]] = []
        self.artifacts: list[tuple[str, str | None]] = []
        self.tags: dict[str, str] = {}
        self.images: list[tuple[str, str, int]] = []
        self.datasets: dict[str, dict[str, object]] = {}

    def log_params(self, params: dict[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.metrics.extend((step, key, float(value)) for key, value in metrics.items())

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.artifacts.append((str(local_path), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)

    def log_image(self, local_path: str | Path, key: str, step: int) -> None:
        self.images.append((str(local_path), key, step))

    def log_dataset(self, split: str, corpus: str, digest: str, size: int) -> None:
        self.datasets[split] = {"corpus": corpus, "digest": digest, "size": size}

    def history(self, key: str) -> list[tuple[int, float]]:
        return [(step, value) for step, k, value in self.metrics if k == key]
