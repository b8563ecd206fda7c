"""How2Sign's OpenPose keypoints: read from both layouts into the 50-point skeleton, brought to the same frames
and pixels as the clip, cached with it, and bad JSON treated like a corrupt clip. Corpora are written tiny by
tests/how2sign_fixtures.py (a dot clip whose JSON puts the right wrist on the dot)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.corpus_builders import make_how2sign
from tests.how2sign_fixtures import (dot_centre, frame_file, make_how2sign_keypoints, person, sentence_name,
                                     split_folders, write_frame, write_openpose)
from text2sign import skeleton
from text2sign.config import DataConfig
from text2sign.data import DataError, build_dataset, collate
from text2sign.data import corpus_inspection
from text2sign.data import openpose
from text2sign.data.__main__ import main as data_main
from text2sign.data.how2sign import has_keypoints
from text2sign.data.keypoints import KeypointError

SIZE, TIME = 16, 4  # sampled frames of the 8: 1, 3, 5, 7
RIGHT_HAND_TIP = skeleton.RIGHT_HAND + 20  # the little fingertip, which the fixture puts outside the square


def data(root: Path, tmp_path: Path, **changes) -> DataConfig:
    settings = {"name": f"how2sign:{root}", "image_size": SIZE, "num_frames": TIME, "cache_dir": str(tmp_path / "cache")}
    return DataConfig(**{**settings, **changes})


@pytest.fixture
def corpus_root(tmp_path) -> Path:
    return make_how2sign_keypoints(tmp_path / "how2sign")


def keypoint_folder(root: Path, split: str = "train", i: int = 1, layout: str = "flat") -> Path:
    return split_folders(root, split, layout)[2] / sentence_name(split, i)


# --- the layouts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat", "official"])
def test_both_layouts_yield_keypoints_in_the_skeleton_for_names_starting_with_a_dash(layout, tmp_path):
    root = make_how2sign_keypoints(tmp_path / "How2Sign", layout)
    corpus = build_dataset(data(root, tmp_path), "train")
    assert has_keypoints(root) and corpus.has_keypoints and corpus.keypoint_names == skeleton.POINT_NAMES
    first = corpus.records[0]
    assert first.name.startswith("-") and first.keypoints == keypoint_folder(root, i=0, layout=layout)
    assert first.source == split_folders(root, "train", layout)[1] / f"{first.name}.mp4"
    sample = corpus[0]
    assert sample["text"] == "Sentence 0 of train." and sample["video"].shape == (3, TIME, SIZE, SIZE)
    assert sample["keypoints"].shape == (TIME, skeleton.NUM_POINTS, 3) and sample["keypoints"].dtype == torch.float32
    batch = collate([corpus[0], corpus[1]])
    assert batch["keypoints"].shape == (2, TIME, skeleton.NUM_POINTS, 3)
    assert [len(build_dataset(data(root, tmp_path), split)) for split in ("val", "test")] == [1, 1]


def test_how2sign_without_keypoint_folders_yields_no_keypoints(tmp_path):
    root = make_how2sign(tmp_path / "how2sign")
    corpus = build_dataset(data(root, tmp_path), "train")
    assert not has_keypoints(root) and not corpus.has_keypoints and corpus.keypoint_names == ()
    assert corpus.records[0].keypoints is None and "keypoints" not in corpus[0]


def test_a_split_without_its_keypoints_while_others_have_them_is_refused_naming_the_folder(corpus_root, tmp_path):
    folder = split_folders(corpus_root, "val", "flat")[2]
    shutil.rmtree(folder)
    with pytest.raises(DataError, match=f"^{folder}: missing, though the corpus has keypoints .*val_2D_keypoints"):
        build_dataset(data(corpus_root, tmp_path), "val")


# --- the keypoints follow the pixels ------------------------------------------------------------------------


def test_a_keypoint_drawn_into_the_clip_lands_on_its_brightest_pixel_in_every_sampled_frame(corpus_root, tmp_path):
    sample = build_dataset(data(corpus_root, tmp_path), "train")[1]
    brightness = sample["video"].sum(0)  # [T, H, W]
    for t in range(TIME):
        row, col = divmod(int(brightness[t].argmax()), SIZE)
        for point in (skeleton.RIGHT_WRIST, skeleton.RIGHT_HAND):
            x, y, confidence = sample["keypoints"][t, point].tolist()
            assert confidence > 0 and (math.floor(y * SIZE), math.floor(x * SIZE)) == (row, col), (t, point)


def test_keypoints_are_sampled_at_the_same_frames_as_the_pixels(corpus_root, tmp_path):
    keypoints = build_dataset(data(corpus_root, tmp_path), "train")[0]["keypoints"]
    side, left = 32, 8  # the 48x32 frame's centred square
    for t, frame in enumerate([1, 3, 5, 7]):  # the centres of 4 equal stretches of 8 frames
        x, y = dot_centre(frame)
        expected = [(x - left + 0.5) / side, (y + 0.5) / side]  # OpenPose's x is a pixel index: its centre is +0.5
        assert keypoints[t, skeleton.RIGHT_WRIST, :2].tolist() == pytest.approx(expected)


def test_a_point_outside_the_centred_square_is_missing(corpus_root, tmp_path):
    keypoints = build_dataset(data(corpus_root, tmp_path), "train")[0]["keypoints"]
    for point in (skeleton.LEFT_WRIST, RIGHT_HAND_TIP):
        assert (keypoints[:, point, 2] == 0).all() and keypoints[:, point, :2].isnan().all()
    assert (keypoints[:, skeleton.LEFT_SHOULDER, 2] > 0).all()


def test_a_hand_of_confidence_zero_is_missing_with_nan_coordinates_never_zero(corpus_root, tmp_path):
    keypoints = build_dataset(data(corpus_root, tmp_path), "train")[0]["keypoints"]
    left_hand = keypoints[:, skeleton.LEFT_HAND : skeleton.LEFT_HAND + 21]
    assert (left_hand[..., 2] == 0).all() and left_hand[..., :2].isnan().all()
    assert not (keypoints[..., :2] == 0).any()
    assert skeleton.present(keypoints[:, skeleton.RIGHT_HAND : skeleton.RIGHT_HAND + 20]).all()


def test_a_frame_with_no_people_has_every_point_missing(corpus_root, tmp_path):
    write_frame(keypoint_folder(corpus_root), 3, [])  # frame 3 is the second sampled frame
    keypoints = build_dataset(data(corpus_root, tmp_path), "train")[1]["keypoints"]
    assert (keypoints[1, :, 2] == 0).all() and keypoints[1, :, :2].isnan().all()
    assert skeleton.present(keypoints[0, : len(skeleton.BODY) - 1]).all()  # the other frames keep the signer


def test_of_two_people_the_signer_is_kept_first_by_confidence_then_by_the_nearest_neck(tmp_path):
    folder = tmp_path / "-two_people-rgb_front"
    folder.mkdir()
    # Frame 0: nothing to follow yet, so the more confident body wins, though it is listed second.
    write_frame(folder, 0, [person(0, confidence=0.3, shift=14), person(0, confidence=0.9)])
    # Frame 1: a bystander more confident than the signer, listed first, but far from the signer's last neck.
    write_frame(folder, 1, [person(1, confidence=0.99, shift=16), person(1, confidence=0.5, shift=1)])
    track = openpose.read_folder(folder, 48, 32)
    assert track.points[:, skeleton.NECK, 0].tolist() == [24.0, 25.0]
    assert track.points[:, skeleton.NECK, 2].tolist() == pytest.approx([0.9, 0.5])


# --- bad keypoints are bad samples ------------------------------------------------------------------------


def test_a_gap_in_the_json_numbering_is_refused_naming_the_missing_file(corpus_root, tmp_path):
    gap = frame_file(keypoint_folder(corpus_root), 4)
    gap.unlink()
    clip = build_dataset(data(corpus_root, tmp_path, cache_dir="none"), "val").records[0].source  # other splits read
    assert clip.is_file()
    with pytest.raises(DataError, match=f"its keypoints cannot be read: {gap}: missing, a gap .*Restore the keypoint "
                                        f"file.*data.on_error=skip"):
        build_dataset(data(corpus_root, tmp_path), "train")


def test_skip_leaves_out_a_sample_with_a_gap_in_its_json_and_lists_it(corpus_root, tmp_path):
    frame_file(keypoint_folder(corpus_root), 4).unlink()
    corpus = build_dataset(data(corpus_root, tmp_path, on_error="skip"), "train")
    assert [r.name for r in corpus.records] == [sentence_name("train", 0), sentence_name("train", 2)]
    assert len(corpus.skipped) == 1 and "_000000000004_keypoints.json: missing" in str(corpus.skipped[0])


def test_a_corrupt_json_is_found_before_training_and_named(corpus_root, tmp_path):
    broken = frame_file(keypoint_folder(corpus_root), 6)
    broken.write_text('{"version": 1.3, "people": [{"pose_keypoints_2d": [1.0, 2', encoding="utf-8")
    with pytest.raises(DataError, match=f"^{corpus_root}.*: its keypoints cannot be read: {broken}: not readable OpenPose JSON"):
        build_dataset(data(corpus_root, tmp_path), "train")


def test_a_json_of_the_wrong_shape_is_named(tmp_path):
    folder = write_openpose(tmp_path / "-clip", frames=2)
    frame_file(folder, 1).write_text('{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}', encoding="utf-8")
    with pytest.raises(KeypointError, match=f"{frame_file(folder, 1)}: pose_keypoints_2d has 3 numbers, expected 75"):
        openpose.read_folder(folder, 48, 32)


def test_a_sentence_without_its_json_folder_is_a_bad_record_naming_the_expected_folder(corpus_root, tmp_path):
    folder = keypoint_folder(corpus_root, i=2)
    shutil.rmtree(folder)
    with pytest.raises(DataError, match=f"^{folder}: is missing \\(the OpenPose keypoints of .*line 4\\)"):
        build_dataset(data(corpus_root, tmp_path), "train")
    assert len(build_dataset(data(corpus_root, tmp_path, on_error="skip"), "train")) == 2


# --- the cache ----------------------------------------------------------------------------------------------


def test_cached_keypoints_are_read_back_without_decoding_or_reading_json(corpus_root, tmp_path, monkeypatch):
    config = data(corpus_root, tmp_path)
    fresh = build_dataset(config, "train")[2]["keypoints"]

    def fail(*args, **kwargs):
        raise AssertionError("read a clip or its keypoints that the cache holds")

    monkeypatch.setattr("text2sign.data.real.decode_clip", fail)
    monkeypatch.setattr("text2sign.data.real.load_track", fail)
    assert torch.allclose(build_dataset(config, "train")[2]["keypoints"], fresh, equal_nan=True)


def test_changed_json_invalidates_the_cached_keypoints(corpus_root, tmp_path):
    config = data(corpus_root, tmp_path)
    before = build_dataset(config, "train")[1]["keypoints"]
    changed = write_frame(keypoint_folder(corpus_root), 1, [person(1, shift=2)])  # frame 1 is the first sampled
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    after = build_dataset(config, "train")[1]["keypoints"]
    assert after[0, skeleton.NECK, 0] - before[0, skeleton.NECK, 0] == pytest.approx(2 / 32)
    assert torch.allclose(after[1:], before[1:], equal_nan=True)


# --- inspect ------------------------------------------------------------------------------------------------


def test_inspect_reports_keypoint_coverage_per_split_and_says_when_it_samples(corpus_root, capsys, monkeypatch):
    write_frame(keypoint_folder(corpus_root, "val", 0), 0, [])  # one of val's 8 frames without anybody
    monkeypatch.setattr(corpus_inspection, "KEYPOINT_SAMPLE", 2)
    assert data_main(["inspect", f"how2sign:{corpus_root}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Of the 21 right-hand points found per frame, the fingertip beyond the square is cut: 1 of 21, 4.8%.
    assert ("    keypoints (a sample of 2 of 3 clips, 16 frames): body 100% of frames, right hand 100%, left hand 0%; "
            "the centred square cuts off 4.8% of the hand points found") in lines
    assert ("    keypoints (1 clips, 8 frames): body 88% of frames, right hand 88%, left hand 0%; "
            "the centred square cuts off 4.8% of the hand points found") in lines


def test_inspect_lists_unreadable_keypoints_as_problems(corpus_root, capsys):
    broken = frame_file(keypoint_folder(corpus_root, "test", 0), 2)
    broken.write_bytes(b"\xff not json")
    assert data_main(["inspect", f"how2sign:{corpus_root}"]) == 0
    out = capsys.readouterr().out
    assert "    keypoints: none could be read (1 clips; see the problems)" in out
    assert f"its keypoints cannot be read: {broken}: not readable OpenPose JSON" in out

