"""Shared test settings: every test runs offline, on the CPU, in its own folder; under pytest-xdist the
cores are shared out between the workers and the slowest files start first."""

from __future__ import annotations

import os
from collections import Counter

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Each xdist worker, and every training process it starts, would otherwise run torch with a thread per
# core, so two workers on two cores fight over them; set before any test module imports torch.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))


def pytest_collection_modifyitems(config, items):
    """Files with a `longest` test first, then those with the most slow tests. xdist (`--dist loadfile`) deals
    out whole files in this order, so the long end-to-end modules start at once instead of finishing the run
    alone: the documented-commands test, one file of one test, had come last and ran a third of the suite by
    itself while the other worker sat idle."""
    longest_files = {item.path for item in items if item.get_closest_marker("longest")}
    slow_tests_in_file = Counter(item.path for item in items if item.get_closest_marker("slow"))
    # stable: a file's tests keep their order
    items.sort(key=lambda item: (item.path not in longest_files, -slow_tests_in_file[item.path]))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the test from an empty folder, so MLflow's default store and outputs/ land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return tmp_path


@pytest.fixture
def tmp_store(in_tmp, monkeypatch):
    """`in_tmp` with MLflow's SQLite store there, and the fail-fast HTTP settings the entry points give their own
    process, kept to the test: the client of that store."""
    from mlflow.tracking import MlflowClient

    from mlproject.tracking.tracker import FAIL_FAST_HTTP

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{in_tmp / 'mlflow.db'}")
    for name, value in FAIL_FAST_HTTP.items():
        monkeypatch.setenv(name, value)
    return MlflowClient(f"sqlite:///{in_tmp / 'mlflow.db'}")
