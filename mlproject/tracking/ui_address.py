"""Addresses of the MLflow UI that open on the training view.

MLflow 3.17 opens an experiment on its GenAI view (traces, prompts) unless the address says otherwise; an
ablation study is model training, so every address the tool prints or writes carries
`workflowType=machine_learning`, which the UI's router reads from the query of its `#/` route.
"""

from __future__ import annotations

import json
import urllib.parse

# Where `mlflow ui` (and `mlflow server`) listen unless told otherwise.
LOCAL_UI = "http://127.0.0.1:5000"
TRAINING_VIEW = {"workflowType": "machine_learning"}


def ui_base(tracking_uri: str) -> str:
    """The UI of a tracking server is the server itself; a SQLite file or a folder is shown by `mlflow ui`."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return LOCAL_UI


def experiment_address(tracking_uri: str, experiment_id: str) -> str:
    return f"{ui_base(tracking_uri)}/#/experiments/{experiment_id}?{urllib.parse.urlencode(TRAINING_VIEW)}"


def run_address(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    return (f"{ui_base(tracking_uri)}/#/experiments/{experiment_id}/runs/{run_id}?"
            f"{urllib.parse.urlencode(TRAINING_VIEW)}")


def compare_address(tracking_uri: str, experiment_id: str, run_ids: list[str]) -> str:
    """The UI's side-by-side comparison of `run_ids` (params, metrics, charts)."""
    query = {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id]), **TRAINING_VIEW}
    return f"{ui_base(tracking_uri)}/#/compare-runs?{urllib.parse.urlencode(query)}"


def how_to_open(tracking_uri: str) -> str:
    """What to start before an address of a local store opens: nothing for a server."""
    if tracking_uri.startswith(("http://", "https://")):
        return ""
    return f"start the UI with `mlflow ui --backend-store-uri {tracking_uri}`, then open "
