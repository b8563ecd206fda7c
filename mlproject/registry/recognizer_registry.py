"""The back-translation judge in the MLflow Model Registry: `text2sign-recognizer-<dataset>`.

Each version is tagged with the clip size it reads (`image_size`, `num_frames`), whether it learnt the synthetic
signer's fingers (`finger_keypoints`), what it reads (`reads`: `glosses,keypoints`, `glosses`, or `keypoints` for
the pose-only judge of a corpus without glosses), the splits it learned from (`learned_from`: `train`, or `all`
for a corpus with one recording per sign) and its own error on real test videos (`test_wer`,
`test_keypoint_mje`), so `evaluate` picks the newest judge that fits the run being judged.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from evaluation.judge.recognizer import SignRecognizer
from text2sign.config import DataConfig
from text2sign.data.spec import DataSpec

from mlproject.registry.integrity import SHA256_KEY, sha256_of

# Logged as code, not as a pickled object: loading a version runs this file and unpickles nothing.
MODEL_CODE = Path(__file__).with_name("recognizer_model.py")


def dataset_name(data: DataConfig) -> str:
    """`synthetic`, or a corpus on disk as its kind and folder name (`phoenix2014t-phoenix-2014-t`):
    a registry name holds no path characters, and stays the same when the corpus moves."""
    return DataSpec.from_text(data.name).slug


def recognizer_model_name(data: DataConfig) -> str:
    return f"text2sign-recognizer-{dataset_name(data)}"


def train_command(data: DataConfig, scale: str) -> str:
    return (f"mlflow run . -e train_recognizer -P {shlex.quote('data=' + data.name)} -P scale={scale} --env-manager local "
            f"--experiment-name text2sign-recognizers")


def register_recognizer(recognizer: SignRecognizer, data: DataConfig, metrics: dict[str, float],
                        learned_from: str = "train") -> int:
    """Log the recognizer to the active run as a pyfunc model and register it; returns the version."""
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "recognizer.safetensors"
        recognizer.save(weights)
        info = mlflow.pyfunc.log_model(
            name="recognizer", python_model=str(MODEL_CODE), artifacts={"weights": str(weights)},
            model_config={SHA256_KEY: sha256_of(weights)},
            registered_model_name=recognizer_model_name(data), pip_requirements=["text2sign"],
        )
    version = int(info.registered_model_version)
    client = MlflowClient()
    tags = {"image_size": recognizer.spec["image_size"], "num_frames": recognizer.spec["num_frames"],
            "finger_keypoints": str(data.finger_keypoints).lower(), "dataset": data.name, "reads": recognizer.reads,
            "learned_from": learned_from, **{k.split("/")[-1]: f"{v:.4f}" for k, v in metrics.items()}}
    for key, value in tags.items():
        client.set_model_version_tag(recognizer_model_name(data), str(version), key, str(value))
    return version


def fits(version, data: DataConfig) -> bool:
    """Whether a registered judge reads clips of `data`'s size. With finger keypoints the run's pose error is
    measured on the fingers too, so only a judge that learnt them fits; one registered before the tag learnt none."""
    return (version.tags.get("image_size") == str(data.image_size) and version.tags.get("num_frames") == str(data.num_frames)
            and version.tags.get("finger_keypoints", "false") == str(data.finger_keypoints).lower())


def newest_recognizer(data: DataConfig):
    """The newest registered version that fits `data`, or None."""
    name = recognizer_model_name(data)
    versions = [v for v in MlflowClient().search_model_versions(f"name='{name}'") if fits(v, data)]
    return max(versions, key=lambda v: int(v.version)) if versions else None


def pinned_recognizer(data: DataConfig, judge: str):
    """The version `judge` (`<name>/<version>`) names, checked to fit `data`; ConfigError with the fix otherwise."""
    from mlflow.exceptions import MlflowException

    from text2sign.config import ConfigError

    name, _, number = judge.partition("/")
    try:
        version = MlflowClient().get_model_version(name, number)
    except MlflowException:
        raise ConfigError(f"judge: no registered version {judge!r} here; pass <name>/<version> of a registered "
                          f"recognizer, or leave judge empty for the newest that fits.") from None
    if name != recognizer_model_name(data) or not fits(version, data):
        raise ConfigError(f"judge: {judge} does not read this run's clips ({data.name}, {data.image_size}x"
                          f"{data.image_size}, {data.num_frames} frames); leave judge empty for the newest that fits.")
    return version


def load_recognizer_for(data: DataConfig, scale: str, device: str = "cpu", judge: str = ""
                        ) -> tuple[SignRecognizer | None, str]:
    """The recognizer `judge` names, else the newest registered that reads clips of `data`'s size; or None and
    why not (with the fix)."""
    chosen = pinned_recognizer(data, judge) if judge else newest_recognizer(data)
    if chosen is None:
        with_fingers = " with finger keypoints" if data.finger_keypoints else ""
        return None, (f"no recognizer registered as {recognizer_model_name(data)} for {data.image_size}x"
                      f"{data.image_size} clips of {data.num_frames} frames{with_fingers}; train one with: "
                      f"{train_command(data, scale)}")
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{chosen.name}/{chosen.version}"))
    weights = next(local.rglob("recognizer.safetensors"))
    return SignRecognizer.load(weights).to(device).eval(), describe(chosen)


def describe(version) -> str:
    """`<name> version <n>`, and for a judge that learned every split, that its real-clip readings are of clips it
    learned: a reader of `eval/backtranslation_wer_real` must know it is no held-out figure."""
    learned_all = version.tags.get("learned_from") == "all"
    return f"{version.name} version {version.version}" + (
        " (learned every split: its readings of the real clips are of clips it learned)" if learned_all else "")
