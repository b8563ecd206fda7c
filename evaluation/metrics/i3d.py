"""I3D as in the canonical FVD: DeepMind's TF-Hub module `deepmind/i3d-kinetics-400/1`, ported to PyTorch.

Inception-v1 (Szegedy et al. 2015) with every 2-D kernel inflated to 3-D (Carreira & Zisserman 2017, "Quo
Vadis"), trained from scratch on Kinetics-400 RGB clips. FVD (Unterthiner et al. 2018) takes its 400 logits
averaged over time. Weights: `evaluation.metrics.i3d_weights`. Every detail below changes the numbers:

- Convolutions and max-pools pad like TensorFlow's 'SAME': the padding depends on the input size and puts
  the odd cell at the end, so it is computed on every call (a symmetric port moves the black-vs-white FVD
  from 151.4 to about 3963).
- Max-pools never pick a padded cell (TensorFlow pads them with -inf, not 0).
- BatchNorm has a shift (beta) but no scale (gamma), eps 1e-3 (Sonnet v1's defaults).
- The head: a 2x7x7 VALID average pool, a 1x1x1 conv with bias, then the mean over time. It fixes the input
  to 224x224 frames and at least 9 of them (time is halved three times and the pool needs 2 steps).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

I3D_FRAME_SIZE = 224
I3D_MIN_FRAMES = 9
KINETICS_CLASSES = 400
LOGITS_POOL = (2, 7, 7)
BATCH_NORM_EPS = 1e-3

Triple = tuple[int, int, int]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis as (before, after), for an output of ceil(size / stride)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: Tensor, kernel: Triple, stride: Triple, value: float = 0.0) -> Tensor:
    """Pad [B, C, T, H, W] with `value` so a kernel with this stride gives ceil(T/st) x ceil(H/sh) x ceil(W/sw)."""
    pads = [same_padding(size, k, s) for size, k, s in zip(x.shape[2:], kernel, stride)]
    # F.pad lists the last axis first.
    return F.pad(x, (*pads[2], *pads[1], *pads[0]), value=value)


class Unit3D(nn.Module):
    """Conv3d (no bias) with 'SAME' padding -> BatchNorm without scale -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Triple = (1, 1, 1), stride: Triple = (1, 1, 1)):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=False)
        self.beta = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("running_mean", torch.zeros(out_channels))
        self.register_buffer("running_var", torch.ones(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, T, H, W] -> [B, C_out, ceil(T/st), ceil(H/sh), ceil(W/sw)]."""
        x = self.conv(pad_same(x, self.kernel, self.stride))
        x = F.batch_norm(x, self.running_mean, self.running_var, weight=None, bias=self.beta,
                         training=False, eps=BATCH_NORM_EPS)
        return F.relu(x)


class MaxPool3dSame(nn.Module):
    """Max-pool with 'SAME' padding whose padded cells never win, as in TensorFlow."""

    def __init__(self, kernel: Triple, stride: Triple):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [B, C, ceil(T/st), ceil(H/sh), ceil(W/sw)]."""
        return F.max_pool3d(pad_same(x, self.kernel, self.stride, value=-math.inf), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max-pool -> 1x1.

    `widths` = (branch_0, branch_1a, branch_1b, branch_2a, branch_2b, branch_3) output channels, as in
    Szegedy et al. 2015, Table 1, whose 5x5 branch I3D replaces by a 3x3x3 one.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.branch_0 = Unit3D(in_channels, b0)
        self.branch_1a = Unit3D(in_channels, b1a)
        self.branch_1b = Unit3D(b1a, b1b, kernel=(3, 3, 3))
        self.branch_2a = Unit3D(in_channels, b2a)
        self.branch_2b = Unit3D(b2a, b2b, kernel=(3, 3, 3))
        self.branch_3_pool = MaxPool3dSame(kernel=(3, 3, 3), stride=(1, 1, 1))
        self.branch_3 = Unit3D(in_channels, b3)
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, T, H, W] -> [B, out_channels, T, H, W]."""
        return torch.cat([
            self.branch_0(x),
            self.branch_1b(self.branch_1a(x)),
            self.branch_2b(self.branch_2a(x)),
            self.branch_3(self.branch_3_pool(x)),
        ], dim=1)


class I3D(nn.Module):
    """[B, 3, T, 224, 224] in [-1, 1], T >= 9 -> [B, 400] Kinetics logits averaged over time (FVD's feature)."""

    # (name, spec) after the stem, in order: an Inception module's widths, or a max-pool's (kernel, stride).
    # These pools halve time as well as space; the stem's do not (pooling time early hurt, the paper found).
    LAYERS = (
        ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
        ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
        ("MaxPool3d_4a_3x3", ((3, 3, 3), (2, 2, 2))),
        ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
        ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
        ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
        ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
        ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
        ("MaxPool3d_5a_2x2", ((2, 2, 2), (2, 2, 2))),
        ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
        ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
    )

    def __init__(self, num_classes: int = KINETICS_CLASSES):
        super().__init__()
        # Layer names are the TF-Hub module's, so a weight's origin can be read off its key.
        layers = {
            "Conv3d_1a_7x7": Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPool3dSame(kernel=(1, 3, 3), stride=(1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, kernel=(3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPool3dSame(kernel=(1, 3, 3), stride=(1, 2, 2)),
        }
        channels = 192
        for name, spec in self.LAYERS:
            if name.startswith("Mixed"):
                layers[name] = InceptionModule(channels, spec)
                channels = layers[name].out_channels
            else:
                layers[name] = MaxPool3dSame(*spec)
        self.layers = nn.Sequential()
        for name, layer in layers.items():
            self.layers.add_module(name, layer)
        self.logits = nn.Conv3d(channels, num_classes, kernel_size=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, T, 224, 224] in [-1, 1] -> [B, num_classes] logits, averaged over time."""
        check_i3d_input(x)
        x = F.avg_pool3d(self.layers(x), LOGITS_POOL, stride=1)
        # After the pool, H = W = 1 for 224x224 frames; what remains is one logit vector per time step.
        return self.logits(x).squeeze(4).squeeze(3).mean(dim=2)


def check_i3d_input(x: Tensor) -> None:
    """Refuse what the TF-Hub module cannot take, rather than return logits of another shape."""
    if x.ndim != 5 or x.shape[1] != 3 or x.shape[3:] != (I3D_FRAME_SIZE, I3D_FRAME_SIZE):
        raise ValueError(f"I3D takes [B, 3, T, {I3D_FRAME_SIZE}, {I3D_FRAME_SIZE}] RGB clips, got {tuple(x.shape)}")
    if x.shape[2] < I3D_MIN_FRAMES:
        raise ValueError(f"I3D needs at least {I3D_MIN_FRAMES} frames (its 2x7x7 head pools time after three "
                         f"halvings), got {x.shape[2]}")
