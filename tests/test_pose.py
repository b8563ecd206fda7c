"""DTW mean joint error: it aligns tempo and measures distance in the keypoints' units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.metrics.pose import dtw_mean_joint_error, frame_distances, mean_joint_error


def _walk(frames: int = 12, joints: int = 5, seed: int = 0) -> np.ndarray:
    """A smooth pose sequence [T, K, 2]: joints drifting steadily, so every frame is distinct."""
    rng = np.random.default_rng(seed)
    start, velocity = rng.uniform(0.2, 0.8, (joints, 2)), rng.uniform(-0.03, 0.03, (joints, 2))
    return start + np.arange(frames)[:, None, None] * velocity


def test_identical_sequences_have_zero_error():
    poses = _walk()
    assert dtw_mean_joint_error(poses, poses) == 0.0


def test_a_time_stretched_copy_costs_nothing_after_warping():
    poses = _walk()
    assert dtw_mean_joint_error(np.repeat(poses, 2, axis=0), poses) == pytest.approx(0.0)
    # Resampled to 1.5x the frames by linear interpolation: what is left is the distance from an in-between
    # frame to its nearest original, a fraction of one frame's motion, far below the unaligned error.
    times = np.linspace(0, len(poses) - 1, 18)
    flat = poses.reshape(len(poses), -1)
    stretched = np.stack([np.interp(times, np.arange(len(poses)), flat[:, c]) for c in range(flat.shape[1])], 1)
    stretched_error = dtw_mean_joint_error(stretched.reshape(18, *poses.shape[1:]), poses)
    assert stretched_error < 0.35 * mean_joint_error(poses[1:], poses[:-1])
    assert stretched_error < 0.2 * mean_joint_error(stretched.reshape(18, *poses.shape[1:])[: len(poses)], poses)


def test_a_constant_offset_of_d_on_every_joint_gives_d():
    poses = _walk()
    d = 0.07
    shifted = poses + np.array([0.6, 0.8]) * d  # a displacement of length d
    assert dtw_mean_joint_error(shifted, poses) == pytest.approx(d)
    assert mean_joint_error(shifted, poses) == pytest.approx(d)


def test_warping_never_costs_more_than_matching_frame_by_frame():
    a, b = _walk(seed=1), _walk(seed=2)
    assert dtw_mean_joint_error(a, b) <= mean_joint_error(a, b) + 1e-12


def test_tensors_are_accepted_and_the_cost_matrix_is_frames_by_frames():
    poses = torch.from_numpy(_walk(frames=6)).float()
    assert frame_distances(poses, poses[:4]).shape == (6, 4)
    assert dtw_mean_joint_error(poses, poses) == pytest.approx(0.0)


def test_different_skeletons_are_refused():
    with pytest.raises(ValueError, match="same skeleton"):
        dtw_mean_joint_error(_walk(joints=5), _walk(joints=4))
    with pytest.raises(ValueError, match="dtw_mean_joint_error"):
        mean_joint_error(_walk(frames=5), _walk(frames=6))
