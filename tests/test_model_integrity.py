"""A registered model is code plus weights: loading it unpickles nothing, and a weights file that was damaged
or replaced after registration is refused by name, without running anything it holds."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from mlproject.config_from_params import resolve_config
from mlproject.registry.generator_registry import REGISTERED_MODEL, register_best_checkpoint
from mlproject.registry.integrity import TamperedModelError, sha256_of
from text2sign.checkpoint import CheckpointError, save_checkpoint
from text2sign.config import to_json
from text2sign.pipeline import TextToSign


class WritesAFile:
    """Unpickling this runs open(path, "w"): the file existing afterwards proves code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def registered_once(tmp_path_factory):
    """Model `text2sign` version 1, registered from an untrained tiny checkpoint, downloaded to a folder."""
    folder = tmp_path_factory.mktemp("registry")
    config = resolve_config("baseline", "tiny")
    state = {"model": TextToSign(config).trainable_state_dict(), "ema": {}, "step": 1, "config": to_json(config)}
    checkpoint = save_checkpoint(state, folder / "step_00000001.pt")
    config_json = folder / "config.json"
    config_json.write_text(to_json(config))
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    try:
        experiment = MlflowClient().create_experiment("integrity", artifact_location=str(folder / "artifacts"))
        with mlflow.start_run(experiment_id=experiment) as run:
            register_best_checkpoint(run.info.run_id, checkpoint, config_json, "baseline")
        assert MlflowClient().get_model_version(REGISTERED_MODEL, "1").tags["ablation"] == "baseline"
        yield Path(mlflow.artifacts.download_artifacts(f"models:/{REGISTERED_MODEL}/1", dst_path=str(folder / "model")))
    finally:
        # None, not the URI read before: that read resolves the default store against this worker's folder, and
        # set back, it would outrank the MLFLOW_TRACKING_URI each later test of the worker sets for itself.
        mlflow.set_tracking_uri(None)


@pytest.fixture
def registered(registered_once, tmp_path):
    """A copy of the registered model's folder, for one test to tamper with."""
    return Path(shutil.copytree(registered_once, tmp_path / "model"))


def test_the_registered_model_is_logged_as_code_and_loads_without_unpickling(registered):
    mlmodel = yaml.safe_load((registered / "MLmodel").read_text())
    assert "model_code_path" in mlmodel["flavors"]["python_function"]
    assert not list(registered.rglob("*.pkl"))  # no pickled python_model
    out = mlflow.pyfunc.load_model(str(registered)).predict(pd.DataFrame({"text": ["hello"]}), params={"steps": 2})
    assert json.loads(out["shape"][0]) == [4, 16, 16, 3]


def test_a_replaced_weights_file_is_refused_by_its_checksum_without_running_it(registered, tmp_path):
    (weights,) = registered.rglob("step_*.pt")
    marker = tmp_path / "code_ran"
    with weights.open("wb") as handle:
        torch.save({"ema": WritesAFile(marker)}, handle, pickle_module=pickle)
    with pytest.raises(TamperedModelError, match="not the file that was registered"):
        mlflow.pyfunc.load_model(str(registered))
    assert not marker.exists()


def test_a_weights_file_carrying_pickled_code_is_refused_even_with_a_matching_checksum(registered, tmp_path):
    # Whoever could rewrite the weights might rewrite the checksum beside them: weights_only still holds.
    (weights,) = registered.rglob("step_*.pt")
    marker = tmp_path / "code_ran"
    with weights.open("wb") as handle:
        torch.save({"ema": WritesAFile(marker)}, handle, pickle_module=pickle)
    mlmodel_path = registered / "MLmodel"
    mlmodel = yaml.safe_load(mlmodel_path.read_text())
    mlmodel["flavors"]["python_function"]["config"]["weights_sha256"] = sha256_of(weights)
    mlmodel_path.write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(CheckpointError, match="weights_only"):
        mlflow.pyfunc.load_model(str(registered))
    assert not marker.exists()


def test_a_version_logged_before_the_registry_package_still_loads(registered):
    """A version's code is stored with it: versions logged before `mlproject/registry/` existed import the
    checksum from `mlproject.integrity`, which must keep answering."""
    (code,) = registered.rglob("generator_model.py")
    stored = code.read_text()
    assert "from mlproject.registry.integrity import check_unchanged" in stored
    code.write_text(stored.replace("from mlproject.registry.integrity import", "from mlproject.integrity import"))
    out = mlflow.pyfunc.load_model(str(registered)).predict(pd.DataFrame({"text": ["hello"]}), params={"steps": 2})
    assert json.loads(out["shape"][0]) == [4, 16, 16, 3]


def test_the_names_that_earlier_recognizer_versions_import_still_resolve():
    """The stored code of recognizers logged before `evaluation/judge/` imports `evaluation.recognizer`."""
    from evaluation.judge.recognizer import SignRecognizer
    from evaluation.recognizer import SignRecognizer as earlier
    from mlproject.integrity import check_unchanged as earlier_check
    from mlproject.registry.integrity import check_unchanged

    assert earlier is SignRecognizer and earlier_check is check_unchanged
