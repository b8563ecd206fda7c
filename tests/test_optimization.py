"""One optimizer step and one LR schedule for the video model, the planner's first phase, the judge and the bench."""

from __future__ import annotations

import math

import pytest
import torch

from text2sign.training.optimization import step_optimizer, warmup_cosine, warmup_cosine_schedule


@pytest.mark.parametrize("total", [1, 7, 40, 333])
def test_the_judge_and_the_planner_keep_the_schedules_they_were_trained_with(total):
    # Registered judges were trained with the first formula, to the bit; the planner's first phase with the
    # second, whose pi * step / total rounds apart from pi * (step / total) in the last bit at most.
    ramp = max(1, total // 20)
    for step in range(total + 2):
        judge = min((step + 1) / ramp, 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / total))))
        assert warmup_cosine(step, ramp - 1, total, decay_from=0) == judge, step
    for step in range(total):
        assert warmup_cosine(step, 0, total) == pytest.approx(0.5 * (1 + math.cos(math.pi * step / total)), rel=1e-15), step


def test_the_video_models_cosine_starts_where_its_warm_up_ends():
    assert [warmup_cosine(step, 3, 11) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(7, 3, 11) == pytest.approx(0.5) and warmup_cosine(11, 3, 11) == 0.0


def test_a_step_clips_steps_advances_the_schedule_and_clears_the_gradients():
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    schedule = warmup_cosine_schedule(optimizer, warmup=1, total=10)
    (weight * torch.tensor([3.0, 4.0])).sum().backward()

    norm = step_optimizer(optimizer, schedule, [weight], grad_clip=1.0)

    assert norm.item() == pytest.approx(5.0)  # the norm before clipping
    assert weight.tolist() == pytest.approx([-0.5 * 0.6, -0.5 * 0.8])  # the clipped gradient at the warm-up's LR
    assert weight.grad is None and optimizer.param_groups[0]["lr"] == 1.0
    assert step_optimizer(optimizer, schedule, [weight], grad_clip=None) is None
