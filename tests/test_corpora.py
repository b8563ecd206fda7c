"""Real corpora read from their published layouts: PHOENIX-2014-T (PNG frames), How2Sign and folder
corpora (mp4 clips), built tiny in a temporary folder by tests/corpus_builders.py and read by the real code."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from mlproject.config_from_params import resolve_config
from mlproject.registry.recognizer_registry import recognizer_model_name
from tests.corpus_builders import clip_frames, make_folder, make_how2sign, make_phoenix, write_mp4, write_png_folder
from tests.helpers import REPO, subprocess_env
from text2sign.config import ConfigError, DataConfig
from text2sign.data import DataError, build_dataset, check_corpus, collate, corpus_report, has_glosses
from text2sign.data import video_io
from text2sign.data.clip_cache import ClipCache
from text2sign.data.frames import fit_square, sample_indices
from text2sign.data.spec import DataSpec, parse_data_spec
from text2sign.training.reporting import MemoryTracker
from text2sign.training.trainer import train

H2S_TRAIN = Path("train_rgb_front_clips") / "raw_videos"
PHOENIX_TABLE = Path("annotations") / "manual"
PHOENIX_FRAMES = Path("features") / "fullFrame-210x260px"


def data(spec: str, tmp_path: Path, **changes) -> DataConfig:
    settings = {"name": spec, "image_size": 16, "num_frames": 4, "cache_dir": str(tmp_path / "cache")}
    return DataConfig(**{**settings, **changes})


@pytest.fixture
def phoenix(tmp_path) -> Path:
    return make_phoenix(tmp_path / "PHOENIX-2014-T")


@pytest.fixture
def how2sign(tmp_path) -> Path:
    return make_how2sign(tmp_path / "how2sign")


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "my corpus")


# --- reading the three layouts -----------------------------------------------------------------------


def test_phoenix_gives_translation_as_text_orth_as_glosses_and_dev_as_val(phoenix, tmp_path):
    config = data(f"phoenix2014t:{phoenix}", tmp_path)
    train_set, val_set = build_dataset(config, "train"), build_dataset(config, "val")
    assert (len(train_set), len(val_set)) == (4, 2)
    sample = train_set[0]
    assert sample["text"] == "morgen regnet es im norden"
    assert sample["glosses"] == ("MORGEN", "NORD", "REGEN")
    assert sample["video"].shape == (3, 4, 16, 16) and sample["video"].dtype == torch.float32
    assert -1.0 <= sample["video"].min() and sample["video"].max() <= 1.0
    assert "keypoints" not in sample and train_set.keypoint_names == ()
    assert train_set.has_glosses
    assert train_set.vocabulary == ["KALT", "MORGEN", "NACHT", "NORD", "REGEN", "SONNE", "STARK", "TAG", "WEST", "WIND"]
    assert val_set.records[0].name.startswith("dev_")


def test_how2sign_reads_whole_mp4_clips_has_no_glosses_and_reads_names_starting_with_a_dash(how2sign, tmp_path):
    config = data(f"how2sign:{how2sign}", tmp_path, num_frames=5)
    train_set = build_dataset(config, "train")
    assert len(train_set) == 4 and not train_set.has_glosses and not has_glosses(config)
    first = train_set.records[0]
    assert first.source.name.startswith("-") and first.source.parent == how2sign / H2S_TRAIN
    sample = train_set[0]
    assert sample["glosses"] == () and sample["text"] == "And then \"morgen regnet it's im norden\"."
    # The clip has 5 frames and 5 are asked for: every frame comes back, in order (mpeg4 is near-lossless).
    expected = clip_frames(5, 24, 32, seed=200)[:, 0, 0, :].astype(float)
    decoded = (sample["video"][:, :, 8, 8].T.numpy() + 1.0) * 127.5
    assert np.abs(decoded - expected).max() < 8


def test_folder_reads_its_csv_with_quoted_texts_and_optional_glosses(tmp_path):
    with_glosses = make_folder(tmp_path / "a")
    without = make_folder(tmp_path / "b", glosses=False)
    sample = build_dataset(data(f"folder:{with_glosses}", tmp_path), "test")[0]
    assert sample["text"] == "in der nacht wird es kalt, sagt er" and sample["glosses"] == ("NACHT", "KALT")
    assert has_glosses(data(f"folder:{with_glosses}", tmp_path))
    corpus = build_dataset(data(f"folder:{without}", tmp_path), "train")
    assert not corpus.has_glosses and corpus[0]["glosses"] == ()


def test_folder_without_split_column_splits_by_a_stable_hash_of_the_text(tmp_path):
    root = tmp_path / "corpus"
    texts = [f"sentence number {i}" for i in range(40)]
    lines = ["clip,text"]
    for i, text in enumerate(texts):
        write_png_folder(root / f"clip{i}", clip_frames(2, 8, 8, seed=i))
        lines.append(f"clip{i},{text}")
    (root / "texts.csv").write_text("\n".join(lines) + "\n")
    config = data(f"folder:{root}", tmp_path)
    splits = {split: build_dataset(config, split).texts for split in ("train", "val", "test")}
    assert sorted(t for texts_ in splits.values() for t in texts_) == sorted(texts)
    assert len(splits["train"]) > len(splits["val"]) >= 1 and len(splits["test"]) >= 1
    assert splits == {split: build_dataset(config, split).texts for split in ("train", "val", "test")}


def test_collate_batches_real_samples_without_keypoints(folder, tmp_path):
    corpus = build_dataset(data(f"folder:{folder}", tmp_path), "train")
    batch = collate([corpus[0], corpus[1]])
    assert batch["video"].shape == (2, 3, 4, 16, 16) and "keypoints" not in batch
    assert batch["glosses"] == [corpus.glosses_of(0), corpus.glosses_of(1)]


# --- frames: sampling and cropping --------------------------------------------------------------------


def test_frames_are_sampled_at_the_centres_of_equal_stretches_of_the_clip():
    assert sample_indices(10, 4).tolist() == [1, 3, 6, 8]
    assert sample_indices(16, 16).tolist() == list(range(16))
    assert sample_indices(300, 4).tolist() == [37, 112, 187, 262]


def test_clips_shorter_than_num_frames_repeat_their_frames_evenly():
    assert sample_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert sample_indices(1, 4).tolist() == [0, 0, 0, 0]


def test_png_clip_returns_the_sampled_frames_in_order(tmp_path):
    frames = clip_frames(10, 8, 8, seed=1)
    write_png_folder(tmp_path / "clip", frames)
    clip = video_io.read_clip(tmp_path / "clip", num_frames=4, size=8)
    assert clip.dtype == np.uint8 and clip.shape == (4, 8, 8, 3)
    assert np.array_equal(clip[:, 4, 4], frames[[1, 3, 6, 8], 4, 4])


def test_mp4_clip_is_sampled_like_a_frame_folder(tmp_path):
    frames = clip_frames(9, 16, 16, seed=2)
    write_mp4(tmp_path / "clip.mp4", frames)
    clip = video_io.read_clip(tmp_path / "clip.mp4", num_frames=3, size=16)
    assert np.abs(clip[:, 8, 8].astype(int) - frames[[1, 4, 7], 8, 8].astype(int)).max() < 8


@pytest.mark.parametrize("width, height", [(48, 24), (21, 26)])  # How2Sign-like landscape, PHOENIX-like portrait
def test_crop_keeps_the_centred_square_and_drops_the_edges(width, height):
    image = np.zeros((height, width, 3), np.uint8)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image[top : top + side, left : left + side] = (0, 200, 0)  # the centred square: what must survive
    image[:, :left] = image[:top] = (255, 0, 0)  # edges outside it: what must go
    image[:, left + side :] = image[top + side :] = (255, 0, 0)
    out = fit_square(Image.fromarray(image), 16)
    assert out.shape == (16, 16, 3)
    assert out[..., 0].max() < 40 and out[..., 1].min() > 160


# --- the clip cache ---------------------------------------------------------------------------------


def _no_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded a clip the cache holds")

    monkeypatch.setattr("text2sign.data.real.read_clip", fail)


def test_cached_clip_is_read_back_without_decoding_and_equals_the_decoded_one(folder, tmp_path, monkeypatch):
    config = data(f"folder:{folder}", tmp_path)
    fresh = build_dataset(config, "train")[1]["video"]
    _no_decoding(monkeypatch)
    assert torch.equal(build_dataset(config, "train")[1]["video"], fresh)


def test_cache_is_rebuilt_when_the_source_clip_changes(folder, tmp_path):
    config = data(f"folder:{folder}", tmp_path)
    before = build_dataset(config, "train")[0]["video"]
    clip = folder / "clips" / "train_0.mp4"
    write_mp4(clip, 255 - clip_frames(5, 32, 24, seed=300))
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))
    after = build_dataset(config, "train")[0]["video"]
    assert (before + after).abs().max() < 0.15  # the inverted clip, not the cached original


def test_cache_is_keyed_by_frame_count_and_size(folder, tmp_path):
    build_dataset(data(f"folder:{folder}", tmp_path), "train")[0]
    assert build_dataset(data(f"folder:{folder}", tmp_path, num_frames=3), "train")[0]["video"].shape == (3, 3, 16, 16)
    assert build_dataset(data(f"folder:{folder}", tmp_path, image_size=8), "train")[0]["video"].shape == (3, 4, 8, 8)


@pytest.mark.parametrize("damage", ["truncated", "checksum"])
def test_corrupt_cache_entry_is_detected_and_rebuilt(folder, tmp_path, damage):
    config = data(f"folder:{folder}", tmp_path)
    corpus = build_dataset(config, "train")
    fresh = corpus[0]["video"]
    cache = ClipCache(tmp_path / "cache")
    entry = cache.path(cache.key(corpus.records[0].source, 4, 16))
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    else:  # a well-formed entry whose frames no longer match the checksum stored with them
        with np.load(entry) as stored:
            frames, checksum = stored["frames"].copy(), stored["sha256"]
        frames[0, 0, 0, 0] ^= 0xFF
        with entry.open("wb") as handle:
            np.savez(handle, frames=frames, sha256=checksum)
    assert torch.equal(build_dataset(config, "train")[0]["video"], fresh)
    assert cache.load(cache.key(corpus.records[0].source, 4, 16), (4, 16, 16, 3)) is not None  # rewritten whole


def test_cache_can_be_turned_off(folder, tmp_path):
    corpus = build_dataset(data(f"folder:{folder}", tmp_path, cache_dir="none"), "train")
    corpus[0]
    assert not (tmp_path / "cache").exists()


def test_unwritable_cache_folder_is_a_clear_error(folder, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    with pytest.raises(DataError, match="data.cache_dir: cannot create .*data.cache_dir=none"):
        build_dataset(data(f"folder:{folder}", tmp_path, cache_dir=str(blocker / "cache")), "train")


# --- bad data ----------------------------------------------------------------------------------------


def _break(kind: str, root: Path) -> tuple[str, Path, str]:
    """Damage a fresh corpus one way; returns (spec, the file the error must name, what it must say)."""
    if kind == "missing split":
        table = root / PHOENIX_TABLE / "PHOENIX-2014-T.dev.corpus.csv"
        table.unlink()
        return f"phoenix2014t:{root}", table, "missing, so the val split"
    if kind == "missing clip":
        clip = root / H2S_TRAIN / "g0fjtrain2xY_2-5-rgb_front.mp4"
        clip.unlink()
        return f"how2sign:{root}", clip, "is missing"
    if kind == "missing frames":
        frames = root / PHOENIX_FRAMES / "train" / "train_01April_2010_Thursday_heute-6695"
        for png in frames.iterdir():
            png.unlink()
        return f"phoenix2014t:{root}", frames, "holds no PNG frames"
    if kind == "wrong columns":
        table = root / PHOENIX_TABLE / "PHOENIX-2014-T.train.corpus.csv"
        table.write_text(table.read_text().replace("|orth|", "|gloss|"))
        return f"phoenix2014t:{root}", table, "wrong columns \\(missing orth\\)"
    if kind == "unknown column":
        table = root / "texts.csv"
        table.write_text(table.read_text().replace("glosses", "gloss", 1))
        return f"folder:{root}", table, "wrong columns \\(unknown gloss\\)"
    if kind == "wrong separator":
        table = root / "how2sign_realigned_train.csv"
        table.write_text(table.read_text().replace("\t", ","))
        return f"how2sign:{root}", table, "wrong columns"
    if kind == "empty text":
        table = root / PHOENIX_TABLE / "PHOENIX-2014-T.train.corpus.csv"
        lines = table.read_text().splitlines()
        lines[2] = lines[2].rsplit("|", 1)[0] + "|"
        table.write_text("\n".join(lines) + "\n")
        return f"phoenix2014t:{root}", Path(f"{table}, line 3"), "empty translation"
    if kind == "not utf-8":
        table = root / "how2sign_realigned_train.csv"
        lines = table.read_bytes().split(b"\n")
        lines[3] = lines[3].replace(b"And then", "Und dann für".encode("latin-1"))
        table.write_bytes(b"\n".join(lines))
        return f"how2sign:{root}", Path(f"{table}, line 4"), "not UTF-8 text \\(bytes fc\\)"
    raise ValueError(kind)


LAYOUT = {"missing split": "phoenix", "missing clip": "how2sign", "missing frames": "phoenix",
          "wrong columns": "phoenix", "unknown column": "folder", "wrong separator": "how2sign",
          "empty text": "phoenix", "not utf-8": "how2sign"}


@pytest.mark.parametrize("kind", LAYOUT)
def test_bad_corpus_is_refused_naming_the_file_and_the_fix(kind, tmp_path):
    root = {"phoenix": make_phoenix, "how2sign": make_how2sign, "folder": make_folder}[LAYOUT[kind]](tmp_path / "c")
    spec, culprit, reason = _break(kind, root)
    config = data(spec, tmp_path)
    with pytest.raises(DataError) as error:
        check_corpus(config)  # what the entry points run before a run starts
    message = str(error.value)
    assert message.startswith(str(culprit)) and re.search(reason, message), message
    split = "val" if kind == "missing split" else "train"
    with pytest.raises(DataError, match=reason):
        build_dataset(config, split)


def test_corrupt_clip_is_found_before_training_and_named(how2sign, tmp_path):
    clip = how2sign / H2S_TRAIN / "g0fjtrain1xY_1-5-rgb_front.mp4"
    clip.write_bytes(b"\x00\x00\x00 not a video" * 20)
    with pytest.raises(DataError, match=f"^{clip}: cannot be decoded .*Re-encode or replace the clip.*data.on_error=skip"):
        build_dataset(data(f"how2sign:{how2sign}", tmp_path), "train")


def test_clip_damaged_after_the_check_is_named_when_read(how2sign, tmp_path):
    corpus = build_dataset(data(f"how2sign:{how2sign}", tmp_path, cache_dir="none"), "train")
    clip = corpus.records[1].source
    clip.write_bytes(b"not a video any more")
    with pytest.raises(DataError, match=f"^{clip}: cannot be decoded"):
        corpus[1]


def test_corrupt_png_frame_names_the_clip_and_the_frame(phoenix, tmp_path):
    folder = phoenix / PHOENIX_FRAMES / "train" / "train_00April_2010_Thursday_heute-6694"
    (folder / "images0003.png").write_bytes(b"\x89PNG broken")  # 4 of its 6 frames are read: 1, 3, 4 and 6
    with pytest.raises(DataError, match=f"^{folder}: frame images0003.png cannot be decoded"):
        build_dataset(data(f"phoenix2014t:{phoenix}", tmp_path), "train")


def test_names_starting_with_a_dash_are_read_from_the_folder_corpus(tmp_path):
    root = tmp_path / "corpus"
    write_mp4(root / "-rf.mp4", clip_frames(3, 16, 16, seed=0))
    write_png_folder(root / "-v", clip_frames(3, 16, 16, seed=1))
    (root / "texts.csv").write_text("clip,text,split\n-rf.mp4,one,train\n-v,two,val\n-rf.mp4,three,test\n")
    assert build_dataset(data(f"folder:{root}", tmp_path), "val")[0]["video"].shape == (3, 4, 16, 16)


def test_skip_leaves_out_bad_samples_and_counts_and_lists_them(how2sign, tmp_path):
    (how2sign / H2S_TRAIN / "g0fjtrain1xY_1-5-rgb_front.mp4").write_bytes(b"not a video")
    _break("not utf-8", how2sign)  # line 4: the third clip
    config = data(f"how2sign:{how2sign}", tmp_path, on_error="skip")
    check_corpus(config)  # skip mode: bad rows are no reason to refuse the corpus
    splits = {split: build_dataset(config, split) for split in ("train", "val", "test")}
    assert len(splits["train"]) == 2 and [len(s.skipped) for s in splits.values()] == [2, 0, 0]
    assert all(r.source.is_file() for r in splits["train"].records)
    metrics, tags = corpus_report(splits)
    assert metrics == {"data/skipped_samples": 2.0}
    assert tags["data/skipped"].startswith("2 skipped: train: ")
    assert "how2sign_realigned_train.csv, line 4: not UTF-8" in tags["data/skipped"]
    assert "g0fjtrain1xY_1-5-rgb_front.mp4: cannot be decoded" in tags["data/skipped"]
    assert tags["data/samples"] == "train 2 of 3, val 2 of 2, test 2 of 2"


def test_skip_still_refuses_a_split_with_no_usable_sample(folder, tmp_path):
    for clip in (folder / "clips").glob("val_*.mp4"):
        clip.write_bytes(b"broken")
    with pytest.raises(DataError, match="the val split has no usable sample \\(2 left out"):
        build_dataset(data(f"folder:{folder}", tmp_path, on_error="skip"), "val")


def test_split_sizes_cap_a_real_corpus_with_a_seeded_subset(folder, tmp_path):
    def names(seed: int) -> list[str]:
        return [r.name for r in build_dataset(data(f"folder:{folder}", tmp_path, train_size=2, corpus_seed=seed), "train").records]

    assert len(names(0)) == 2 and names(0) == names(0)
    assert {tuple(names(seed)) for seed in range(6)} != {tuple(names(0))}
    _, tags = corpus_report({"train": build_dataset(data(f"folder:{folder}", tmp_path, train_size=2), "train")})
    assert tags == {"data/samples": "train 2 of 4"}


@pytest.mark.timeout(180)  # a worker that inherits a converter's threads waits for ever: fail, and say which test
def test_real_corpus_gives_the_same_batches_with_two_workers(folder, tmp_path):
    corpus = build_dataset(data(f"folder:{folder}", tmp_path, cache_dir="none"), "train")

    def batches(workers: int) -> list[dict]:
        return list(DataLoader(corpus, batch_size=2, collate_fn=collate, num_workers=workers))

    for serial, parallel in zip(batches(0), batches(2), strict=True):
        assert torch.equal(serial["video"], parallel["video"]) and serial["texts"] == parallel["texts"]


# --- the spec ---------------------------------------------------------------------------------------


def test_spec_names_a_kind_and_an_existing_folder(tmp_path):
    with pytest.raises(ConfigError, match="data.name: unknown corpus 'phoenix:x'; expected synthetic, phoenix2014t:PATH"):
        parse_data_spec("phoenix:x")
    with pytest.raises(ConfigError, match=f"data.name: {tmp_path / 'nowhere'} .* is not a folder; how2sign:PATH needs"):
        parse_data_spec(f"how2sign:{tmp_path / 'nowhere'}")
    with pytest.raises(ConfigError, match="folder needs a path"):
        parse_data_spec("folder:")
    with pytest.raises(ConfigError, match="takes no path"):
        parse_data_spec("synthetic:/x")
    assert parse_data_spec("synthetic") == DataSpec("synthetic")


def test_resolved_config_holds_the_absolute_corpus_path(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(folder.parent)
    config = resolve_config("baseline", "tiny", data=f"folder:./{folder.name}")
    assert config.data.name == f"folder:{folder}"
    with pytest.raises(ConfigError, match="data.name: .*nowhere"):
        resolve_config("baseline", "tiny", data="phoenix2014t:nowhere")


def test_recognizer_registry_name_is_the_kind_and_a_clean_folder_name(folder, tmp_path):
    assert recognizer_model_name(DataConfig(name=f"folder:{folder}")) == "text2sign-recognizer-folder-my-corpus"
    assert recognizer_model_name(DataConfig()) == "text2sign-recognizer-synthetic"


def test_train_recognizer_refuses_a_corpus_without_glosses(how2sign, in_tmp, capsys):
    from mlproject.train_recognizer import main

    assert main(["--data", f"how2sign:{how2sign}", "--scale", "tiny"]) == 2
    assert "has no glosses" in capsys.readouterr().err
    assert not (in_tmp / "mlflow.db").exists()


# --- inspect --------------------------------------------------------------------------------------


def _inspect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "text2sign.data", "inspect", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=120)


def test_inspect_prints_samples_frames_example_and_problems_per_split(phoenix):
    (phoenix / PHOENIX_FRAMES / "test" / "test_01April_2010_Thursday_heute-6695" / "images0001.png").write_bytes(b"bad")
    out = _inspect(f"phoenix2014t:{phoenix}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "  train: 4 samples, frames per clip 6 / 7.5 / 9 (min / median / max)" in lines
    assert "    example: 'morgen regnet es im norden'  glosses: MORGEN NORD REGEN" in lines
    assert "  val (dev): 2 samples, frames per clip 6 / 6.5 / 7 (min / median / max)" in lines
    assert "  test: 1 samples, frames per clip 6 / 6 / 6 (min / median / max)" in lines
    assert any("test_01April_2010_Thursday_heute-6695: frame images0001.png cannot be decoded" in line for line in lines)


def test_inspect_exits_1_when_a_split_is_missing(how2sign):
    (how2sign / "how2sign_realigned_test.csv").unlink()
    out = _inspect(f"how2sign:{how2sign}")
    assert out.returncode == 1
    assert "  test: MISSING OR UNREADABLE" in out.stdout and "not usable: test" in out.stdout


@pytest.mark.parametrize("args, message", [(["nope:x"], "unknown corpus"), (["folder:/no/such/folder"], "is not a folder"),
                                           ([], "the following arguments are required")])
def test_inspect_usage_errors_exit_2(args, message):
    out = _inspect(*args)
    assert out.returncode == 2 and message in out.stderr


# --- training and evaluating on each corpus -------------------------------------------------------------


def _train_tiny(spec: str, tmp_path: Path, extra: str = "") -> tuple:
    config = resolve_config("baseline", "tiny", data=spec, overrides=(
        f"train.epochs=1 train.num_sample_prompts=1 data.cache_dir={tmp_path / 'cache'} {extra}"))
    tracker = MemoryTracker()
    result = train(config, tmp_path / "run", tracker, progress=False)
    return config, tracker, result


def test_tiny_run_trains_on_phoenix_frames(phoenix, tmp_path):
    config, tracker, result = _train_tiny(f"phoenix2014t:{phoenix}", tmp_path)
    assert result.steps == 1 and math.isfinite(result.final_loss) and math.isfinite(tracker.history("val/loss")[0][1])
    assert tracker.params["data.name"] == f"phoenix2014t:{phoenix}"
    assert tracker.tags["data/samples"] == "train 4 of 4, val 2 of 2, test 2 of 2"
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["train_samples"] == 4


def test_tiny_run_trains_on_how2sign_clips_and_evaluates_without_back_translation(how2sign, tmp_path):
    from evaluation.evaluate_model import EvalSettings, Judges, evaluate_model
    from text2sign.checkpoint import load_checkpoint
    from text2sign.diffusion import GaussianDiffusion
    from text2sign.pipeline import TextToSign

    config, tracker, result = _train_tiny(f"how2sign:{how2sign}", tmp_path)
    assert result.steps == 1 and math.isfinite(result.final_loss)
    model, _ = TextToSign.for_inference(config, load_checkpoint(result.last_checkpoint))
    evaluation = evaluate_model(model, GaussianDiffusion(config.diffusion), config,
                                EvalSettings(num_videos=2, steps=2, batch_size=2, guidance_sweep=()),
                                Judges(recognizer_status="unused"), torch.device("cpu"), progress=False)
    assert "has no glosses" in evaluation.tags["eval/backtranslation_status"]
    assert "eval/backtranslation_wer" not in evaluation.metrics and "eval/pose_dtw_mje" not in evaluation.metrics
    assert math.isfinite(evaluation.metrics["eval/temporal_consistency_real"])


def test_recognizer_trains_on_phoenix_without_keypoints_and_pose_is_skipped_with_a_status(phoenix, tmp_path):
    from evaluation.evaluate_model import EvalSettings, Judges, evaluate_model
    from evaluation.judge.training import train_recognizer
    from text2sign.checkpoint import load_checkpoint
    from text2sign.diffusion import GaussianDiffusion
    from text2sign.pipeline import TextToSign

    config, _, result = _train_tiny(f"phoenix2014t:{phoenix}", tmp_path)
    logged = []
    recognizer, scores = train_recognizer(config.data, epochs=1, batch_size=2, lr=1e-3, seed=0, width=16,
                                          progress=False, log=lambda metrics, step: logged.append(metrics))
    assert recognizer.num_keypoints == 0 and "recognizer/test_keypoint_mje" not in scores
    assert "recognizer/keypoint_loss" not in logged[0] and math.isfinite(logged[0]["recognizer/ctc_loss"])
    model, _ = TextToSign.for_inference(config, load_checkpoint(result.last_checkpoint))
    evaluation = evaluate_model(model, GaussianDiffusion(config.diffusion), config,
                                EvalSettings(num_videos=2, steps=2, batch_size=2, steering=False, guidance_sweep=()),
                                Judges(recognizer=recognizer), torch.device("cpu"), progress=False)
    assert math.isfinite(evaluation.metrics["eval/backtranslation_wer"]) and "eval/fsd" in evaluation.metrics
    assert "has no keypoints" in evaluation.tags["eval/pose_status"] and "eval/pose_dtw_mje" not in evaluation.metrics


def test_tiny_run_trains_on_a_folder_corpus_with_two_workers(folder, tmp_path):
    _, tracker, result = _train_tiny(f"folder:{folder}", tmp_path, "data.num_workers=2")
    assert result.steps == 1 and math.isfinite(result.final_loss)
    assert "data/skipped_samples" not in {key for _, key, _ in tracker.metrics}  # raise mode: nothing to count


@pytest.mark.slow
def test_train_entry_point_on_a_folder_corpus_tags_the_dataset_and_logs_skipped_clips(tmp_path):
    from mlflow.tracking import MlflowClient

    root = make_folder(tmp_path / "corpus", sizes={"train": 5, "val": 2, "test": 2})
    broken = root / "clips" / "train_2.mp4"
    broken.write_bytes(b"not a video at all")
    command = [sys.executable, "-m", "mlproject.train", "--scale", "tiny", "--data", f"folder:{root}",
               "--evaluate", "false", "--register", "false", "--overrides",
               f"train.epochs=1 train.num_sample_prompts=1 train.output_dir={tmp_path / 'outputs'} "
               f"data.cache_dir={tmp_path / 'cache'}"]
    env = subprocess_env(tmp_path)

    # data.on_error=raise (the default): the clip is named before the first step.
    failed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
    assert f"error: {broken}: cannot be decoded" in failed.stderr

    command[-1] += " data.on_error=skip"
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("text2sign-ablations").experiment_id])
    run = next(r for r in runs if r.info.status == "FINISHED")
    assert run.data.tags["dataset"] == f"folder:{root}"
    assert run.data.params["data.on_error"] == "skip"
    assert run.data.metrics["data/skipped_samples"] == 1.0
    assert run.data.tags["data/skipped"].startswith(f"1 skipped: train: {broken}: cannot be")
    assert run.data.tags["data/samples"] == "train 4 of 5, val 2 of 2, test 2 of 2"
    assert "left out 1 samples of the train split" in out.stderr
