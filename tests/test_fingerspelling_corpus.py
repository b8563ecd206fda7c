"""The fingerspelling corpus: spoken-to-signed's lexicon of real signers spelling letters, read from `.pose`
recordings, placed on the synthetic signer's body and drawn as it. A small lexicon in the published layout
(written here with pose-format) pins the behaviour; where the package is installed, the real lexicon is read too."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, subprocess_env
from tests.test_pose_files import HOLISTIC, MP_BODY, MP_HAND, OFFSET, holistic_pose, save
from text2sign import skeleton
from text2sign.config import DataConfig
from text2sign.data import DataError, build_dataset, check_corpus, corpus_report
from text2sign.data import fingerspelling
from text2sign.data.__main__ import main as data_main
from text2sign.data.fingerspelling import FingerspellingCorpus, read_splits
from text2sign.data.render import _colour, _sleeve, render_keypoints, render_skeleton
from text2sign.data.spec import DataSpec, parse_data_spec

# With data.corpus_seed 0 the hash puts these pairs in these splits (checked below): the letter A is trained on in
# American Sign Language and held out in German Sign Language, C the other way round.
SPLIT_OF_PAIR = {("ase", "A"): "train", ("ase", "B"): "train", ("ase", "C"): "test", ("ase", "G"): "val",
                 ("gsg", "A"): "test", ("gsg", "B"): "train", ("gsg", "C"): "train", ("gsg", "G"): "train"}
NO_HANDS, CORRUPT = ("ase", "D"), ("gsg", "D")  # both hash to train
SHOULDERS = {"RIGHT_SHOULDER": (120.0, 240.0), "LEFT_SHOULDER": (320.0, 240.0)}  # half-width 100 px, not centred
TOTAL_POINTS = sum(len(points) for _, points in HOLISTIC)
FRAMES = 12


def recording(letter: int, hands: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A MediaPipe Holistic recording [12 frames] as the lexicon holds them: the signer facing the camera (their
    right shoulder on the viewer's left), spelling with the right hand raised beside the shoulder, the left hand and
    the left body wrist zeroed (as its preprocessing does for American and German Sign Language)."""
    data = np.zeros((FRAMES, 1, TOTAL_POINTS, 3), dtype=np.float32)
    confidence = np.zeros((FRAMES, 1, TOTAL_POINTS), dtype=np.float32)
    t = np.arange(FRAMES)[:, None]

    def put(component: str, names: list[str], name: str, xy) -> None:
        index = OFFSET[component] + names.index(name)
        data[:, 0, index, :2] = xy
        confidence[:, 0, index] = 1.0

    wrist = np.concatenate([60.0 + 3 * t + 5 * letter, 260.0 - 2 * t], axis=1)  # [F, 2], moving
    body = {"NOSE": (220.0, 120.0), **SHOULDERS, "RIGHT_ELBOW": (80.0, 390.0), "LEFT_ELBOW": (360.0, 390.0),
            "RIGHT_WRIST": wrist}
    for name, xy in body.items():
        put("POSE_LANDMARKS", MP_BODY, name, xy)
    if hands:
        for point, name in enumerate(MP_HAND):  # the wrist, then four points a finger, fanned out and up
            finger, joint = divmod(point - 1, 4)
            offset = (0.0, 0.0) if point == 0 else (-20.0 + 10 * finger, -12.0 * (joint + 1) - letter)
            put("RIGHT_HAND_LANDMARKS", MP_HAND, name, wrist + offset)
    return data, confidence


def write_lexicon(root: Path) -> Path:
    """data.csv and <language>/*.pose, as spoken-to-signed's fingerspelling_lexicon/ holds them."""
    lines = ["path,spoken_language,signed_language,start,end,words,glosses,priority"]
    spoken = {"ase": "en", "gsg": "de"}
    for number, (language, letter) in enumerate([*SPLIT_OF_PAIR, NO_HANDS, CORRUPT]):
        path = root / language / f"fs-{language}-{letter}.pose"
        data, confidence = recording(number, hands=(language, letter) != NO_HANDS)
        save(holistic_pose(data, confidence, 500, 500, 25.0), path)
        if (language, letter) == CORRUPT:
            path.write_bytes(path.read_bytes()[:300])  # cut short, as an interrupted copy leaves it
        lines.append(f"{path.relative_to(root)},{spoken[language]},{language},0,480,{letter},{letter},0")
    (root / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory) -> Path:
    return write_lexicon(tmp_path_factory.mktemp("fingerspelling_lexicon"))


