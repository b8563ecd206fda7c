"""Evaluation's batch size is a speed setting only: each video starts from noise of its own, so the figures are the
same at any batch size, and `auto` takes the batch that is fastest where the evaluation runs."""

from __future__ import annotations

import pytest
import torch

from evaluation.evaluate_model import (BATCH_CANDIDATES, EvalSettings, Judges, evaluate_model, fastest_batch_size,
                                       generate_set, video_seed)
from mlproject.config_from_params import resolve_config
from text2sign.diffusion import GaussianDiffusion
from text2sign.pipeline import TextToSign


@pytest.fixture(scope="module")
def tiny():
    config = resolve_config("baseline", "tiny")
    torch.manual_seed(0)
    return TextToSign(config).eval(), GaussianDiffusion(config.diffusion), config


def _settings(batch_size: int, **changes) -> EvalSettings:
    return EvalSettings(num_videos=5, steps=2, sampler="ddim", guidance=2.0, batch_size=batch_size, steering=False,
                        guidance_sweep=(), **changes)


def test_a_video_is_the_same_whatever_batch_it_is_generated_in(tiny):
    model, diffusion, config = tiny
    texts = [f"text {i}" for i in range(5)]
    alone, _ = generate_set(model, diffusion, texts, config, _settings(1), torch.device("cpu"))
    in_threes, _ = generate_set(model, diffusion, texts, config, _settings(3), torch.device("cpu"))
    together, _ = generate_set(model, diffusion, texts, config, _settings(5), torch.device("cpu"))
    assert torch.allclose(alone, in_threes, atol=1e-4) and torch.allclose(alone, together, atol=1e-4)
    # Each its own noise: not the same video five times, and another evaluation seed draws others.
    assert not torch.allclose(alone[0], alone[1], atol=1e-2)
    other_seed, _ = generate_set(model, diffusion, texts, config, _settings(5, seed=1), torch.device("cpu"))
    assert not torch.allclose(other_seed, together, atol=1e-2)
    assert len({video_seed(s, i) for s in range(3) for i in range(100)}) == 300


def test_auto_measures_each_candidate_batch_and_takes_the_fastest_per_video(tiny, monkeypatch):
    import evaluation.evaluate_model as evaluate_model_module

    model, diffusion, config = tiny
    texts = [f"text {i}" for i in range(8)]
    real = generate_set
    made_up = {1: 0.5, 2: 0.2, 4: 0.3, 8: 0.9}  # seconds per video this fake device takes at each batch size

    def timed(*args, settings, **kwargs):
        videos, _ = real(*args, settings=settings, **kwargs)
        return videos, made_up[settings.batch_size]

    monkeypatch.setattr(evaluate_model_module, "generate_set", timed)
    size, seconds = fastest_batch_size(model, diffusion, texts, config, _settings(0), torch.device("cpu"))
    assert size == 2 and seconds == made_up and tuple(seconds) == BATCH_CANDIDATES
    few, _ = fastest_batch_size(model, diffusion, texts[:3], config, _settings(0), torch.device("cpu"))
    assert few == 2  # no candidate larger than the texts to generate


def test_an_evaluation_at_auto_gives_the_figures_of_one_at_a_fixed_batch_and_tags_what_it_measured():
    config = resolve_config("pixel_only", "tiny")  # an untrained planner plans no joint for the pose metrics
    torch.manual_seed(0)
    model, diffusion = TextToSign(config).eval(), GaussianDiffusion(config.diffusion)
    runs = {size: evaluate_model(model, diffusion, config, _settings(size), Judges(recognizer_status="unused"),
                                 torch.device("cpu"), progress=False) for size in (0, 1)}
    assert torch.allclose(runs[0].generated, runs[1].generated, atol=1e-4)
    assert runs[0].metrics["eval/temporal_consistency"] == pytest.approx(runs[1].metrics["eval/temporal_consistency"], abs=1e-4)
    assert runs[0].tags["eval/batch_size"] in {str(b) for b in BATCH_CANDIDATES}
    assert runs[0].tags["eval/batch_size_timings"].count(" s") == 3  # 1, 2 and 4: 8 is more than the 5 videos
    assert runs[1].tags["eval/batch_size"] == "1" and "eval/batch_size_timings" not in runs[1].tags


def test_the_evaluate_entry_point_takes_auto_or_a_positive_batch_size_and_names_the_choices_otherwise():
    from mlproject.evaluate import parse_args
    from text2sign.config import ConfigError

    def batch_size(text: str) -> int:
        return parse_args(["--run-id", "0" * 32, "--batch-size", text]).settings.batch_size

    assert batch_size("auto") == 0 and batch_size("2") == 2 and parse_args(["--run-id", "0" * 32]).settings.batch_size == 0
    for bad in ("0", "x", "-1"):
        with pytest.raises(ConfigError, match="at least 1, or auto"):
            batch_size(bad)
