"""Extracted keypoints, checked before training: `inspect` reports their coverage as it does shipped ones', and a
split whose clips mostly show no hand is named, by inspect and by a run's tags.

The corpus is PHOENIX-2014T's layout (tests/corpus_builders.py) with the MediaPipe extractor's cache entries
written as its worker writes them (`to_skeleton`, `write_entry`, at `entry_path`), from landmarks made up here:
MediaPipe itself is not run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.corpus_builders import make_phoenix
from text2sign.config import DataConfig
from text2sign.data import build_dataset, corpus_report, extract
from text2sign.data import mediapipe_worker as worker
from text2sign.data.__main__ import main as data_main
from text2sign.data.records import SKIP_HINT

FRAMES = "features/fullFrame-210x260px"
# MediaPipe's pose landmarks (x, y of the frame in [0, 1], visibility) that the skeleton reads: the nose, the
# shoulders, elbows and wrists, all inside the centred square of the fixture's 21 x 26 frames (rows 2-23).
POSE = {0: (0.5, 0.3), 11: (0.65, 0.45), 12: (0.35, 0.45), 13: (0.7, 0.6), 14: (0.3, 0.6), 15: (0.65, 0.75),
        16: (0.35, 0.75)}


def landmarks(hands_at: float | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One frame's (pose [33, 3], right hand [21, 2], left hand [21, 2]) as Holistic gives them: the hands below
    their wrists, at height `hands_at` of the frame, or not found (None)."""
    pose = np.zeros((33, 3), dtype=np.float32)
    for landmark, (x, y) in POSE.items():
        pose[landmark] = (x, y, 0.9)
    if hands_at is None:
        return pose, None, None
    spread = np.linspace(-0.05, 0.05, 21, dtype=np.float32)
    right, left = (np.stack([pose[wrist, 0] + spread, hands_at - np.abs(spread)], 1) for wrist in (16, 15))
    return pose, right, left


def write_extracted(clip: Path, cache: Path, hands_at: float | None) -> None:
    """The extractor's cache entry for the frame folder `clip`: a person in every frame, as `landmarks`."""
    images = sorted(clip.glob("*.png"))
    width, height = Image.open(images[0]).size
    points = np.stack([worker.to_skeleton(*landmarks(hands_at), width, height) for _ in images])
    entry = extract.entry_path(extract.content_hash(clip, cache), cache)
    worker.write_entry(str(entry), points, width, height, fps=0.0, source=str(clip))  # fps 0: a frame folder's


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(extract.KEYPOINTS_VARIABLE, str(tmp_path / "keypoints"))  # where inspect and training look
    return tmp_path / "keypoints"


EVERY_CLIP = {f"{split}_{i:02d}" for split, count in (("train", 4), ("dev", 2), ("test", 2)) for i in range(count)}


def extracted_phoenix(root: Path, cache: Path, with_hands: set[str], hands_at: float = 0.75) -> Path:
    """make_phoenix's corpus (train 4 clips of 6-9 frames, dev and test 2 of 6-7), every clip extracted; the clips
    named `<split>_<i>` in `with_hands` show both hands, at height `hands_at` of the frame."""
    make_phoenix(root)
    for clip in sorted((root / FRAMES).glob("*/*")):
        write_extracted(clip, cache, hands_at if clip.name.split("April")[0] in with_hands else None)
    return root


def inspect(root: Path, capsys) -> tuple[int, list[str]]:
    code = data_main(["inspect", f"phoenix2014t:{root}"])
    return code, capsys.readouterr().out.splitlines()


