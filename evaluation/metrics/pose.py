"""How far a generated signer's joints are from where the asked-for signs put them.

Generated clips may sign faster or slower than the reference, so frame i of one is not frame i of the
other: `dtw_mean_joint_error` first aligns the two in time with dynamic time warping, the DTW-MJE of
sign-language production papers (Saunders et al., "Progressive Transformers for End-to-End Sign
Language Production", ECCV 2020). `mean_joint_error` is the plain frame-by-frame version, for two
sequences that share a clock (a recognizer's keypoint estimate of a clip against the clip's truth).

Poses are [T, K, 2] (every joint seen) or [T, K, 3] with a confidence (`text2sign.skeleton`): a joint missing
in either sequence is left out of that pair of frames, and a frame with no joint seen at all (no person) is
left out of the sequence.
"""

from __future__ import annotations

import numpy as np
import torch

from text2sign import skeleton

Array = np.ndarray | torch.Tensor


def _as_pose_sequence(name: str, poses: Array) -> tuple[np.ndarray, np.ndarray]:
    """(positions [T, K, 2], seen bool [T, K]) of a pose sequence, its frames with nothing seen left out."""
    array = poses.detach().cpu().float().numpy() if isinstance(poses, torch.Tensor) else np.asarray(poses)
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[2] not in (2, 3):
        raise ValueError(f"{name} must be [T, K, 2] or [T, K, 3] with T >= 1 frames, got shape {tuple(array.shape)}")
    seen, positions = _seen(array), _positions(array)
    kept = seen.any(axis=1)
    if not kept.any():
        raise ValueError(f"{name} has no frame with a joint seen")
    return positions[kept], seen[kept]


def frame_distances(predicted: Array, target: Array) -> np.ndarray:
    """Cost of matching every predicted frame with every target frame: [T1, T2], the mean over the joints
    seen in both of the Euclidean distance between corresponding joints (in the keypoints' own units). A pair
    of frames with no joint in common costs the mean of the pairs that have one: it says nothing either way."""
    (predicted, seen_p), (target, seen_t) = _as_pose_sequence("predicted", predicted), _as_pose_sequence("target", target)
    if predicted.shape[1:] != target.shape[1:]:
        raise ValueError(
            f"predicted frames have {predicted.shape[1:]} joints x coordinates but target frames have "
            f"{target.shape[1:]}; both must use the same skeleton"
        )
    both = seen_p[:, None] & seen_t[None, :]  # [T1, T2, K]
    distances = np.linalg.norm(predicted[:, None] - target[None, :], axis=-1)  # [T1, T2, K]
    counts = both.sum(-1)
    cost = np.where(both, distances, 0.0).sum(-1) / np.maximum(counts, 1)
    if not counts.any():
        raise ValueError("predicted and target poses have no joint seen in both")
    return np.where(counts > 0, cost, cost[counts > 0].mean())


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
    (frame t against frame t), averaged over frames and the joints seen in both."""
    if predicted.shape[:2] != target.shape[:2]:
        raise ValueError(
            f"predicted poses {tuple(predicted.shape)} and target poses {tuple(target.shape)} differ in shape; "
            "use dtw_mean_joint_error for sequences of different lengths"
        )
    seen = _seen(predicted) & _seen(target)
    if not seen.any():
        raise ValueError("predicted and target poses have no joint seen in both")
    distances = np.linalg.norm(_positions(predicted) - _positions(target), axis=-1)
    return float(distances[seen].mean())


def _seen(poses: Array) -> np.ndarray:
    array = np.asarray(poses.detach().cpu().float() if isinstance(poses, torch.Tensor) else poses, dtype=np.float64)
    return array[..., 2] > 0 if array.shape[-1] == 3 else np.ones(array.shape[:-1], dtype=bool)


def _positions(poses: Array) -> np.ndarray:
    array = np.asarray(poses.detach().cpu().float() if isinstance(poses, torch.Tensor) else poses, dtype=np.float64)
    return np.where(_seen(array)[..., None], array[..., :2], 0.0)


def body_units(poses: Array) -> np.ndarray:
    """Poses [T, K, 2 or 3] of the common skeleton -> [T, K, 3] relative to the signer's neck, in shoulder
    half-widths (`skeleton.placement`, which survives a missing shoulder): generated and real signers differ
    in size and place on screen, and a pose error should measure the signing, not where the signer stands."""
    array = torch.as_tensor(np.asarray(poses.detach().cpu().float() if isinstance(poses, torch.Tensor) else poses,
                                       dtype=np.float32))
    if array.shape[-1] == 2:
        array = torch.cat([array, torch.ones_like(array[..., :1])], dim=-1)
    neck, scale, _ = skeleton.placement(array[None])
    relative = (skeleton.positions(array) - neck[0]) / scale[0]
    return torch.cat([relative, array[..., 2:]], dim=-1).numpy()
