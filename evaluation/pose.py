"""How far a generated signer's joints are from where the asked-for signs put them.

Generated clips may sign faster or slower than the reference, so frame i of one is not frame i of the
other: `dtw_mean_joint_error` first aligns the two in time with dynamic time warping, the DTW-MJE of
sign-language production papers (Saunders et al., "Progressive Transformers for End-to-End Sign
Language Production", ECCV 2020). `mean_joint_error` is the plain frame-by-frame version, for two
sequences that share a clock (a recognizer's keypoint estimate of a clip against the clip's truth).
"""

from __future__ import annotations

import numpy as np
import torch

Array = np.ndarray | torch.Tensor


def _as_pose_sequence(name: str, poses: Array) -> np.ndarray:
    array = poses.detach().cpu().numpy() if isinstance(poses, torch.Tensor) else np.asarray(poses)
    if array.ndim != 3 or array.shape[0] == 0:
        raise ValueError(f"{name} must be [T, K, D] with T >= 1 frames, got shape {tuple(array.shape)}")
    return array.astype(np.float64, copy=False)


def frame_distances(predicted: Array, target: Array) -> np.ndarray:
    """Cost of matching every predicted frame with every target frame: [T1, T2], the mean over the K
    joints of the Euclidean distance between corresponding joints (in the keypoints' own units)."""
    predicted = _as_pose_sequence("predicted", predicted)
    target = _as_pose_sequence("target", target)
    if predicted.shape[1:] != target.shape[1:]:
        raise ValueError(
            f"predicted frames have {predicted.shape[1:]} joints x coordinates but target frames have "
            f"{target.shape[1:]}; both must use the same skeleton"
        )
    differences = predicted[:, None] - target[None, :]  # [T1, T2, K, D]
    return np.linalg.norm(differences, axis=-1).mean(axis=-1)


def dtw_mean_joint_error(predicted: Array, target: Array) -> float:
    """DTW-MJE of predicted poses [T1, K, D] against target poses [T2, K, D].

    The optimal warping path matches frames monotonically from (0, 0) to (T1-1, T2-1) with steps
    (1, 0), (0, 1) or (1, 1); the result is the accumulated per-frame cost along it divided by the
    number of matched pairs on it, so a constant error of d on every joint gives exactly d and a
    time-stretched copy gives 0. (Saunders et al.'s code sums absolute coordinate differences and
    divides by the reference length; the mean Euclidean joint distance per matched pair keeps the
    units of the keypoints and does not grow with the tempo mismatch.)
    """
    cost = frame_distances(predicted, target)
    rows, cols = cost.shape
    # accumulated[i, j]: the cheapest path cost from (0, 0) to (i, j); steps[i, j]: its number of pairs,
    # the tie-break between equally cheap paths being the one with more pairs (lower mean).
    accumulated = np.full((rows + 1, cols + 1), np.inf)
    steps = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    accumulated[0, 0] = 0.0
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            candidates = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            best = min(candidates, key=lambda c: (accumulated[c], -steps[c]))
            accumulated[i, j] = accumulated[best] + cost[i - 1, j - 1]
            steps[i, j] = steps[best] + 1
    return float(accumulated[rows, cols] / steps[rows, cols])


def mean_joint_error(predicted: Array, target: Array) -> float:
    """Mean Euclidean joint distance between poses [T, K, D] of two sequences that share a clock
    (frame t against frame t), averaged over frames and joints."""
    predicted = _as_pose_sequence("predicted", predicted)
    target = _as_pose_sequence("target", target)
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted poses {predicted.shape} and target poses {target.shape} differ in shape; "
            "use dtw_mean_joint_error for sequences of different lengths"
        )
    return float(np.linalg.norm(predicted - target, axis=-1).mean())
