"""Conditioning checks: a model that follows its text shows a steer gap, one that ignores it does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.evaluate_model import steering_count
from evaluation.metrics.steering import condition_texts, guidance_sweep, paired_gap_ci95, score_steering, shuffled_texts
from evaluation.study_analysis.plots import plot_guidance_sweep

# Texts and their glosses; the fake models below "sign" a text by encoding its glosses into a video.
LEXICON = {f"text {i}": [f"G{i}", f"H{i}", f"K{i}", "END"] for i in range(12)}
TEXTS = list(LEXICON)
GLOSSES = [LEXICON[t] for t in TEXTS]


def _signing_model(follows_text: bool):
    """generate(texts) -> videos whose first pixel is the index of the text signed; -1 = nothing."""

    def generate(texts: list[str]) -> torch.Tensor:
        videos = torch.zeros(len(texts), 3, 2, 4, 4)
        for i, text in enumerate(texts):
            videos[i, 0, 0, 0, 0] = TEXTS.index(text) if follows_text and text in LEXICON else 0
        return videos

    return generate


def _read(videos: torch.Tensor) -> tuple[list[list[str]], np.ndarray]:
    indices = [int(v[0, 0, 0, 0]) for v in videos]
    return [GLOSSES[i] for i in indices], np.stack([np.eye(12)[i] for i in indices]).astype(float)


def test_shuffled_texts_never_keep_a_prompts_own_text_and_are_reproducible():
    for seed in range(20):
        shuffled = shuffled_texts(TEXTS, seed)
        assert sorted(shuffled) == sorted(TEXTS)
        assert all(a != b for a, b in zip(TEXTS, shuffled))
        assert shuffled == shuffled_texts(TEXTS, seed)
    assert shuffled_texts(TEXTS, 0) != shuffled_texts(TEXTS, 1)
    with pytest.raises(ValueError, match="at least 2"):
        shuffled_texts(["one"], 0)


def test_conditions_are_true_empty_and_shuffled_texts_in_prompt_order():
    prompts = condition_texts(TEXTS, seed=3)
    assert prompts["true"] == TEXTS and prompts["empty"] == [""] * len(TEXTS)
    assert prompts["shuffled"] == shuffled_texts(TEXTS, 3)


def test_a_model_that_follows_its_text_has_a_large_steer_gap():
    generate = _signing_model(follows_text=True)
    true_read, _ = _read(generate(TEXTS))
    result = score_steering(TEXTS, GLOSSES, true_read, generate, _read, seed=0)
    assert result.metrics["eval/steer_bt_wer_true"] == 0.0
    assert result.metrics["eval/steer_bt_wer_shuffled"] > 0.5
    assert result.metrics["eval/steer_gap"] == result.metrics["eval/steer_bt_wer_shuffled"]
    # A large gap from 12 videos is still clearly above its own uncertainty.
    assert result.metrics["eval/steer_gap"] > 2 * result.metrics["eval/steer_gap_ci95"]
    assert result.texts["shuffled"] == shuffled_texts(TEXTS, 0)


def test_a_model_that_ignores_its_text_has_no_steer_gap():
    generate = _signing_model(follows_text=False)
    true_read, _ = _read(generate(TEXTS))
    result = score_steering(TEXTS, GLOSSES, true_read, generate, _read, seed=0)
    assert result.metrics["eval/steer_gap"] == 0.0 and result.metrics["eval/steer_gap_ci95"] == 0.0
    assert result.metrics["eval/steer_bt_wer_true"] == result.metrics["eval/steer_bt_wer_empty"] > 0.5


def test_gap_interval_is_paired_over_videos():
    references = [["A", "B"]] * 10
    perfect = [["A", "B"]] * 10
    # Every shuffled video gets exactly one of its two words wrong: the gap is 0.5 with no spread at all.
    one_wrong = [["A", "X"]] * 10
    assert paired_gap_ci95(references, perfect, one_wrong, seed=0) == 0.0
    mixed = [["A", "B"]] * 5 + [["X", "Y"]] * 5
    assert paired_gap_ci95(references, perfect, mixed, seed=0) > 0.1


def test_guidance_sweep_scores_each_scale_and_reuses_the_set_already_generated():
    calls: list[float] = []
    follows = _signing_model(follows_text=True)
    ignores = _signing_model(follows_text=False)

    def generate_at(scale: float, texts: list[str]):
        calls.append(scale)
        # A stand-in for guidance: above 1 the model follows its text, at 1 it does not.
        return (follows if scale > 1 else ignores)(texts), 0.5 * scale

    real_features = _read(follows(TEXTS))[1]
    already = {4.0: (*_read(follows(TEXTS)), 2.0)}
    rows = guidance_sweep([1.0, 2.0, 4.0], TEXTS, GLOSSES, real_features, generate_at, _read, already)
    assert calls == [1.0, 2.0]
    assert [row["guidance"] for row in rows] == [1.0, 2.0, 4.0]
    assert rows[0]["backtranslation_wer"] > 0.5 and rows[1]["backtranslation_wer"] == 0.0
    assert rows[1]["backtranslation_bleu4"] == pytest.approx(100.0)
    assert rows[0]["fsd"] > rows[1]["fsd"]
    assert [row["inference_s_per_video"] for row in rows] == [0.5, 1.0, 2.0]


def test_guidance_sweep_plot_is_a_png(tmp_path):
    rows = [{"guidance": g, "backtranslation_wer": w, "fsd": f} for g, w, f in ((1, 0.9, 50), (4, 0.5, 40), (7.5, 0.4, 60))]
    path = plot_guidance_sweep(rows, tmp_path / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_guidance_sweep([], tmp_path / "empty.png").exists()


def test_steering_check_takes_the_first_videos_or_all_of_them_for_zero():
    assert steering_count(128, 64) == 64
    assert steering_count(32, 64) == 32
    assert steering_count(128, 0) == 128
