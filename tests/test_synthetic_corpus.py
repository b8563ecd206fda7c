"""The built-in synthetic signing corpus: lexicon, grammar, renderer and dataset."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from text2sign import skeleton
from text2sign.config import DataConfig
from text2sign.data import build_dataset, collate
from text2sign.data import synthetic
from text2sign.data.grammar import ANIMALS, MAX_GLOSSES, QUALITIES, THINGS, generate_sentence
from text2sign.data.lexicon import HAND_SHAPES, LEXICON, MOTION_KINDS, REST
from text2sign.data.render import DEFAULT_APPEARANCE, KEYPOINT_NAMES, render
from text2sign.data.synthetic import SyntheticSigningCorpus

SMALL = DataConfig(image_size=32, num_frames=8, train_size=64, val_size=16, test_size=16)
REPO = Path(__file__).resolve().parents[1]


def _sentences(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [generate_sentence(rng) for _ in range(count)]


def _same_sample(a: dict, b: dict) -> bool:
    return (
        torch.equal(a["video"], b["video"])
        and torch.equal(a["keypoints"].nan_to_num(), b["keypoints"].nan_to_num())
        and a["text"] == b["text"]
        and a["glosses"] == b["glosses"]
    )


# ---------------------------------------------------------------------------------------------
# Determinism


def test_same_index_gives_same_sample_regardless_of_global_seeds():
    corpus = SyntheticSigningCorpus(SMALL, "train", cache=False)
    torch.manual_seed(1)
    np.random.seed(1)
    first = corpus[5]
    torch.manual_seed(2)
    np.random.seed(2)
    torch.rand(10), np.random.rand(10)
    assert _same_sample(first, corpus[5])
    assert _same_sample(first, SyntheticSigningCorpus(SMALL, "train")[5])


def test_cached_sample_equals_freshly_rendered_sample():
    cached = SyntheticSigningCorpus(SMALL, "val", cache=True)
    fresh = SyntheticSigningCorpus(SMALL, "val", cache=False)
    first = cached[3]
    assert _same_sample(first, cached[3])
    assert _same_sample(first, fresh[3])


def test_keypoints_drawn_without_the_video_are_the_sample_s_own():
    corpus = SyntheticSigningCorpus(SMALL, "train", cache=False)
    for index in range(6):
        assert torch.equal(corpus.keypoints_of(index).nan_to_num(), corpus[index]["keypoints"].nan_to_num()), index


def test_finger_keypoints_add_points_and_leave_the_video_as_it_was():
    with_fingers = SyntheticSigningCorpus(dataclasses.replace(SMALL, finger_keypoints=True), "train", cache=False)[2]
    plain = SyntheticSigningCorpus(SMALL, "train", cache=False)[2]
    assert torch.equal(with_fingers["video"], plain["video"])
    assert skeleton.present(with_fingers["keypoints"]).sum(dim=1).tolist() == [28] * SMALL.num_frames
    body = [slot for slot in skeleton.SYNTHETIC_SLOTS if slot not in (skeleton.RIGHT_HAND + 12, skeleton.LEFT_HAND + 12)]
    assert torch.equal(with_fingers["keypoints"][:, body], plain["keypoints"][:, body])


def test_sample_is_identical_in_another_process():
    script = (
        "import hashlib; from text2sign.config import DataConfig; "
        "from text2sign.data.synthetic import SyntheticSigningCorpus; "
        "s = SyntheticSigningCorpus(DataConfig(image_size=32, num_frames=8, train_size=64, val_size=16, test_size=16), 'test')[7]; "
        "print(hashlib.sha256(s['video'].numpy().tobytes() + s['text'].encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    sample = SyntheticSigningCorpus(SMALL, "test")[7]
    here = hashlib.sha256(sample["video"].numpy().tobytes() + sample["text"].encode()).hexdigest()
    assert out.stdout.strip() == here


def test_corpus_seed_changes_the_corpus():
    other = dataclasses.replace(SMALL, corpus_seed=1)
    assert SyntheticSigningCorpus(SMALL, "train").texts != SyntheticSigningCorpus(other, "train").texts


# ---------------------------------------------------------------------------------------------
# Shapes, ranges, motion


@pytest.mark.parametrize("size, frames", [(16, 4), (64, 16), (8, 2), (48, 5), (256, 3)])
def test_video_and_keypoints_have_the_configured_shape_and_range(size, frames):
    config = DataConfig(image_size=size, num_frames=frames, train_size=3, val_size=1, test_size=1)
    sample = SyntheticSigningCorpus(config, "train")[1]
    video, keypoints = sample["video"], sample["keypoints"]
    assert video.shape == (3, frames, size, size) and video.dtype == torch.float32
    assert keypoints.shape == (frames, skeleton.NUM_POINTS, 3) and keypoints.dtype == torch.float32
    assert video.min() >= -1.0 and video.max() <= 1.0
    assert video.std() > 0.05, "the frame should show a signer, not a flat colour"
    seen = keypoints[:, list(skeleton.SYNTHETIC_SLOTS)]  # the signer's 10 points; the other 40 are missing
    assert seen[..., :2].min() >= 0.0 and seen[..., :2].max() <= 1.0 and (seen[..., 2] == 1).all()
    assert skeleton.present(keypoints).sum() == frames * len(KEYPOINT_NAMES)


def test_keypoints_stay_inside_the_frame_for_every_sign_and_extreme_signer():
    extremes = [
        dataclasses.replace(DEFAULT_APPEARANCE, body_scale=1.08, offset=(dx, dy), speed=speed)
        for dx in (-0.05, 0.05)
        for dy in (-0.03, 0.03)
        for speed in (1.0, 1.35)
    ]
    for gloss in LEXICON:
        for appearance in extremes:
            _, keypoints = render([gloss], appearance, 8, 12)
            assert keypoints.min() >= 0.0 and keypoints.max() <= 1.0, (gloss, appearance)


def test_videos_move():
    corpus = SyntheticSigningCorpus(SMALL, "train")
    for index in range(8):
        video = corpus[index]["video"]
        change_from_first_frame = (video - video[:, :1]).abs().amax(dim=(0, 2, 3))
        assert change_from_first_frame.max() > 0.5, corpus.glosses_of(index)
        assert (video[:, 1:] - video[:, :-1]).abs().mean() > 1e-3


def test_different_glosses_give_different_videos():
    videos = np.stack([render([g], DEFAULT_APPEARANCE, 24, 8)[0].ravel() for g in LEXICON])
    glosses = list(LEXICON)
    for i in range(len(videos) - 1):
        largest_pixel_change = np.abs(videos[i + 1 :] - videos[i]).max(axis=1)
        closest = int(largest_pixel_change.argmin())
        assert largest_pixel_change[closest] > 0.25, (glosses[i], glosses[i + 1 + closest])


def test_faster_signer_finishes_early_and_holds_the_last_pose():
    slow = dataclasses.replace(DEFAULT_APPEARANCE, speed=1.0)
    fast = dataclasses.replace(DEFAULT_APPEARANCE, speed=1.35)
    _, slow_keypoints = render(["HELLO", "GO"], slow, 32, 16)
    _, fast_keypoints = render(["HELLO", "GO"], fast, 32, 16)
    assert not np.allclose(slow_keypoints[-1], slow_keypoints[-2])
    assert np.allclose(fast_keypoints[-1], fast_keypoints[-2])
    assert np.allclose(fast_keypoints[0], fast_keypoints[1]), "the spare time is also spent at rest before signing"


def test_render_speed_at_64x64_with_16_frames():
    sentences = _sentences(60)
    render(sentences[0].glosses, DEFAULT_APPEARANCE, 64, 16)
    start = time.perf_counter()
    for sentence in sentences:
        render(sentence.glosses, DEFAULT_APPEARANCE, 64, 16)
    samples_per_second = len(sentences) / (time.perf_counter() - start)
    assert samples_per_second > 50  # about 450 on one 2024 server core; the floor is for slow CI


# ---------------------------------------------------------------------------------------------
# Lexicon


def test_lexicon_has_fifty_glosses_of_every_handedness_motion_kind_and_hand_shape():
    signs = list(LEXICON.values())
    assert len(signs) >= 50
    assert {s.handedness for s in signs} == {"one-handed", "symmetric", "alternating", "dominant-on-base"}
    assert {s.dominant.path.kind for s in signs} == set(MOTION_KINDS)
    assert any(s.dominant.path.kind == "repeat" and s.dominant.path.times >= 3 for s in signs)
    used_shapes = {s.dominant.shape for s in signs} | {s.dominant.shape_end for s in signs}
    assert set(HAND_SHAPES) <= used_shapes


def test_every_gloss_moves_differently_from_every_other():
    """Two signs count as different when a hand shape differs, or a hand is 0.15 shoulder
    half-widths elsewhere, or points 15 degrees otherwise at some instant."""
    u = np.linspace(0.0, 1.0, 13)
    descriptions = {}
    for gloss, sign in LEXICON.items():
        dominant, non_dominant = sign.tracks(u)
        non_dominant_motion = sign.non_dominant or REST
        shapes = (sign.dominant.shape, sign.dominant.shape_end, non_dominant_motion.shape, non_dominant_motion.shape_end)
        descriptions[gloss] = (shapes, np.concatenate([dominant.centre, non_dominant.centre], 1),
                               np.stack([dominant.angle, non_dominant.angle], 1))
    glosses = list(descriptions)
    for i, a in enumerate(glosses):
        for b in glosses[i + 1 :]:
            (shapes_a, where_a, angle_a), (shapes_b, where_b, angle_b) = descriptions[a], descriptions[b]
            moved = np.abs(where_a - where_b).max() > 0.15
            turned = np.degrees(np.abs(np.angle(np.exp(1j * (angle_a - angle_b))))).max() > 15
            assert shapes_a != shapes_b or moved or turned, (a, b)


# ---------------------------------------------------------------------------------------------
# Grammar


def test_gloss_sequences_have_one_to_four_known_signs():
    sentences = _sentences(3000)
    assert {len(s.glosses) for s in sentences} == set(range(1, MAX_GLOSSES + 1))
    assert all(g in LEXICON for s in sentences for g in s.glosses)


def test_grammar_generates_thousands_of_distinct_texts():
    assert len({s.text for s in _sentences(5000)}) > 3000


def test_synonyms_map_different_texts_to_the_same_glosses():
    sentences = _sentences(4000)
    hello_texts = {s.text for s in sentences if s.glosses == ("HELLO",)}
    assert {"Hi!", "Hello!"} <= hello_texts or {"Hi.", "Hello."} <= hello_texts, hello_texts
    for s in sentences:
        words = set(re.findall(r"[a-z]+", s.text.lower()))
        if words & {"home", "house"}:
            assert "HOUSE" in s.glosses, s
        if s.text.lower().startswith(("hi", "hello", "hey")):
            assert s.glosses[0] == "HELLO", s
    texts_per_sequence: dict[tuple[str, ...], set[str]] = {}
    for s in sentences:
        texts_per_sequence.setdefault(s.glosses, set()).add(s.text)
    assert sum(len(texts) > 1 for texts in texts_per_sequence.values()) > 100


def test_grammar_reorders_english_into_sign_order():
    sentences = _sentences(4000)
    time_last = [s for s in sentences if s.text.lower().rstrip(".?!").endswith("tomorrow")]
    assert time_last and all(s.glosses[0] == "TOMORROW" for s in time_last), "time signs come first"

    wh = {"where": "WHERE", "what": "WHAT", "who": "WHO", "when": "WHEN", "why": "WHY", "how": "HOW"}
    questions = [s for s in sentences if s.text.endswith("?")]
    assert questions
    for s in questions:
        question_word = re.search(r"\b(where|what|who|when|why|how)\b", s.text.lower()).group()
        assert s.glosses[-1] == wh[question_word], s

    adjective_words = {w: a.gloss for a in QUALITIES for w in a.words}
    noun_words = {w: n.gloss for n in THINGS + ANIMALS for w in n.words}
    described = 0
    for s in sentences:
        found = re.search(r"\ban? (\w+) (\w+)\.$", s.text)
        if found and found.group(1) in adjective_words and found.group(2) in noun_words:
            adjective, noun = adjective_words[found.group(1)], noun_words[found.group(2)]
            assert s.glosses.index(noun) < s.glosses.index(adjective), s
            described += 1
    assert described > 10, "adjectives follow their noun"

    # "I like coffee." -> COFFEE I LIKE: the liked thing is signed first, as the topic.
    likes = [s for s in sentences if re.fullmatch(r"I (like|enjoy|want|love|adore) (the |some |an? )?(?!you|us|them)\w+\.", s.text)]
    assert likes
    for s in likes:
        assert s.glosses[-2] == "I" and s.glosses[-1] in ("LIKE", "WANT", "LOVE") and s.glosses[0] != "I", s


def test_negation_is_signed_last():
    negated = [s for s in _sentences(3000) if re.search(r"\bnot\b|n't", s.text)]
    assert negated
    for s in negated:
        assert s.glosses[-1] == "NOT" and "NOT" not in s.glosses[:-1], s


# ---------------------------------------------------------------------------------------------
# Splits and dataset interface


def test_val_and_test_gloss_sequences_never_occur_in_training():
    config = DataConfig(train_size=2000, val_size=300, test_size=300)
    sequences = {}
    for split in ("train", "val", "test"):
        corpus = SyntheticSigningCorpus(config, split)
        sequences[split] = {corpus.glosses_of(i) for i in range(len(corpus))}
    assert not sequences["train"] & sequences["val"]
    assert not sequences["train"] & sequences["test"]
    assert not sequences["val"] & sequences["test"]
    seen_in_training = {g for seq in sequences["train"] for g in seq}
    held_out_signs = {g for split in ("val", "test") for seq in sequences[split] for g in seq}
    assert held_out_signs <= seen_in_training, "held-out splits recombine signs seen in training"


def test_texts_and_glosses_are_available_without_rendering(monkeypatch):
    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered a video")

    monkeypatch.setattr(synthetic, "render", no_rendering)
    corpus = SyntheticSigningCorpus(DataConfig(train_size=7096), "train")
    texts = corpus.texts
    assert len(texts) == 7096 and all(isinstance(t, str) and t for t in texts)
    assert 1 <= len(corpus.glosses_of(7095)) <= MAX_GLOSSES
    assert corpus.vocabulary == sorted(LEXICON)


def test_build_dataset_rejects_an_unknown_corpus_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown corpus 'phoenix:/data'; expected synthetic, phoenix2014t:PATH"):
        build_dataset(DataConfig(name="phoenix:/data"), "train")


def test_build_dataset_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="split"):
        build_dataset(SMALL, "training")


def test_collate_stacks_videos_and_keypoints_and_keeps_texts_and_glosses():
    corpus = build_dataset(SMALL, "train")
    batch = collate([corpus[0], corpus[1], corpus[2]])
    assert batch["video"].shape == (3, 3, 8, 32, 32)
    assert batch["keypoints"].shape == (3, 8, skeleton.NUM_POINTS, 3)
    assert batch["texts"] == corpus.texts[:3]
    assert batch["glosses"] == [corpus.glosses_of(i) for i in range(3)]


def test_prerendering_in_processes_gives_the_clips_rendering_on_demand_gives():
    config = DataConfig(image_size=16, num_frames=4, train_size=12, val_size=2, test_size=2)
    on_demand = synthetic.SyntheticSigningCorpus(config, "train")
    ahead = synthetic.SyntheticSigningCorpus(config, "train")
    ahead.prerender(processes=2)
    assert len(ahead._cache) == len(ahead)
    for index in range(len(ahead)):
        assert torch.equal(ahead[index]["video"], on_demand[index]["video"])
        assert torch.equal(ahead[index]["keypoints"].nan_to_num(), on_demand[index]["keypoints"].nan_to_num())


def test_signer_variation_zero_gives_every_clip_the_default_signer_and_one_keeps_the_corpus():
    small = dict(image_size=16, num_frames=4, train_size=6)
    varied = SyntheticSigningCorpus(DataConfig(**small), "train")
    fixed = SyntheticSigningCorpus(DataConfig(**small, signer_variation=0.0), "train")
    half = SyntheticSigningCorpus(DataConfig(**small, signer_variation=0.5), "train")
    assert varied.texts == fixed.texts  # the same sentences, only the signers differ
    for index in range(6):
        assert fixed.appearance_of(index) == DEFAULT_APPEARANCE
        drawn = varied.appearance_of(index)
        assert drawn == synthetic.Appearance.sample(varied._rng(index, stream=1))  # 1: unchanged from before
        assert half.appearance_of(index).body_scale == pytest.approx((drawn.body_scale + 1.0) / 2)
        assert half.appearance_of(index).skin == pytest.approx(
            [(d + s) / 2 for d, s in zip(DEFAULT_APPEARANCE.skin, drawn.skin)])
    video, _ = render(fixed.glosses_of(0), DEFAULT_APPEARANCE, 16, 4)
    stored = np.round((video + 1.0) * 127.5) / 127.5 - 1.0  # the corpus keeps uint8 frames
    np.testing.assert_allclose(fixed[0]["video"].numpy(), stored, atol=1e-5)


def test_signer_variation_is_checked_and_named_in_the_split_digest(tmp_path):
    from text2sign.config import Config, ConfigError, validate
    from text2sign.data.fingerprint import split_digest

    with pytest.raises(ConfigError, match=r"data.signer_variation: 1.5 is not allowed; it must be in \[0, 1\]"):
        validate(dataclasses.replace(Config(), data=DataConfig(signer_variation=1.5)))
    with pytest.raises(ConfigError, match="1 for a corpus of filmed clips"):
        validate(dataclasses.replace(Config(), data=DataConfig(name=f"folder:{tmp_path}", signer_variation=0.0)))
    # The fingerspelling lexicon is drawn on the synthetic signer, whose looks the setting varies.
    validate(dataclasses.replace(Config(), data=DataConfig(name="fingerspelling", signer_variation=0.0)))
    texts = ["a", "b"]
    assert split_digest(DataConfig(), texts) == split_digest(DataConfig(signer_variation=1.0), texts)
    assert split_digest(DataConfig(signer_variation=0.0), texts) != split_digest(DataConfig(), texts)


def test_evaluation_asked_for_more_videos_than_the_test_split_draws_more_test_sentences_keeping_the_first():
    # Corpus BLEU-4 on a few short sentences hangs on one or two 4-gram matches; a run's test split can be
    # widened at evaluation without retraining, and the clips it was evaluated on before stay in the set.
    from evaluation.evaluate_model import EvalSettings, Judges, evaluate_model
    from mlproject.config_from_params import resolve_config
    from text2sign.data import build_dataset
    from text2sign.diffusion import GaussianDiffusion
    from text2sign.pipeline import TextToSign

    config = resolve_config("pixel_only", "tiny")
    widened = config.data.test_size + 3
    evaluation = evaluate_model(TextToSign(config).eval(), GaussianDiffusion(config.diffusion), config,
                                EvalSettings(num_videos=widened, steps=1, batch_size=4, steering=False, guidance_sweep=()),
                                Judges(recognizer_status="unused"), torch.device("cpu"), progress=False)
    texts = [row["text"] for row in evaluation.per_video]
    assert len(texts) == widened and evaluation.real.shape[0] == widened
    assert texts[: config.data.test_size] == build_dataset(config.data, "test").texts
