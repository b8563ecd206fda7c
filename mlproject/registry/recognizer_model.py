"""The registered recognizer, logged as code (MLflow models-from-code): this file is the model.

Loading runs this file and reads the weights from safetensors, after checking their SHA-256: nothing is
unpickled.
"""

from __future__ import annotations

import mlflow


class RecognizerModel(mlflow.pyfunc.PythonModel):
    """Serves the recognizer: a DataFrame with a `video` column ([3, T, H, W] nested lists in [-1, 1]) in,
    the recognized gloss sequences out; from a pose-only judge (no glosses to read), each video's keypoints
    ([T, K, 2] nested lists, x and y in [0, 1]) instead."""

    def load_context(self, context) -> None:
        from evaluation.judge.recognizer import SignRecognizer
        from mlproject.registry.integrity import check_unchanged

        check_unchanged(context.artifacts["weights"], context.model_config)
        self.recognizer = SignRecognizer.load(context.artifacts["weights"]).eval()

    def predict(self, context, model_input, params=None):
        import torch

        videos = torch.tensor([list(v) for v in model_input["video"]], dtype=torch.float32)
        if not self.recognizer.vocabulary:
            with torch.no_grad():
                return self.recognizer(videos).keypoints.tolist()
        return [" ".join(glosses) for glosses in self.recognizer.decode(videos)]


mlflow.models.set_model(RecognizerModel())
