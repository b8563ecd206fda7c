"""Reading a finished training run back from the tracking server: its config and its checkpoints."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from text2sign.checkpoint import CHECKPOINT_PATTERN, CheckpointError, load_checkpoint
from text2sign.config import Config, ConfigError, from_dict

from mlproject.cli import check_run_id
from mlproject.tracking.server_errors import is_access_problem


def get_run(client: MlflowClient, run_id: str):
    check_run_id(run_id)
    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if is_access_problem(error):
            raise
        raise ConfigError(
            f"run_id: no run {run_id} on the tracking server {client._tracking_client.tracking_uri}. "
            "Check the id in the MLflow UI, or point MLFLOW_TRACKING_URI at the server that holds it."
        ) from None


def run_id_from_model_uri(client: MlflowClient, model_uri: str) -> str:
    """The training run behind runs:/<id>/..., models:/<name>/<version> or models:/<name>@<alias>."""
    if model_uri.startswith("runs:/"):
        return model_uri.removeprefix("runs:/").split("/")[0]
    match = re.match(r"^models:/([^/@]+)(?:/(\d+)|@(.+))$", model_uri)
    if not match:
        raise ConfigError(f"model_uri: {model_uri!r} is not of the form runs:/<run_id>, models:/<name>/<version> or models:/<name>@<alias>.")
    name, version, alias = match.groups()
    try:
        found = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if is_access_problem(error):
            raise
        raise ConfigError(f"model_uri: {model_uri} is not in the model registry ({error.message}).") from None
    return found.run_id


def run_config(client: MlflowClient, run_id: str, folder: Path) -> Config:
    try:
        path = client.download_artifacts(run_id, "config.json", str(folder))
    except (MlflowException, OSError) as error:
        if is_access_problem(error):
            raise
        raise ConfigError(f"run {run_id} has no config.json artifact: it is not a text2sign training run.") from None
    return from_dict(json.loads(Path(path).read_text()), source=f"run {run_id}'s config.json")


def latest_run_checkpoint(client: MlflowClient, run_id: str, folder: Path) -> Path:
    """The run's newest checkpoint artifact that loads, downloaded into `folder`.

    Training writes a checkpoint atomically on its own disk, but copying it into the artifact store is
    not atomic (a local store copies the file in place): a run killed during the copy leaves a truncated
    file under the final name. Such a file fails to load, so it is skipped, with a note, for the one before.
    """
    names = sorted(Path(a.path).name for a in client.list_artifacts(run_id, "checkpoints")
                   if CHECKPOINT_PATTERN.match(Path(a.path).name))
    if not names:
        raise ConfigError(f"run {run_id} has no checkpoints/ artifact to evaluate or resume; train it first "
                          "(it may have failed before its first checkpoint).")
    for name in reversed(names):
        path = Path(client.download_artifacts(run_id, f"checkpoints/{name}", str(folder)))
        try:
            load_checkpoint(path)
        except CheckpointError as error:
            print(f"note: skipping checkpoints/{name} of run {run_id}: {error} A copy cut short by a crash "
                  "leaves such a file; the checkpoint before it is used.", file=sys.stderr)
            continue
        return path
    raise ConfigError(f"run {run_id}: none of its {len(names)} checkpoints loads (see the notes above); "
                      "start a new run.")
