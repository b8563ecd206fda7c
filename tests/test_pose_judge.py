"""The pose-only judge: on a corpus with keypoints and no glosses (How2Sign with its OpenPose JSON) the recognizer
learns to read the signer's keypoints alone, is registered and found again by corpus and clip size, and
`evaluate` loads it for that corpus; only a corpus with neither glosses nor keypoints is refused."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from evaluation.judge.recognizer import SignRecognizer
from evaluation.judge.training import score_on_videos, train_recognizer
from tests.corpus_builders import make_how2sign
from tests.helpers import subprocess_env
from tests.how2sign_fixtures import make_how2sign_keypoints
from text2sign import skeleton
from text2sign.config import DataConfig

SIZES = {"train": 4, "val": 2, "test": 2}  # 4 training clips: a batch of the `tiny` recognizer scale


def _data(root: Path, cache: Path) -> DataConfig:
    return DataConfig(name=f"how2sign:{root}", image_size=16, num_frames=4, train_size=4, val_size=2, test_size=2,
                      cache_dir=str(cache))


@pytest.fixture(scope="module")
def how2sign_data(tmp_path_factory) -> DataConfig:
    folder = tmp_path_factory.mktemp("how2sign-keypoints")
    return _data(make_how2sign_keypoints(folder / "how2sign", sizes=SIZES), folder / "cache")


@pytest.fixture(scope="module")
def pose_run(how2sign_data):
    logged: list[tuple[int, dict[str, float]]] = []
    model, metrics = train_recognizer(how2sign_data, epochs=6, batch_size=2, lr=3e-3, seed=0, width=16, log_every=1,
                                      progress=False, log=lambda values, step: logged.append((step, values)))
    return model, metrics, logged


def test_a_recognizer_with_an_empty_vocabulary_reads_keypoints_and_only_the_blank(tmp_path):
    torch.manual_seed(0)
    model = SignRecognizer((), image_size=16, num_frames=4, num_keypoints=50, width=16).eval()
    assert model.reads == "keypoints" and model.gloss_head is None
    video = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    output = model(video)
    assert torch.equal(output.log_probs, torch.zeros(2, 4, 1))  # the blank, certain
    assert output.keypoints.shape == (2, 4, 50, 2)
    assert model.decode(video) == [(), ()]
    model.save(tmp_path / "pose.safetensors")
    loaded = SignRecognizer.load(tmp_path / "pose.safetensors")
    assert loaded.spec == model.spec and torch.equal(loaded(video).keypoints, output.keypoints)


def test_a_recognizer_that_would_read_neither_glosses_nor_keypoints_is_refused():
    with pytest.raises(ValueError, match="num_keypoints must be at least 1"):
        SignRecognizer((), image_size=16, num_frames=4, num_keypoints=0)


def test_a_pose_only_judge_trains_on_keypoints_alone_and_its_keypoint_loss_falls(pose_run):
    model, metrics, logged = pose_run
    assert model.vocabulary == () and model.num_keypoints == skeleton.NUM_POINTS and model.reads == "keypoints"
    assert set(metrics) == {"recognizer/val_keypoint_mje", "recognizer/test_keypoint_mje"}
    assert all(math.isfinite(value) for value in metrics.values())
    names = {name for _, values in logged for name in values}
    assert names == {"recognizer/loss", "recognizer/keypoint_loss", "recognizer/val_keypoint_mje"}  # no CTC, no WER
    losses = [values["recognizer/keypoint_loss"] for _, values in logged if "recognizer/keypoint_loss" in values]
    assert len(losses) == 12  # 6 epochs of 4 clips in batches of 2
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])
    assert len([values for _, values in logged if "recognizer/val_keypoint_mje" in values]) == 6


def _sample(keypoints) -> dict:
    return {"video": torch.zeros(3, 4, 16, 16), "text": "", "glosses": (), "keypoints": torch.as_tensor(keypoints)}


def test_a_clip_with_no_point_seen_is_left_out_of_the_joint_error_instead_of_giving_nan():
    torch.manual_seed(0)
    model = SignRecognizer((), image_size=16, num_frames=4, num_keypoints=skeleton.NUM_POINTS, width=16).eval()
    seen = skeleton.missing(4)
    seen[:, skeleton.NECK] = (0.5, 0.25, 1.0)
    alone = score_on_videos(model, [_sample(seen)])
    mixed = score_on_videos(model, [_sample(skeleton.missing(4)), _sample(seen)], batch_size=2)
    assert math.isfinite(mixed["keypoint_mje"]) and mixed["keypoint_mje"] == pytest.approx(alone["keypoint_mje"])
    assert "wer" not in mixed  # a pose-only judge reads no glosses to score
    assert score_on_videos(model, [_sample(skeleton.missing(4))]) == {}


def test_a_corpus_with_neither_glosses_nor_keypoints_is_refused_naming_the_extraction(tmp_path, in_tmp, capsys):
    from mlproject.train_recognizer import main

    root = make_how2sign(tmp_path / "how2sign")
    with pytest.raises(ValueError, match="has no glosses and no keypoints.*extract-keypoints"):
        train_recognizer(_data(root, tmp_path / "cache"), epochs=1, batch_size=2, lr=1e-3, seed=0, progress=False)
    assert main(["--data", f"how2sign:{root}", "--scale", "tiny"]) == 2
    error = capsys.readouterr().err
    assert "has no glosses and no keypoints" in error
    assert f"python -m text2sign.data extract-keypoints how2sign:{root}" in error
    assert not (in_tmp / "mlflow.db").exists()


@pytest.fixture
def tracking_store(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        yield MlflowClient().create_experiment("judges", artifact_location=str(tmp_path / "artifacts"))
    finally:
        # None, not the URI it read: setting the default explicitly would hide MLFLOW_TRACKING_URI from later tests.
        mlflow.set_tracking_uri(None)


def test_the_registry_saves_a_pose_only_judge_and_evaluate_loads_it_for_its_corpus(
    pose_run, how2sign_data, tracking_store, monkeypatch, tmp_path
):
    from mlproject.evaluate import FVD_SWITCH, build_judges
    from mlproject.registry.recognizer_registry import load_recognizer_for, recognizer_model_name, register_recognizer

    model, metrics, _ = pose_run
    with mlflow.start_run(experiment_id=tracking_store):
        version = register_recognizer(model, how2sign_data, metrics)
    tags = MlflowClient().get_model_version(recognizer_model_name(how2sign_data), str(version)).tags
    assert tags["reads"] == "keypoints" and "test_keypoint_mje" in tags and "test_wer" not in tags

    loaded, status = load_recognizer_for(how2sign_data, "tiny")
    assert loaded is not None and loaded.spec == model.spec, status
    # A run with finger keypoints is judged on its fingers too: a judge that never learnt them is not picked.
    with_fingers = dataclasses.replace(how2sign_data, finger_keypoints=True)
    assert tags["finger_keypoints"] == "false"
    none, why = load_recognizer_for(with_fingers, "large")
    assert none is None and "with finger keypoints" in why and "-P scale=large" in why, why
    video = torch.rand(1, 3, 4, 16, 16) * 2 - 1
    assert torch.equal(loaded(video).keypoints, model(video).keypoints)
    served = mlflow.pyfunc.load_model(f"models:/{recognizer_model_name(how2sign_data)}/{version}")
    read = served.predict(pd.DataFrame({"video": [video[0].tolist()]}))  # keypoints: there are no glosses to serve
    assert torch.allclose(torch.tensor(read), model(video).keypoints)

    monkeypatch.setenv(FVD_SWITCH, "off")
    judges = build_judges(how2sign_data, "tiny", torch.device("cpu"))
    assert judges.recognizer is not None and judges.recognizer.reads == "keypoints"
    assert judges.recognizer_status == f"{recognizer_model_name(how2sign_data)} version {version}"
    # A corpus with neither glosses nor keypoints is not looked up: it keeps the status that says why.
    bare = _data(make_how2sign(tmp_path / "bare"), tmp_path / "cache")
    judges = build_judges(bare, "tiny", torch.device("cpu"))
    assert judges.recognizer is None and "has no glosses" in judges.recognizer_status


@pytest.mark.slow
def test_the_entry_point_trains_and_registers_a_pose_only_judge_on_how2sign(tmp_path):
    root = make_how2sign_keypoints(tmp_path / "how2sign", sizes=SIZES)
    env = {**subprocess_env(tmp_path), "HOME": str(tmp_path)}  # the clip cache under ~/.cache stays in the test
    out = subprocess.run([sys.executable, "-m", "mlproject.train_recognizer", "--data", f"how2sign:{root}",
                          "--scale", "tiny", "--epochs", "1"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(reads keypoints)" in out.stdout and "keypoint error" in out.stdout
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("text2sign-recognizers").experiment_id])[0]
    assert run.data.tags["judge_reads"] == "keypoints"
    assert math.isfinite(run.data.metrics["recognizer/test_keypoint_mje"])
    assert "recognizer/test_wer" not in run.data.metrics and "recognizer/ctc_loss" not in run.data.metrics
    versions = client.search_model_versions("name='text2sign-recognizer-how2sign-how2sign'")
    assert [v.tags["reads"] for v in versions] == ["keypoints"]
