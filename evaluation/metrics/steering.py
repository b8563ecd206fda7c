"""Does the text steer the video? Conditioning checks and the guidance-scale sweep.

A text-to-video model can score well on video metrics while ignoring its text: it then signs the same
thing whatever it is asked. The check is to ask for the wrong thing and see the signing change. The
same test texts are generated three ways, from the same starting noise so that only the text differs:

    true       each prompt with its own text
    empty      the empty text: what the model signs with no instruction
    shuffled   each prompt given another prompt's text (a derangement: no prompt keeps its own)

and the recognizer's reading of each is scored by WER against the *true* glosses. A model that follows
its text reads well under `true` and badly under `shuffled`; `steer_gap` = WER(shuffled) - WER(true)
is near 0 for a model that does not. `steer_gap_ci95` is the half-width of a paired bootstrap 95%
interval over the videos, so one run already says whether its gap is more than noise.

The guidance sweep generates the true texts at several classifier-free guidance scales and reports
back-translation WER/BLEU-4 (fidelity to the text) and FSD (closeness to real videos) at each: the
trade-off a user picks the sampling guidance from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from evaluation.metrics.frechet import frechet_distance_features
from evaluation.metrics.text_metrics import bleu4, edit_distance, word_error_rate
from text2sign.training.text_loss_gap import shuffled_texts

CONDITIONS = ("true", "empty", "shuffled")
BOOTSTRAP_SAMPLES = 2000

Glosses = Sequence[str]
# texts -> videos [N, 3, T, H, W]; each caller fixes the guidance scale and the starting noise per index.
GenerateFn = Callable[[list[str]], Tensor]
# videos -> (recognized glosses per video, recognizer features [N, D])
ReadFn = Callable[[Tensor], tuple[list[list[str]], np.ndarray]]


def condition_texts(texts: Sequence[str], seed: int) -> dict[str, list[str]]:
    return {"true": list(texts), "empty": [""] * len(texts), "shuffled": shuffled_texts(texts, seed)}


def paired_gap_ci95(references: Sequence[Glosses], true_hyps: Sequence[Glosses], shuffled_hyps: Sequence[Glosses],
                    seed: int, samples: int = BOOTSTRAP_SAMPLES) -> float:
    """Half-width of the 95% bootstrap interval of WER(shuffled) - WER(true), resampling videos.

    Both WERs are corpus-level (edits summed over videos / reference words summed), as the point
    estimate is, and each resample draws the same videos for both conditions: the pairing removes the
    variance that comes from some texts being harder than others.
    """
    lengths = np.array([len(r) for r in references], dtype=float)
    edits_true = np.array([edit_distance(r, h) for r, h in zip(references, true_hyps)], dtype=float)
    edits_shuffled = np.array([edit_distance(r, h) for r, h in zip(references, shuffled_hyps)], dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(references), size=(samples, len(references)))
    words = lengths[draws].sum(axis=1)
    gaps = (edits_shuffled[draws].sum(axis=1) - edits_true[draws].sum(axis=1)) / np.maximum(words, 1.0)
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(high - low) / 2.0


@dataclass
class SteeringResult:
    metrics: dict[str, float]
    recognized: dict[str, list[list[str]]]  # condition -> the recognizer's glosses per video
    texts: dict[str, list[str]]  # condition -> the text each video was generated from


def score_steering(texts: Sequence[str], glosses: Sequence[Glosses], true_recognized: list[list[str]],
                   generate: GenerateFn, read: ReadFn, seed: int) -> SteeringResult:
    """Back-translation WER under each condition, against the true glosses, and the gap.

    `true_recognized` is the recognizer's reading of the videos already generated from the true texts
    (the main evaluation set), generated with the same per-index noise that `generate` uses.
    """
    prompts = condition_texts(texts, seed)
    recognized = {"true": true_recognized}
    for condition in ("empty", "shuffled"):
        recognized[condition], _ = read(generate(prompts[condition]))
    metrics = {f"eval/steer_bt_wer_{c}": word_error_rate(glosses, recognized[c]) for c in CONDITIONS}
    metrics["eval/steer_gap"] = metrics["eval/steer_bt_wer_shuffled"] - metrics["eval/steer_bt_wer_true"]
    metrics["eval/steer_gap_ci95"] = paired_gap_ci95(glosses, recognized["true"], recognized["shuffled"], seed)
    return SteeringResult(metrics, recognized, prompts)


def guidance_sweep(scales: Sequence[float], texts: Sequence[str], glosses: Sequence[Glosses],
                   real_features: np.ndarray, generate_at: Callable[[float, list[str]], tuple[Tensor, float]],
                   read: ReadFn, already: dict[float, tuple[list[list[str]], np.ndarray, float]]) -> list[dict[str, float]]:
    """One row per guidance scale: back-translation WER and BLEU-4, FSD, seconds per video.

    `generate_at(scale, texts)` returns the videos and the seconds per video; `already` holds scales
    whose set was generated before (the main evaluation's), as (recognized, features, s per video).
    """
    rows = []
    for scale in scales:
        if scale in already:
            recognized, features, seconds = already[scale]
        else:
            videos, seconds = generate_at(scale, list(texts))
            recognized, features = read(videos)
        rows.append({
            "guidance": float(scale),
            "backtranslation_wer": word_error_rate(glosses, recognized),
            "backtranslation_bleu4": bleu4(glosses, recognized),
            "fsd": frechet_distance_features(features, real_features),
            "inference_s_per_video": seconds,
        })
    return rows
