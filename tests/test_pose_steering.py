"""The pose steer gap: poses made for a caption are nearer its own clip's true pose than another clip's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.metrics.pose_steering import pose_steering
from text2sign import skeleton
from text2sign.data.render import DEFAULT_APPEARANCE, render

GLOSSES = [("MOTHER",), ("HELLO", "GO"), ("COFFEE",), ("DOG", "OLD"), ("YESTERDAY",), ("THEY", "HOT")]


def true_poses() -> list[np.ndarray]:
    return [skeleton.from_synthetic(render(g, DEFAULT_APPEARANCE, 32, 8)[1]) for g in GLOSSES]


def test_poses_that_follow_their_captions_have_a_gap_above_zero_and_no_error():
    truths = true_poses()
    metrics, per_clip = pose_steering("pose_plan", truths, truths, seed=0)
    assert metrics["eval/pose_plan_dtw_mje"] == pytest.approx(0.0, abs=1e-6) and np.allclose(per_clip, 0, atol=1e-6)
    assert metrics["eval/pose_plan_steer_gap"] - metrics["eval/pose_plan_steer_gap_ci95"] > 0


def test_one_pose_for_every_caption_has_a_gap_whose_interval_holds_zero():
    truths = true_poses()
    same = [truths[0]] * len(truths)
    metrics, _ = pose_steering("pose_plan", same, truths, seed=0)
    gap, half_width = metrics["eval/pose_plan_steer_gap"], metrics["eval/pose_plan_steer_gap_ci95"]
    assert gap - half_width < 0 < gap + half_width


def test_the_same_figures_come_from_a_signer_moved_and_scaled_on_screen():
    truths = true_poses()
    moved = [np.concatenate([0.1 + 0.8 * t[..., :2], t[..., 2:]], axis=-1) for t in truths]
    metrics, _ = pose_steering("pose_plan", moved, truths, seed=0)
    assert metrics["eval/pose_plan_dtw_mje"] == pytest.approx(0.0, abs=1e-5)  # body units: placement is not signing


def test_a_clip_in_which_nobody_was_seen_is_left_out():
    truths = true_poses()
    nobody = torch.from_numpy(skeleton.missing(8)).numpy()
    metrics, per_clip = pose_steering("pose_plan", truths, [*truths[:-1], nobody], seed=0)
    assert np.isnan(per_clip[-1]) and np.isfinite(per_clip[:-1]).all()
    assert np.isfinite(list(metrics.values())).all()
    assert pose_steering("pose_plan", truths[:2], [truths[0], nobody], seed=0)[0] == {}
