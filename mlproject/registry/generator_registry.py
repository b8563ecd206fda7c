"""The generator in the MLflow Model Registry: registered model `text2sign`, one version per training run.

Each train run logs its best checkpoint (lowest val/loss) as a pyfunc model and gives that version the
alias `best-<ablation>`; `analyze` moves the alias `champion` to the best by a chosen eval metric. The
model takes a DataFrame with a `text` column and returns, per text, the generated video as an animated
GIF (base64) and its frames, so it can be loaded in any process or served over REST. The model is logged as code
(`generator_model.py`), so loading it unpickles nothing:

    mlflow.pyfunc.load_model("models:/text2sign@champion").predict(pd.DataFrame({"text": ["hello"]}))
    mlflow models serve -m models:/text2sign@champion --env-manager local
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from mlproject.registry.integrity import SHA256_KEY, sha256_of

REGISTERED_MODEL = "text2sign"
# Logged as code, not as a pickled object: loading a version runs this file and unpickles nothing.
MODEL_CODE = Path(__file__).with_name("generator_model.py")

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text")]),
    outputs=Schema([ColSpec("string", "text"), ColSpec("string", "gif_base64"), ColSpec("string", "shape")]),
    params=ParamSchema([
        ParamSpec("steps", "long", 0),  # 0: the run's own sampling settings
        ParamSpec("guidance", "double", 0.0),
        ParamSpec("seed", "long", 0),
        ParamSpec("sampler", "string", ""),
    ]),
)


# What the model page shows as the request to send; a sentence in the synthetic corpus's grammar.
INPUT_EXAMPLE = pd.DataFrame({"text": ["where is my house"]})


def _first_description(client: MlflowClient, run_id: str) -> str:
    """The training run's description as it stands at registration (before evaluation, which rewrites both)."""
    from mlproject.tracking.descriptions import NOTE

    return client.get_run(run_id).data.tags.get(NOTE, f"Trained in run {run_id}.")


def register_best_checkpoint(run_id: str, checkpoint: Path, config_json: Path, ablation: str) -> int:
    """Log the inference weights of `checkpoint` into run `run_id` as a pyfunc model, register it, alias it
    `best-<ablation>`. The whole checkpoint, for resuming, stays among the run's `checkpoints/` artifacts."""
    from text2sign.checkpoint import load_checkpoint, save_checkpoint
    from text2sign.config import from_dict
    from text2sign.pipeline import TextToSign

    config = from_dict(json.loads(config_json.read_text()))
    active = mlflow.active_run()
    with tempfile.TemporaryDirectory(prefix="text2sign-register-") as scratch, \
            contextlib.nullcontext() if active and active.info.run_id == run_id else mlflow.start_run(run_id=run_id):
        weights = save_checkpoint(TextToSign.inference_checkpoint(config, load_checkpoint(checkpoint)),
                                  Path(scratch) / checkpoint.name)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(MODEL_CODE),
            artifacts={"weights": str(weights), "config": str(config_json)},
            model_config={SHA256_KEY: sha256_of(weights)}, signature=SIGNATURE, input_example=INPUT_EXAMPLE,
            registered_model_name=REGISTERED_MODEL, pip_requirements=["text2sign"],
        )
    version = int(info.registered_model_version)
    client = MlflowClient()
    client.update_model_version(REGISTERED_MODEL, str(version), description=_first_description(client, run_id))
    client.set_registered_model_alias(REGISTERED_MODEL, f"best-{ablation}", str(version))
    client.set_model_version_tag(REGISTERED_MODEL, str(version), "checkpoint", checkpoint.name)
    client.set_model_version_tag(REGISTERED_MODEL, str(version), "ablation", ablation)
    return version
