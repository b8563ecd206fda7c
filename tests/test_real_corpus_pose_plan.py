"""The pose plan on real corpora: How2Sign with its OpenPose JSON, a folder with `.pose` files, PHOENIX-2014T after
the MediaPipe extraction. Each trains a tiny model with the plan on and is judged in pose space."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mlproject.config_from_params import resolve_config
from tests.corpus_builders import make_folder, make_phoenix, write_png_folder
from tests.how2sign_fixtures import make_how2sign_keypoints
from text2sign import skeleton
from text2sign.data.render import DEFAULT_APPEARANCE, render
from text2sign.training.reporting import MemoryTracker
from text2sign.training.trainer import train

pytestmark = pytest.mark.slow
SIZES = {"train": 4, "val": 2, "test": 2}
POSE_FIGURES = ("eval/pose_plan_dtw_mje", "eval/pose_plan_steer_gap", "eval/pose_plan_steer_gap_ci95",
                "eval/pose_plan_steer_gap_real", "eval/pose_dtw_mje", "eval/pose_video_steer_gap",
                "eval/pose_video_steer_gap_ci95", "eval/pose_dtw_mje_real", "eval/pose_video_steer_gap_real")


def train_and_judge(spec: str, tmp_path: Path) -> tuple[MemoryTracker, dict[str, float], dict[str, str]]:
    """A tiny run with the plan on (by default: the corpus has keypoints), then its evaluation with a judge
    trained on the same corpus."""
    from evaluation.evaluate_model import EvalSettings, Judges, evaluate_model
    from evaluation.judge.training import train_recognizer
    from text2sign.checkpoint import load_checkpoint
    from text2sign.diffusion import GaussianDiffusion
    from text2sign.pipeline import TextToSign

    config = resolve_config("baseline", "tiny", data=spec,
                            overrides=f"train.epochs=1 data.cache_dir={tmp_path / 'clips'} model.pose_plan_steps=5")
    assert config.model.pose_plan  # decided by the corpus on disk
    tracker = MemoryTracker()
    result = train(config, tmp_path / "run", tracker, progress=False)
    model, _ = TextToSign.for_inference(config, load_checkpoint(result.last_checkpoint))
    judge, _ = train_recognizer(config.data, epochs=1, batch_size=2, lr=1e-3, seed=0, width=16, progress=False)
    evaluation = evaluate_model(model, GaussianDiffusion(config.diffusion), config,
                                EvalSettings(num_videos=2, steps=2, batch_size=2, steering=False, guidance_sweep=()),
                                Judges(recognizer=judge), torch.device("cpu"), progress=False)
    return tracker, evaluation.metrics, evaluation.tags


def assert_the_plan_trained_and_was_judged(tracker: MemoryTracker, metrics: dict[str, float], tags: dict[str, str]):
    assert tracker.history("val/pose_plan_error_px") and tracker.history("pose_plan/first_loss")
    assert all(value > 0 for _, value in tracker.history("train/pose_loss"))
    for key in POSE_FIGURES:
        assert math.isfinite(metrics[key]), key
    assert tags["eval/pose_status"] == "computed: plan, video"


def test_how2sign_with_its_openpose_json_trains_the_pose_plan_and_is_judged_in_pose_space(tmp_path):
    corpus = make_how2sign_keypoints(tmp_path / "how2sign", sizes=SIZES)
    tracker, metrics, tags = train_and_judge(f"how2sign:{corpus}", tmp_path)
    assert_the_plan_trained_and_was_judged(tracker, metrics, tags)
    assert "eval/backtranslation_wer" not in metrics  # How2Sign has no glosses: judged in pose space only


def test_a_folder_with_pose_files_trains_the_pose_plan_and_is_judged_in_pose_space(tmp_path):
    from text2sign.data.pose_file import write_pose

    corpus = make_folder(tmp_path / "clips", sizes=SIZES, frames=5)
    glosses = (("MOTHER",), ("HELLO", "GO"), ("COFFEE",), ("DOG",))
    for i, clip in enumerate(sorted(p for p in corpus.rglob("*.mp4"))):
        _, points = render(glosses[i % len(glosses)], DEFAULT_APPEARANCE, 32, 5)
        write_pose(skeleton.from_synthetic(points), clip.with_suffix(".pose"), fps=25.0, size=32)
    tracker, metrics, tags = train_and_judge(f"folder:{corpus}", tmp_path)
    assert_the_plan_trained_and_was_judged(tracker, metrics, tags)


def test_phoenix_after_the_extraction_trains_the_pose_plan_and_is_judged_in_pose_space(tmp_path, monkeypatch):
    from tests.test_extract_keypoints import astronaut_frames, extractor, offline_worker_command
    from text2sign.config import ConfigError
    from text2sign.data import extract
    from text2sign.data.__main__ import main

    extractor()  # skips here without the extractor's environment; CI makes it
    corpus = make_phoenix(tmp_path / "PHOENIX-2014-T", sizes={"train": 4, "dev": 2, "test": 2})
    frames, _ = astronaut_frames(6)
    for folder in (corpus / "features" / "fullFrame-210x260px").glob("*/*"):
        for png in folder.glob("*.png"):
            png.unlink()
        write_png_folder(folder, frames[: 4 + len(folder.name) % 3])
    monkeypatch.setenv(extract.KEYPOINTS_VARIABLE, str(tmp_path / "keypoints"))
    spec = f"phoenix2014t:{corpus}"
    with pytest.raises(ConfigError, match="extract-keypoints"):
        resolve_config("pose_first", "tiny", data=spec)  # no keypoints yet: the error names the command
    monkeypatch.setattr(extract, "worker_command", offline_worker_command)
    assert main(["extract-keypoints", spec, "--processes", "1"]) == 0
    tracker, metrics, tags = train_and_judge(spec, tmp_path)
    assert_the_plan_trained_and_was_judged(tracker, metrics, tags)
    assert math.isfinite(metrics["eval/backtranslation_wer"])  # PHOENIX has glosses: back-translation too
    assert np.isfinite(metrics["eval/pose_plan_steer_gap"])


def test_mlflow_run_on_how2sign_with_its_json_trains_the_plan_and_logs_the_pose_steer_gaps(tmp_path):
    """The issue's own command, end to end: a pose-only judge in the store, then `mlflow run . -e train`."""
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from tests.helpers import REPO, subprocess_env

    corpus = make_how2sign_keypoints(tmp_path / "how2sign", sizes=SIZES)
    env = {**subprocess_env(tmp_path), "HOME": str(tmp_path)}  # the clip cache goes inside the test's folder
    for command in (
        [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "train_recognizer", "-P", f"data=how2sign:{corpus}",
         "-P", "scale=tiny", "--env-manager", "local", "--experiment-name", "text2sign-recognizers"],
        [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "train", "-P", f"data=how2sign:{corpus}",
         "-P", "scale=tiny", "-P", "overrides=train.epochs=1 model.pose_plan_steps=5", "--env-manager", "local",
         "--experiment-name", "how2sign"],
    ):
        out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    run = client.search_runs([client.get_experiment_by_name("how2sign").experiment_id])[0]
    assert run.data.params["model.pose_plan"] == "True"
    for key in ("val/pose_plan_error_px", *POSE_FIGURES):
        assert math.isfinite(run.data.metrics[key]), key
    assert run.data.tags["eval/pose_status"] == "computed: plan, video"
