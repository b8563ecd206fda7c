"""The back-translation judge: a sign recognizer that reads glosses and joints off a video.

Evaluation asks it what a generated video signs (WER / BLEU-4 against the glosses the text asked for),
where the signer's joints are (DTW-MJE against the true poses), and what its clips look like to a
model that knows signing (the Fréchet Sign Distance in its `features`).

The network: a small 2-D CNN reads each frame on its own, then temporal convolutions and a
bidirectional GRU relate the frames. Time is never downsampled: a clip can be 4 frames long and hold
4 signs, and CTC needs at least one output per gloss.

On a corpus with keypoints but no glosses (How2Sign) it is a *pose-only* judge: its vocabulary is empty,
it has no gloss head, and it reads keypoints alone (see `SignRecognizer`).

It is trained and saved by `evaluation.judge.training`; use it in eval mode (as `load` and
`train_recognizer` return it), where batch norm uses its running statistics and the verdict on one
clip does not depend on the other clips of the batch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

BLANK = 0  # CTC's "no gloss here" class; gloss i of the vocabulary is class i + 1
_SPEC_KEY = "text2sign.sign_recognizer.spec"
_TEMPORAL_GROUPS = 8  # group norm groups of the temporal blocks
# Frames are reduced to this many pixels a side before their features are flattened, so the
# flattened size (and where in the frame a hand is) does not depend on the image size.
_FEATURE_MAP_SIZE = 4


@dataclass
class RecognizerOutput:
    log_probs: torch.Tensor  # [B, T, V + 1] log-softmax over blank + vocabulary (V = 0: the blank, certain)
    keypoints: torch.Tensor  # [B, T, K, 2] in [0, 1] image coordinates
    features: torch.Tensor  # [B, D] the clip's mean last-layer feature: the Fréchet Sign Distance space


def judge_reads(glosses: bool, keypoints: bool) -> str:
    """What a judge of a corpus with (or without) glosses and keypoints reads: `glosses,keypoints`, `glosses`,
    `keypoints` (a pose-only judge), or "" when it could read nothing and cannot be trained."""
    return ",".join(name for name, has in (("glosses", glosses), ("keypoints", keypoints)) if has)


def _conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    # Batch norm rather than group norm: side by side, it left CTC's all-blank plateau sooner; and every
    # frame of every clip is in the batch (B x T images), so its statistics are stable.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.SiLU(),
    )


class FrameEncoder(nn.Module):
    """One frame [N, 3, H, W] -> a feature vector [N, D]: strided convolutions down to 4x4 pixels,
    then a linear layer over the flattened map, which keeps *where* things are (a pooled map would not).

    Channels are few where the map is large (width/4 at full resolution, width/2 at half) and `width`
    from a quarter resolution down: the full-resolution layers would otherwise cost most of the time.
    """

    def __init__(self, image_size: int, width: int, out_features: int) -> None:
        super().__init__()
        downsamplings = max(0, int(math.log2(image_size // _FEATURE_MAP_SIZE)))
        layers = [_conv_block(3, width // 4, stride=1)]
        channels = width // 4
        for level in range(downsamplings):
            out_channels = width // 2 if level == 0 else width
            layers += [_conv_block(channels, out_channels, stride=2), _conv_block(out_channels, out_channels, stride=1)]
            channels = out_channels
        self.convolutions = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(_FEATURE_MAP_SIZE)  # a no-op at powers of two; a safety net otherwise
        self.project = nn.Sequential(nn.Linear(channels * _FEATURE_MAP_SIZE**2, out_features), nn.SiLU())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.project(self.pool(self.convolutions(frames)).flatten(1))


class TemporalBlock(nn.Module):
    """A residual temporal convolution over [B, D, T]: each frame sees its neighbours (motion)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=1)
        self.norm = nn.GroupNorm(_TEMPORAL_GROUPS, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.silu(self.norm(self.conv(x)))


class SignRecognizer(nn.Module):
    """Glosses (CTC) and 2-D joints per frame from a video [B, 3, T, H, W] in [-1, 1].

    An empty `vocabulary` makes a pose-only judge (it needs `num_keypoints` > 0): it has no gloss head, and its
    log_probs are [B, T, 1], the blank with log-probability 0, so every caller that decodes glosses gets empty
    sequences rather than an error. `reads` says which of the two a recognizer reads.
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        image_size: int,
        num_frames: int,
        num_keypoints: int,
        width: int = 64,
    ) -> None:
        super().__init__()
        if width < 16 or width % 16:
            raise ValueError(f"width must be a positive multiple of 16, got {width}")
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("vocabulary must be a list of distinct glosses")
        if not vocabulary and not num_keypoints:
            raise ValueError("a recognizer with an empty vocabulary reads keypoints alone, so num_keypoints must be "
                             "at least 1; one with neither would read nothing")
        self.vocabulary = tuple(vocabulary)
        self.image_size, self.num_frames, self.num_keypoints, self.width = image_size, num_frames, num_keypoints, width
        feature_size = 2 * width
        self.frame_encoder = FrameEncoder(image_size, width, feature_size)
        self.temporal_convs = nn.Sequential(TemporalBlock(feature_size), TemporalBlock(feature_size))
        self.gru = nn.GRU(feature_size, feature_size // 2, batch_first=True, bidirectional=True)
        self.gloss_head = nn.Linear(feature_size, len(self.vocabulary) + 1) if self.vocabulary else None
        # None when trained on a corpus without keypoints (PHOENIX): `keypoints` comes back empty, [B, T, 0, 2].
        self.keypoint_head = nn.Linear(feature_size, num_keypoints * 2) if num_keypoints else None

    @property
    def reads(self) -> str:
        """What this judge reads off a video: `glosses,keypoints`, `glosses` or `keypoints` (a pose-only judge)."""
        return judge_reads(bool(self.vocabulary), bool(self.num_keypoints))

    @property
    def spec(self) -> dict[str, Any]:
        """What it takes to rebuild this network (JSON-able); `save` stores it next to the weights."""
        return {
            "vocabulary": list(self.vocabulary),
            "image_size": self.image_size,
            "num_frames": self.num_frames,
            "num_keypoints": self.num_keypoints,
            "width": self.width,
        }

    def check_input(self, video: torch.Tensor) -> None:
        """Raise ValueError unless `video` is [B, 3, T, H, W] at the size and frame count it was trained on."""
        expected = (3, self.num_frames, self.image_size, self.image_size)
        if video.ndim != 5 or tuple(video.shape[1:]) != expected:
            raise ValueError(
                f"the recognizer reads videos [B, 3, T, H, W] = [B, {', '.join(map(str, expected))}] "
                f"({self.image_size}x{self.image_size} pixels, {self.num_frames} frames), got {list(video.shape)}. "
                f"Render or resample the videos to {self.image_size}x{self.image_size}x{self.num_frames}, "
                "or train a recognizer at the data scale of these videos."
            )

    def forward(self, video: torch.Tensor) -> RecognizerOutput:
        """video [B, 3, T, H, W] in [-1, 1] -> log_probs [B, T, V+1], keypoints [B, T, K, 2], features [B, D]."""
        self.check_input(video)
        batch, _, frames, height, width = video.shape
        per_frame = video.transpose(1, 2).reshape(batch * frames, 3, height, width)
        x = self.frame_encoder(per_frame).reshape(batch, frames, -1)  # [B, T, D]
        x = self.temporal_convs(x.transpose(1, 2)).transpose(1, 2)
        # The GRU adds context to the convolutional features instead of replacing them: stacked plainly
        # on top, it kept CTC on its all-blank plateau far longer in a side-by-side run.
        x = x + self.gru(x)[0]  # [B, T, D]
        keypoints = (torch.sigmoid(self.keypoint_head(x)).reshape(batch, frames, self.num_keypoints, 2)
                     if self.keypoint_head is not None else x.new_empty(batch, frames, 0, 2))
        log_probs = (F.log_softmax(self.gloss_head(x), dim=-1) if self.gloss_head is not None
                     else x.new_zeros(batch, frames, 1))
        return RecognizerOutput(
            log_probs=log_probs,
            keypoints=keypoints,
            features=x.mean(dim=1),
        )

    def glosses_from_log_probs(self, log_probs: torch.Tensor) -> list[tuple[str, ...]]:
        """Greedy CTC decoding of log_probs [B, T, V+1]: the best class per frame, repeats collapsed,
        then blanks dropped (so a blank between two equal classes keeps both)."""
        decoded = []
        for best in log_probs.argmax(dim=-1).tolist():
            collapsed = [c for t, c in enumerate(best) if t == 0 or c != best[t - 1]]
            decoded.append(tuple(self.vocabulary[c - 1] for c in collapsed if c != BLANK))
        return decoded

    @torch.no_grad()
    def decode(self, video: torch.Tensor) -> list[tuple[str, ...]]:
        """The glosses signed in each video [B, 3, T, H, W]."""
        return self.glosses_from_log_probs(self(video).log_probs)

    def save(self, path: str | Path) -> None:
        """Write weights and spec to one safetensors file: loading needs nothing else, and runs no pickle."""
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        save_file(state, str(path), metadata={_SPEC_KEY: json.dumps(self.spec)})

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> SignRecognizer:
        """The recognizer `save` wrote to `path`, in eval mode."""
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if _SPEC_KEY not in metadata:
                raise ValueError(f"{path} is not a saved SignRecognizer: its metadata has no {_SPEC_KEY!r}")
            state = {name: handle.get_tensor(name) for name in handle.keys()}
        model = cls(**json.loads(metadata[_SPEC_KEY]))
        model.load_state_dict(state)
        return model.to(map_location).eval()