def config_for(lexicon: Path, **changes) -> DataConfig:
    return DataConfig(name=f"fingerspelling:{lexicon}", image_size=64, num_frames=4, **changes)


def pair_of(record) -> tuple[str, str]:
    return record.name.split("/")[0], record.glosses[0]


def test_built_in_alone_or_a_folder_with_a_path_and_the_built_in_registers_as_fingerspelling(lexicon):
    assert parse_data_spec("fingerspelling") == DataSpec("fingerspelling")
    assert DataSpec.from_text("fingerspelling").slug == "fingerspelling"
    assert parse_data_spec(f"fingerspelling:{lexicon}") == DataSpec("fingerspelling", lexicon.resolve())


def test_splits_hold_out_whole_language_letter_pairs_and_are_the_same_on_every_reading(lexicon):
    splits = read_splits(lexicon, corpus_seed=0)
    found = {pair_of(r): split for split, index in splits.items() for r in index.records}
    assert found == {**SPLIT_OF_PAIR, NO_HANDS: "train", CORRUPT: "train"}
    assert read_splits(lexicon, corpus_seed=0) == splits
    # Another corpus seed deals the pairs anew, still each pair to one split.
    other = [pair_of(r) for index in read_splits(lexicon, corpus_seed=1).values() for r in index.records]
    assert sorted(other) == sorted(found)


def test_captions_name_the_letter_and_the_language_and_the_gloss_is_the_letter(lexicon):
    test = build_dataset(config_for(lexicon), "test")
    assert sorted(test.texts) == ["the letter A in German Sign Language", "the letter C in American Sign Language"]
    assert sorted(test.glosses_of(i) for i in range(len(test))) == [("A",), ("C",)]
    # The label set is every letter of the lexicon, the held-out ones too, and the same for every split.
    assert test.vocabulary == build_dataset(config_for(lexicon), "val").vocabulary == ["A", "B", "C", "D", "G"]
    assert fingerspelling.gloss_of("ä") == fingerspelling.gloss_of("A\u0308") == "Ä"  # one letter, one gloss
    assert fingerspelling.gloss_of("ß") == "ß"


def test_samples_are_shaped_like_the_synthetic_corpus(lexicon):
    sample = build_dataset(config_for(lexicon), "train")[0]
    assert sample["video"].shape == (3, 4, 64, 64) and sample["video"].dtype.is_floating_point
    assert -1.0 <= float(sample["video"].min()) and float(sample["video"].max()) <= 1.0
    keypoints = sample["keypoints"].numpy()
    assert keypoints.shape == (4, skeleton.NUM_POINTS, 3)
    seen = keypoints[..., 2] > 0
    assert ((keypoints[seen, :2] >= 0) & (keypoints[seen, :2] <= 1)).all()
    assert np.isnan(keypoints[~seen, :2]).all()
    assert seen[:, skeleton.RIGHT_HAND:skeleton.LEFT_HAND].all() and not seen[:, skeleton.LEFT_HAND:].any()


def test_the_recordings_shoulders_land_on_the_synthetic_signers_shoulders(lexicon):
    train = build_dataset(config_for(lexicon, signer_variation=1.0), "train")
    for index in range(len(train)):
        appearance = train.appearance_of(train.records[index])
        synthetic = render_keypoints(("HELLO",), appearance, 64, 4)[0]  # head, neck, right shoulder, ...
        keypoints = train[index]["keypoints"].numpy()
        np.testing.assert_allclose(keypoints[:, skeleton.RIGHT_SHOULDER, :2], synthetic[[2] * 4], atol=1e-5)
        np.testing.assert_allclose(keypoints[:, skeleton.LEFT_SHOULDER, :2], synthetic[[6] * 4], atol=1e-5)
        # The signer's right shoulder is on the viewer's left in the recordings, as in the synthetic signer.
        assert (keypoints[:, skeleton.RIGHT_SHOULDER, 0] < keypoints[:, skeleton.LEFT_SHOULDER, 0]).all()


