"""ST-LPIPS (Ghildyal & Liu, ECCV 2022): shift-tolerant LPIPS, the perceptual metric that always runs.

LPIPS (Zhang et al. 2018) compares unit-normalised AlexNet activations through learned per-channel weights.
The shift-tolerant variant keeps the first convolution at stride 1 and downsamples with a reflect-padded
[1, 2, 1] blur after it and after each max-pool (now stride 1), so a generated signer a pixel to the left of
the real one is not scored as a different image. Its weights, trunk and calibration together, ship in the
PyPI package `stlpips-pytorch` (`weights/vST0.0/alex_shift_tolerant.pth`): found from the package's metadata
and loaded as tensors only. The package itself is not imported: its modules import torchvision, IPython and
torchsummary, none of which the metric needs. Module names follow the file's keys, so it loads strictly.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evaluation.metrics.weights import packaged_file

DISTRIBUTION = "stlpips-pytorch"
WEIGHTS = "stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth"
CHANNELS = (64, 192, 384, 256, 256)


class BlurDownsample(nn.Module):
    """Reflect-pad by 2, blur with [1, 2, 1] x [1, 2, 1] / 16 per channel, keep every second pixel."""

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("filt", (kernel / kernel.sum())[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, C, ceil(H / 2) + 1, ceil(W / 2) + 1]."""
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _slice(layers: dict[int, nn.Module]) -> nn.Sequential:
    """A run of AlexNet layers keeping their index in the whole network as name (the file's keys do)."""
    return nn.Sequential(OrderedDict((str(index), layer) for index, layer in layers.items()))


class ShiftTolerantAlexNet(nn.Module):
    """[B, 3, H, W] -> the five ReLU outputs LPIPS compares."""

    def __init__(self):
        super().__init__()
        self.slice1 = _slice({0: nn.Conv2d(3, 64, 11, stride=1, padding=2), 1: BlurDownsample(64), 2: nn.ReLU()})
        self.slice2 = _slice({3: nn.MaxPool2d(3, stride=1), 4: BlurDownsample(64),
                              5: nn.Conv2d(64, 192, 5, padding=2), 6: nn.ReLU()})
        self.slice3 = _slice({7: nn.MaxPool2d(3, stride=1), 8: BlurDownsample(192),
                              9: nn.Conv2d(192, 384, 3, padding=1), 10: nn.ReLU()})
        self.slice4 = _slice({11: nn.Conv2d(384, 256, 3, padding=1), 12: nn.ReLU()})
        self.slice5 = _slice({13: nn.Conv2d(256, 256, 3, padding=1), 14: nn.ReLU()})

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for block in (self.slice1, self.slice2, self.slice3, self.slice4, self.slice5):
            x = block(x)
            outputs.append(x)
        return outputs


class LinearCalibration(nn.Module):
    """LPIPS's learned, non-negative weight per channel of one layer (a 1x1 conv to one channel)."""

    def __init__(self, channels: int):
        super().__init__()
        # Index 1: the published model has a dropout at 0, which does nothing at evaluation.
        self.model = _slice({1: nn.Conv2d(channels, 1, 1, bias=False)})

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ScalingLayer(nn.Module):
    """LPIPS v0.1's input whitening: ImageNet's channel statistics, expressed in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale


class ShiftTolerantLPIPS(nn.Module):
    """ST-LPIPS distance: images a, b [B, 3, H, W] in [-1, 1] -> [B, 1, 1, 1], 0 for identical images."""

    def __init__(self):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.net = ShiftTolerantAlexNet()
        for index, channels in enumerate(CHANNELS):
            self.add_module(f"lin{index}", LinearCalibration(channels))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        features_a, features_b = self.net(self.scaling_layer(a)), self.net(self.scaling_layer(b))
        total = 0
        for index, (fa, fb) in enumerate(zip(features_a, features_b)):
            difference = (_unit_channels(fa) - _unit_channels(fb)) ** 2
            total = total + getattr(self, f"lin{index}")(difference).mean(dim=(2, 3), keepdim=True)
        return total


def _unit_channels(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Each pixel's feature vector scaled to unit length (eps as in LPIPS)."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def find_stlpips_weights() -> Path:
    """The weights file inside the installed `stlpips-pytorch` distribution, found without importing it."""
    return packaged_file(DISTRIBUTION, WEIGHTS, "ST-LPIPS")


def build_stlpips(path: Path | None = None, device: torch.device | str = "cpu") -> ShiftTolerantLPIPS:
    """ST-LPIPS (AlexNet, shift-tolerant) from `path` (default: the package's file), frozen, in eval mode."""
    path = find_stlpips_weights() if path is None else Path(path)
    model = ShiftTolerantLPIPS()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.to(device).eval().requires_grad_(False)
