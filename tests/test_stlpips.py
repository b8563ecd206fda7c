"""ST-LPIPS: loads from the installed package with no network, and scores as the package's own model does."""

from __future__ import annotations

import socket
import sys
import types

import pytest
import torch

from evaluation.metrics.lpips_metric import lpips_per_video
from evaluation.metrics.stlpips_metric import build_stlpips, find_stlpips_weights
from evaluation.metrics.weights import PretrainedWeightsMissing


@pytest.fixture(scope="module")
def stlpips():
    return build_stlpips()


def test_stlpips_loads_with_every_network_connection_refused(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ST-LPIPS tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    model = build_stlpips()
    assert not model.training
    assert find_stlpips_weights().parts[-3:] == ("weights", "vST0.0", "alex_shift_tolerant.pth")


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(PretrainedWeightsMissing, match="pip install"):
        find_stlpips_weights()


def test_stlpips_scores_like_the_packages_own_model(monkeypatch):
    pytest.importorskip("torchvision")  # the package's modules import it; ours does not
    # Its modules also import IPython's `embed` and `torchsummary`'s `summary` without using them.
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(embed=None))
    monkeypatch.setitem(sys.modules, "torchsummary", types.SimpleNamespace(summary=None))
    from stlpips_pytorch import stlpips as package

    reference = package.LPIPS(net="alex", variant="shift_tolerant", verbose=False).eval()
    ours = build_stlpips()
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand(3, 3, 64, 48, generator=generator) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        assert torch.allclose(ours(a, b), reference(a, b), rtol=1e-5, atol=1e-7)


def test_stlpips_tolerates_a_one_pixel_shift_more_than_a_different_image(stlpips):
    generator = torch.Generator().manual_seed(1)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=generator) * 2 - 1, size=64,
                                            mode="bilinear", align_corners=False)
    shifted = torch.roll(image, shifts=1, dims=3)
    other = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
    with torch.no_grad():
        assert stlpips(image, image).item() == pytest.approx(0.0, abs=1e-6)
        assert 0 < stlpips(image, shifted).item() < stlpips(image, other).item()


def test_stlpips_per_video_pairs_each_generated_clip_with_its_real_one(stlpips):
    generator = torch.Generator().manual_seed(2)
    real = torch.rand(3, 3, 4, 16, 16, generator=generator) * 2 - 1
    other = torch.rand(3, 3, 4, 16, 16, generator=generator) * 2 - 1
    same, different = lpips_per_video(stlpips, real, real), lpips_per_video(stlpips, other, real)
    assert same.shape == (3,) and torch.allclose(same, torch.zeros(3), atol=1e-6)
    assert (different > 0).all()