def test_inspect_reports_extracted_coverage_and_names_a_split_whose_clips_mostly_show_no_hand(tmp_path, cache, capsys):
    # train: 3 of 4 clips without hands, named; val: 1 of 2, half, which is not most, so not named.
    root = extracted_phoenix(tmp_path / "PHOENIX-2014-T", cache, with_hands={"train_00", "dev_00", "test_00", "test_01"})
    code, lines = inspect(root, capsys)
    assert code == 0  # still trainable: the pixel model needs no keypoints
    # Hands in train_00's 6 frames of the split's 30, val's dev_00's 6 of 13.
    assert lines[lines.index("  train: 4 samples, frames per clip 6 / 7.5 / 9 (min / median / max)") + 2:][:2] == [
        "    keypoints (4 clips, 30 frames): body 100% of frames, right hand 20%, left hand 20%; "
        "the centred square cuts off 0.0% of the hand points found",
        "    NO HANDS: 3 of 4 clips (75%) show no hand in any frame (in the centred square the model sees)"]
    assert ("    keypoints (2 clips, 13 frames): body 100% of frames, right hand 46%, left hand 46%; "
            "the centred square cuts off 0.0% of the hand points found") in lines
    assert ("    keypoints (2 clips, 13 frames): body 100% of frames, right hand 100%, left hand 100%; "
            "the centred square cuts off 0.0% of the hand points found") in lines
    assert sum(line.startswith("    NO HANDS: ") for line in lines) == 1
    assert lines[-1] == (
        "usable, but most clips of train show no hand (NO HANDS above). The pose plan and the judge learn signs from "
        "the hands; on these keypoints they learn the body's motion only. Check that the clips show the signer's "
        "hands, then extract the keypoints again (python -m text2sign.data extract-keypoints redoes changed clips; "
        "MediaPipe finds no hands in very small or blurred frames), or train without the pose plan: "
        "-P ablation=pixel_only.")


def test_inspect_of_an_extracted_corpus_with_hands_reports_coverage_and_no_problem(tmp_path, cache, capsys):
    root = extracted_phoenix(tmp_path / "PHOENIX-2014-T", cache, with_hands=EVERY_CLIP)
    code, lines = inspect(root, capsys)
    assert code == 0
    assert ("    keypoints (4 clips, 30 frames): body 100% of frames, right hand 100%, left hand 100%; "
            "the centred square cuts off 0.0% of the hand points found") in lines
    assert not any("NO HANDS" in line for line in lines)
    assert lines[-1] == "usable; no problems found"


def test_hands_found_only_below_the_centred_square_count_as_no_hand(tmp_path, cache, capsys):
    """PHOENIX's interpreters rest their hands at the bottom edge, below the square the model sees (rows 2-23 of 26)."""
    root = extracted_phoenix(tmp_path / "PHOENIX-2014-T", cache, with_hands=EVERY_CLIP, hands_at=0.97)
    _, lines = inspect(root, capsys)
    assert ("    keypoints (4 clips, 30 frames): body 100% of frames, right hand 100%, left hand 100%; "
            "the centred square cuts off 100.0% of the hand points found") in lines
    assert sum(line.startswith("    NO HANDS: ") for line in lines) == 3
    assert lines[-1].startswith("usable, but most clips of train, val, test show no hand (NO HANDS above). ")


def test_inspect_names_a_clip_left_unextracted_as_training_would(tmp_path, cache, capsys):
    root = extracted_phoenix(tmp_path / "PHOENIX-2014-T", cache, with_hands={"train_00", "train_01"})
    unextracted = sorted((root / FRAMES / "dev").iterdir())[0]  # dev_00, 6 frames: dev_01 (7) is left
    extract.entry_path(extract.content_hash(unextracted, cache), cache).unlink()
    code, lines = inspect(root, capsys)
    assert code == 0
    assert f"      {unextracted}: has no extracted keypoints in {cache}" in lines
    assert lines[-1].startswith("usable, but most clips of val, test show no hand")  # train: 2 of 4, not most
    assert lines[-1].endswith(f"Fix the samples listed above too, {SKIP_HINT}.")
    assert ("    keypoints (1 clips, 7 frames): body 100% of frames, right hand 0%, left hand 0%; "
            "the centred square cuts off 0.0% of the hand points found") in lines


def test_a_run_on_clips_mostly_without_hands_tags_them_and_the_warning(tmp_path, cache, caplog):
    root = extracted_phoenix(tmp_path / "PHOENIX-2014-T", cache, with_hands={"train_00", "dev_00", "test_00", "test_01"})
    config = DataConfig(name=f"phoenix2014t:{root}", image_size=16, num_frames=4, cache_dir=str(tmp_path / "clips"))
    splits = {split: build_dataset(config, split) for split in ("train", "val", "test")}
    _, tags = corpus_report(splits)
    assert tags["data/clips_without_hands"] == "train 3 of 4, val 1 of 2, test 0 of 2"
    assert tags["data/no_hands"].startswith("train: 3 of 4 clips (75%) show no hand in any frame")
    assert "val:" not in tags["data/no_hands"] and "-P ablation=pixel_only" in tags["data/no_hands"]
    assert any("the train split of" in r.message and "show no hand" in r.message for r in caplog.records)