def test_the_drawing_shows_the_hand_where_its_keypoints_are(lexicon):
    train = build_dataset(config_for(lexicon), "train")
    keypoints = train[0]["keypoints"].numpy()
    appearance = train.appearance_of(train.records[0])
    drawn = render_skeleton(keypoints, appearance, 64)
    np.testing.assert_allclose(train[0]["video"].numpy(), drawn, atol=1 / 127.5)  # the sample is this drawing
    handless = keypoints.copy()
    handless[:, skeleton.RIGHT_HAND:skeleton.LEFT_HAND] = (np.nan, np.nan, 0.0)
    without = render_skeleton(handless, appearance, 64)
    changed = np.abs(drawn - without).max(axis=0) > 0.1  # [T, H, W]
    for frame in range(len(keypoints)):
        hand = keypoints[frame, skeleton.RIGHT_HAND:skeleton.LEFT_HAND, :2] * 64
        column, row = np.floor(hand[0] + (hand[9] - hand[0]) / 2).astype(int)  # halfway up the palm
        assert changed[frame, row, column]
        rows, columns = np.nonzero(changed[frame])
        # Nothing changed farther from the hand's points than its capsules reach.
        assert np.hypot(columns[:, None] + 0.5 - hand[:, 0], rows[:, None] + 0.5 - hand[:, 1]).min(axis=1).max() < 4


def test_an_arm_without_its_wrist_hangs_straight_down_from_its_elbow(lexicon):
    train = build_dataset(config_for(lexicon), "train")
    keypoints = train[0]["keypoints"].numpy()
    appearance = train.appearance_of(train.records[0])
    assert not (keypoints[:, skeleton.LEFT_WRIST, 2] > 0).any()  # zeroed in the recording
    elbow = keypoints[0, skeleton.LEFT_WRIST - 1, :2] * 64
    right_forearm = np.linalg.norm(keypoints[:, skeleton.RIGHT_WRIST, :2] - keypoints[:, skeleton.RIGHT_WRIST - 1, :2],
                                   axis=-1) * 64
    column, row = np.floor(elbow + [0.0, np.median(right_forearm) / 2]).astype(int)
    sleeve = _sleeve(_colour(appearance.clothing)) * 2 - 1
    np.testing.assert_allclose(render_skeleton(keypoints, appearance, 64)[:, 0, row, column], sleeve, atol=1e-3)
    no_elbow = keypoints.copy()
    no_elbow[:, skeleton.LEFT_WRIST - 1] = (np.nan, np.nan, 0.0)
    assert not np.allclose(render_skeleton(no_elbow, appearance, 64)[:, 0, row, column], sleeve, atol=1e-3)


def test_recordings_without_a_hand_or_unreadable_are_left_out_named_and_counted(lexicon, caplog):
    with caplog.at_level(logging.WARNING, logger="text2sign.data.fingerspelling"):
        train = build_dataset(config_for(lexicon), "train")
    reasons = {Path(problem.file).name: problem.reason for problem in train.skipped}
    assert reasons.keys() == {"fs-ase-D.pose", "fs-gsg-D.pose"}
    assert reasons["fs-ase-D.pose"] == "no hand is seen in any frame"
    assert reasons["fs-gsg-D.pose"].startswith("not a readable .pose file")
    assert "fs-ase-D.pose: no hand is seen in any frame" in caplog.text
    assert "fs-gsg-D.pose: not a readable .pose file" in caplog.text
    assert len(train) == train.usable == 5
    splits = {"train": train, "val": build_dataset(config_for(lexicon), "val"),
              "test": build_dataset(config_for(lexicon), "test")}
    metrics, tags = corpus_report(splits)
    assert metrics == {"data/skipped_samples": 2.0}
    assert tags["data/samples"] == "train 5 of 5, val 1 of 1, test 2 of 2"
    assert "fs-ase-D.pose: no hand is seen in any frame" in tags["data/skipped"]


def test_a_split_larger_than_its_cap_gives_a_subset_drawn_with_the_corpus_seed(lexicon):
    capped = build_dataset(config_for(lexicon, train_size=3), "train")
    again = build_dataset(config_for(lexicon, train_size=3), "train")
    assert len(capped) == 3 and capped.usable == 5
    assert capped.texts == again.texts
    full = build_dataset(config_for(lexicon), "train").texts
    assert [full.index(text) for text in capped.texts] == sorted(full.index(text) for text in capped.texts)


def test_inspect_lists_each_split_the_left_out_recordings_and_the_keypoint_coverage(lexicon, capsys):
    assert data_main(["inspect", f"fingerspelling:{lexicon}"]) == 0
    out = capsys.readouterr().out
    assert "  train: 5 samples, frames per clip 12 / 12 / 12" in out and "  test: 2 samples" in out
    assert "right hand 100%, left hand 0%" in out
    assert "fs-ase-D.pose: no hand is seen in any frame" in out and "fs-gsg-D.pose: not a readable .pose file" in out


