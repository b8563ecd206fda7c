"""Temporal consistency (consecutive-frame SSIM) and LPIPS loading without any download."""

from __future__ import annotations

import pytest
import torch

from evaluation.metrics.lpips_metric import ALEXNET_FILE, build_lpips, find_alexnet_weights, lpips_per_video
from evaluation.metrics.temporal import ssim, temporal_consistency
from evaluation.metrics.weights import PretrainedWeightsMissing


def test_ssim_of_an_image_with_itself_is_one_and_drops_with_noise():
    image = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.allclose(ssim(image, image), torch.ones(2), atol=1e-5)
    noisy = (image + 0.5 * torch.randn_like(image)).clamp(-1, 1)
    assert (ssim(image, noisy) < 0.8).all()


def test_a_frozen_video_is_perfectly_consistent_and_flicker_is_not():
    frame = torch.rand(1, 3, 1, 16, 16) * 2 - 1
    frozen = frame.repeat(1, 1, 6, 1, 1)
    flicker = torch.rand(1, 3, 6, 16, 16) * 2 - 1
    assert temporal_consistency(frozen).item() == pytest.approx(1.0, abs=1e-5)
    assert temporal_consistency(flicker).item() < 0.2


def test_temporal_consistency_orders_smooth_above_jerky_motion():
    x = torch.linspace(-1, 1, 32)
    def moving(speed):
        frames = [torch.sin(4 * (x[None, :] + speed * t / 8)).expand(32, 32) for t in range(8)]
        return torch.stack(frames)[None, None].expand(1, 3, 8, 32, 32)
    assert temporal_consistency(moving(0.1)) > temporal_consistency(moving(1.0))


def test_temporal_consistency_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2 frames"):
        temporal_consistency(torch.zeros(1, 3, 1, 8, 8))


def test_lpips_weights_absent_is_a_clear_error_naming_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsMissing, match=f"hub/checkpoints/{ALEXNET_FILE}"):
        find_alexnet_weights()


@pytest.fixture
def untrained_alexnet_in_cache(tmp_path, monkeypatch):
    """An explicitly untrained torchvision AlexNet, saved where torchvision caches the published one."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / ALEXNET_FILE
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def test_a_stand_in_alexnet_is_refused_for_published_lpips(untrained_alexnet_in_cache):
    assert find_alexnet_weights() == untrained_alexnet_in_cache
    with pytest.raises(PretrainedWeightsMissing, match="not torchvision's published AlexNet"):
        build_lpips(untrained_alexnet_in_cache)


def test_lpips_path_runs_with_an_untrained_trunk_loaded_into_every_slice(untrained_alexnet_in_cache):
    untrained_lpips = build_lpips(untrained_alexnet_in_cache, verify=False)
    trunk = torch.load(untrained_alexnet_in_cache, weights_only=True)
    assert torch.equal(getattr(untrained_lpips.net.slice5, "10").weight, trunk["features.10.weight"])
    a = torch.rand(3, 3, 4, 16, 16) * 2 - 1
    b = torch.rand(3, 3, 4, 16, 16) * 2 - 1
    same, different = lpips_per_video(untrained_lpips, a, a), lpips_per_video(untrained_lpips, a, b)
    assert same.shape == (3,) and torch.allclose(same, torch.zeros(3), atol=1e-6)
    assert (different > 0).all()
    with pytest.raises(ValueError, match="one shape"):
        lpips_per_video(untrained_lpips, a, b[:, :, :2])
