"""The generator in the MLflow Model Registry: registered model `text2sign`, one version per training run.

Each train run logs its best checkpoint (lowest val/loss) as a pyfunc model and gives that version the
alias `best-<ablation>`; `analyze` moves the alias `champion` to the best by a chosen eval metric. The
model takes a DataFrame with a `text` column and returns, per text, the generated video as an animated
GIF (base64) and its frames, so it can be loaded in any process or served over REST:

    mlflow.pyfunc.load_model("models:/text2sign@champion").predict(pd.DataFrame({"text": ["hello"]}))
    mlflow models serve -m models:/text2sign@champion --env-manager local
"""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

REGISTERED_MODEL = "text2sign"

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
    from mlproject.descriptions import NOTE

    return client.get_run(run_id).data.tags.get(NOTE, f"Trained in run {run_id}.")


class TextToSignModel(mlflow.pyfunc.PythonModel):
    """Text in, signing video out, with the weights the run is evaluated with (EMA unless it had none)."""

    def load_context(self, context) -> None:
        from text2sign.checkpoint import load_checkpoint
        from text2sign.config import from_dict
        from text2sign.diffusion import GaussianDiffusion
        from text2sign.pipeline import TextToSign

        self.config = from_dict(json.loads(Path(context.artifacts["config"]).read_text()))
        # Versions registered before the weights were cut out of the checkpoint carry the whole checkpoint.
        state = load_checkpoint(context.artifacts.get("weights") or context.artifacts["checkpoint"])
        self.model, _ = TextToSign.for_inference(self.config, state)
        self.diffusion = GaussianDiffusion(self.config.diffusion)

    def predict(self, context, model_input, params=None):
        from text2sign.pipeline import generate
        from text2sign.video import gif_bytes

        params = params or {}
        if not isinstance(model_input, pd.DataFrame) or "text" not in model_input.columns:
            raise ValueError("input must be a table with a `text` column, e.g. {\"dataframe_records\": [{\"text\": \"hello\"}]}")
        texts = [str(t) for t in model_input["text"]]
        if not texts:
            raise ValueError("input has no rows: give at least one text")
        sampler = params.get("sampler") or self.config.diffusion.sampler
        if sampler not in ("ddim", "dpmsolver++"):
            raise ValueError(f"sampler must be 'ddim' or 'dpmsolver++', got {sampler!r}")
        videos = generate(
            self.model, self.diffusion, texts,
            num_frames=self.config.data.num_frames, image_size=self.config.data.image_size,
            guidance_scale=float(params.get("guidance") or self.config.diffusion.guidance_scale),
            steps=int(params.get("steps") or self.config.diffusion.sample_steps),
            sampler=sampler, seed=int(params.get("seed") or 0),
        )
        rows = []
        for text, video in zip(texts, videos):
            shape = [video.shape[1], video.shape[2], video.shape[3], video.shape[0]]  # frames as [T, H, W, 3]
            rows.append({"text": text, "gif_base64": base64.b64encode(gif_bytes(video)).decode("ascii"),
                         "shape": json.dumps(shape)})
        return pd.DataFrame(rows)


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
            name="model", python_model=TextToSignModel(),
            artifacts={"weights": str(weights), "config": str(config_json)},
            signature=SIGNATURE, input_example=INPUT_EXAMPLE, registered_model_name=REGISTERED_MODEL,
            pip_requirements=["text2sign"],
        )
    version = int(info.registered_model_version)
    client = MlflowClient()
    client.update_model_version(REGISTERED_MODEL, str(version), description=_first_description(client, run_id))
    client.set_registered_model_alias(REGISTERED_MODEL, f"best-{ablation}", str(version))
    client.set_model_version_tag(REGISTERED_MODEL, str(version), "checkpoint", checkpoint.name)
    client.set_model_version_tag(REGISTERED_MODEL, str(version), "ablation", ablation)
    return version
