"""The exported folder: mlflow-export-import's layout (its `export-all`, export file version 2), plus a manifest.

    manifest.json                                    what was exported, of which study, and the sizes (ours)
    experiments/experiments.json                     the experiments, with their runs
    experiments/<experiment id>/experiment.json      one experiment: name, tags, the ids of its exported runs
    experiments/<experiment id>/runs/<run id>/       run.json (info, params, every metric's history, tags,
                                                     dataset inputs) and artifacts/
    experiments/<experiment id>/logged_models/<id>/  logged_model.json and artifacts/: a registered model's files
    models/models.json                               the registered models
    models/<name>/model.json                         a registered model and its exported versions

Each JSON file has the tool's three parts: `system` (who exported it, when, from which MLflow), `info` (counts),
and `mlflow` (the objects as MLflow's REST API gives them), so the tool's `import-experiment` reads our folders.
Of a metric point we keep what the tool's importer reads (`value`, `timestamp`, `step`): the fields it leaves
null for runs like ours would double the file. Ids in the folder are those of the store it was exported from.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import mlflow

EXPORT_FILE_VERSION = "2"
# The tag mlflow-export-import writes on an imported run (with --import-source-tags) for the id it had where it
# was exported; ours writes the same, so each tool recognizes what the other imported.
SOURCE_RUN_ID_TAG = "mlflow_exim.run_info.run_id"
# On an imported registered model version: the version it had in the store it came from, and that run's id.
SOURCE_VERSION_TAG = "mlflow_exim.field.version"
SOURCE_VERSION_RUN_TAG = "mlflow_exim.field.run_id"
# On an imported registered version: the id of the logged model that holds its files in the record.
SOURCE_MODEL_TAG = "mlflow_exim.field.model_id"
MANIFEST = "manifest.json"


def experiment_folder(root: Path, experiment_id: str) -> Path:
    return root / "experiments" / experiment_id


def run_folder(root: Path, experiment_id: str, run_id: str) -> Path:
    return experiment_folder(root, experiment_id) / "runs" / run_id


def logged_model_folder(root: Path, experiment_id: str, model_id: str) -> Path:
    return experiment_folder(root, experiment_id) / "logged_models" / model_id


def registered_model_file(root: Path, name: str) -> Path:
    return root / "models" / name / "model.json"


def write_part(path: Path, script: str, mlflow_part: dict[str, Any], info: dict[str, Any] | None = None) -> None:
    """One export file: the tool's `system`, `info` and `mlflow` parts, written whole or not at all."""
    now = time.time()
    document = {
        "system": {"package_version": "text2sign", "script": script, "export_file_version": EXPORT_FILE_VERSION,
                   "export_time": int(now), "_export_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)),
                   "mlflow_version": mlflow.__version__, "mlflow_tracking_uri": _without_secrets(mlflow.get_tracking_uri()),
                   "platform": {"python_version": platform.python_version(), "system": platform.system()},
                   "user": _user()},
        "info": info or {},
        "mlflow": mlflow_part,
    }
    write_json(path, document)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(partial, path)


def read_part(path: Path) -> dict[str, Any]:
    """The `mlflow` part of an export file, or a ConfigError-friendly ValueError naming the file."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable export file ({error})") from None
    if not isinstance(document, dict) or "mlflow" not in document:
        raise ValueError(f"{path}: no `mlflow` part; not a file of mlflow-export-import's layout")
    return document["mlflow"]


def replace_folder(staged: Path, final: Path) -> None:
    """Put a fully written folder where an older copy may be, so a reader never sees half of one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    if old.exists():
        shutil.rmtree(old)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _without_secrets(uri: str) -> str:
    """A tracking URI as it may be committed: no password (a PostgreSQL URI can hold one)."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return uri


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
