"""The registered generator, logged as code (MLflow models-from-code): this file is the model.

`mlflow.pyfunc.load_model` runs this file instead of unpickling a class, so loading a registered model
deserializes nothing but the weights, with `weights_only`, after checking their SHA-256.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import mlflow
import pandas as pd


class TextToSignModel(mlflow.pyfunc.PythonModel):
    """Text in, signing video out, with the weights the run is evaluated with (EMA unless it had none)."""

    def load_context(self, context) -> None:
        from mlproject.registry.integrity import check_unchanged
        from text2sign.checkpoint import load_checkpoint
        from text2sign.config import from_dict
        from text2sign.diffusion import GaussianDiffusion
        from text2sign.pipeline import TextToSign

        self.config = from_dict(json.loads(Path(context.artifacts["config"]).read_text()))
        # Versions registered before the weights were cut out of the checkpoint carry the whole checkpoint.
        weights = context.artifacts.get("weights") or context.artifacts["checkpoint"]
        check_unchanged(weights, context.model_config)
        state = load_checkpoint(weights)
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


mlflow.models.set_model(TextToSignModel())