def test_without_the_package_the_error_names_the_install_command(monkeypatch, capsys):
    monkeypatch.setattr(fingerspelling, "PACKAGE", "spoken-to-signed-not-installed")
    with pytest.raises(DataError, match=r"pip install 'text2sign\[fingerspelling\]'"):
        check_corpus(DataConfig(name="fingerspelling"))
    assert data_main(["inspect", "fingerspelling"]) == 2
    from mlproject.train import main as train_main

    assert train_main(["--scale", "tiny", "--data", "fingerspelling"]) == 2
    assert capsys.readouterr().err.count("pip install 'text2sign[fingerspelling]'") == 2


@pytest.mark.slow
def test_a_tiny_training_run_on_a_small_lexicon_finishes_and_counts_what_it_left_out(lexicon, tmp_path):
    from mlflow.tracking import MlflowClient

    env = {**subprocess_env(tmp_path), "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--data", f"fingerspelling:{lexicon}",
               "--evaluate", "false", "--register", "false", "--experiment", "fingerspelling",
               "--overrides", "model.pose_plan_steps=5"]
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("fingerspelling").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["data/samples"] == "train 5 of 5, val 1 of 1, test 2 of 2"
    assert run.data.metrics["data/skipped_samples"] == 2.0
    assert run.data.params["model.pose_plan"] == "True"  # the lexicon has keypoints


def installed_lexicon() -> Path:
    try:
        return fingerspelling.lexicon_folder(DataSpec("fingerspelling"))
    except DataError:
        pytest.skip("spoken-to-signed is not installed (pip install 'text2sign[fingerspelling]')")


def test_the_real_lexicon_reads_whole_and_a_handful_of_its_letters_draw(caplog):
    folder = installed_lexicon()
    splits = read_splits(folder, corpus_seed=0)
    records = [record for index in splits.values() for record in index.records]
    assert len(records) == 600 and not any(index.problems for index in splits.values())
    languages = {record.name.split("/")[0] for record in records}
    assert languages == set(fingerspelling.LANGUAGES)
    pairs = {split: {pair_of(r) for r in index.records} for split, index in splits.items()}
    assert sum(len(p) for p in pairs.values()) == 600  # one recording per pair, none merged by the glosses
    assert not (pairs["train"] & pairs["val"] or pairs["train"] & pairs["test"] or pairs["val"] & pairs["test"])
    assert 0.7 < len(pairs["train"]) / 600 < 0.9
    assert ("gsg", "Ä") in pairs["train"] | pairs["val"] | pairs["test"]  # the lexicon writes ä
    with caplog.at_level(logging.WARNING):
        test = FingerspellingCorpus(DataConfig(name="fingerspelling", image_size=32, num_frames=8, test_size=6),
                                    "test", DataSpec("fingerspelling"))
    assert len(test) == 6 and not test.skipped and not caplog.records
    for index in range(len(test)):
        sample = test[index]
        assert sample["video"].shape == (3, 8, 32, 32) and np.isfinite(sample["video"].numpy()).all()
        assert sample["text"].startswith(f"the letter {sample['glosses'][0]} in ")
        hands = sample["keypoints"][:, skeleton.RIGHT_HAND:, 2] > 0
        assert hands.any()


def test_back_translation_is_also_scored_apart_for_letters_training_never_saw():
    from evaluation.evaluate_model import _unseen_gloss_metrics

    glosses = [("B",), ("Ψ",), ("C",), ("Ж",)]
    reading = {"generated": ([("B",), ("A",), ("A",), ("Ж",)], None, None),
               "real": ([("B",), ("Ψ",), ("C",), ("Ж",)], None, None)}
    metrics = _unseen_gloss_metrics(glosses, reading, seen={"A", "B", "C"})
    assert metrics["eval/backtranslation_wer_seen_glosses"] == 0.5  # B right, C read as A
    assert metrics["eval/backtranslation_wer_unseen_glosses"] == 0.5  # Ψ read as A, Ж right
    assert metrics["eval/backtranslation_wer_real_seen_glosses"] == metrics["eval/backtranslation_wer_real_unseen_glosses"] == 0
    assert metrics["eval/num_videos_seen_glosses"] == metrics["eval/num_videos_unseen_glosses"] == 2
    # With every gloss seen (the synthetic corpus) there is nothing to tell apart.
    assert _unseen_gloss_metrics(glosses, reading, seen={"A", "B", "C", "Ψ", "Ж"}) == {}
