"""Does the text steer the pose? `steering`'s question asked in pose space, where no glosses are needed.

For test clip i, a pose sequence P_i made from caption i is compared, by DTW-MJE in the signer's body units
over the points the clip's keypoints have (`evaluation.metrics.pose`), with the true pose of clip i and with the true
pose of another clip j = partner(i) (the derangement that also pairs the shuffled captions of `steering`). A
P that follows its caption is nearer its own clip's pose than another's:

    pose steer gap  = mean over i of  DTW(P_i, truth_j) - DTW(P_i, truth_i)

near 0 for a P that ignores its caption; its `_ci95` is the half-width of a bootstrap 95% interval over the
clips. Two kinds of P:

    plan    the pose planner's keypoints for the caption                      eval/pose_plan_*
    video   the generated video, read back into keypoints by the judge      eval/pose_dtw_mje, eval/pose_video_*

and each beside its ceiling from the real clips (`*_real`): for the plan, P_i = truth_i itself (its gap is how
far apart two clips' poses are); for the video, the judge's reading of the real clip i.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evaluation.metrics.pose import Array, body_units, dtw_mean_joint_error
from text2sign.training.text_loss_gap import derangement

BOOTSTRAP_SAMPLES = 2000


def pose_distances(poses: Sequence[Array], truths: Sequence[Array], partner: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: DTW-MJE of P_i against its own clip's true pose, and against its partner's, in body units."""
    poses = [body_units(p) for p in poses]
    truths = [body_units(t) for t in truths]
    own = np.array([dtw_mean_joint_error(p, t) for p, t in zip(poses, truths)])
    other = np.array([dtw_mean_joint_error(p, truths[j]) for p, j in zip(poses, partner)])
    return own, other


def bootstrap_ci95(values: np.ndarray, seed: int, samples: int = BOOTSTRAP_SAMPLES) -> float:
    """Half-width of the percentile bootstrap 95% interval of the mean of `values`, resampling them."""
    draws = np.random.default_rng(seed).integers(0, len(values), size=(samples, len(values)))
    low, high = np.percentile(values[draws].mean(axis=1), [2.5, 97.5])
    return float(high - low) / 2.0


def pose_steering(name: str, poses: Sequence[Array], truths: Sequence[Array], seed: int) -> tuple[dict[str, float], np.ndarray]:
    """`eval/{name}_dtw_mje`, `eval/{name}_steer_gap` and `eval/{name}_steer_gap_ci95` of the poses `poses` [T, K, 2|3]
    made for the captions of clips whose true poses are `truths` [T, K, 3]; and the per-clip DTW-MJE (NaN for a
    clip in which the detector saw nobody, which is left out: there is nothing to compare with)."""
    seen = [i for i, t in enumerate(truths) if np.asarray(t)[..., 2].max() > 0]
    per_clip = np.full(len(truths), np.nan)
    if len(seen) < 2:
        return {}, per_clip
    partner = derangement(len(seen), seed)
    own, other = pose_distances([poses[i] for i in seen], [truths[i] for i in seen], partner)
    per_clip[seen] = own
    gaps = other - own
    metrics = {f"eval/{name}_dtw_mje": float(own.mean()), f"eval/{name}_steer_gap": float(gaps.mean()),
               f"eval/{name}_steer_gap_ci95": bootstrap_ci95(gaps, seed)}
    return metrics, per_clip
