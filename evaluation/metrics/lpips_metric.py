"""LPIPS (Zhang et al. 2018): perceptual distance between each generated video and the real video of
the same text, frame by frame, with the `lpips` package's AlexNet variant (v0.1).

The linear calibration layers ship inside the `lpips` package. The AlexNet trunk is torchvision's
ImageNet checkpoint, which `lpips` would download; here it is read only from torchvision's cache
($TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth) and checked against the SHA-256 prefix in its
published name, so a stand-in file can never produce an `eval/lpips`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from evaluation.metrics.weights import PretrainedWeightsMissing, hub_checkpoint_dir

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_SHA256_PREFIX = "7be5be79"
# AlexNet's five pooling stages need frames of at least this size; smaller frames are upsampled.
MIN_SIZE = 64


def find_alexnet_weights() -> Path:
    path = hub_checkpoint_dir() / ALEXNET_FILE
    if not path.is_file():
        raise PretrainedWeightsMissing(
            f"LPIPS needs torchvision's ImageNet AlexNet weights at {path}. On a machine with internet, "
            f"`python -c \"import torchvision; torchvision.models.alexnet(weights='IMAGENET1K_V1')\"` puts them "
            "there; copy the file over, or point TORCH_HOME at a folder holding hub/checkpoints/" + ALEXNET_FILE + "."
        )
    return path


def verify_published(path: Path) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(ALEXNET_SHA256_PREFIX):
        raise PretrainedWeightsMissing(
            f"{path} is not torchvision's published AlexNet checkpoint (SHA-256 {digest[:8]}..., expected "
            f"{ALEXNET_SHA256_PREFIX}...). Replace it with the published file."
        )


def build_lpips(alexnet_weights: Path, device: torch.device | str = "cpu", verify: bool = True) -> torch.nn.Module:
    """The LPIPS v0.1 AlexNet model with its trunk loaded from `alexnet_weights` (no download)."""
    import lpips

    if verify:
        verify_published(alexnet_weights)
    model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    trunk = torch.load(alexnet_weights, map_location="cpu", weights_only=True)
    # lpips splits torchvision's `features` Sequential into five slices that keep the original indices.
    by_index = {name.split(".")[-1]: module for name, module in model.net.named_modules() if name.count(".") == 1}
    for key, value in trunk.items():
        if not key.startswith("features."):
            continue
        _, index, param = key.split(".")
        getattr(by_index[index], param).data.copy_(value)
    return model.eval().to(device)


@torch.no_grad()
def lpips_per_video(model: torch.nn.Module, generated: Tensor, real: Tensor, batch_size: int = 64) -> Tensor:
    """Mean distance over frames for each pair: generated, real [N, 3, T, H, W] in [-1, 1] -> [N].

    `model(a, b)` -> [B, 1, 1, 1] for frames [B, 3, H, W]: LPIPS, or ST-LPIPS (`evaluation.metrics.stlpips_metric`).
    """
    if generated.shape != real.shape:
        raise ValueError(f"LPIPS compares videos of one shape: generated {tuple(generated.shape)} vs real {tuple(real.shape)}")
    n, c, t, h, w = generated.shape
    device = next(model.parameters()).device

    def frames(videos: Tensor) -> Tensor:
        flat = videos.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
        if min(h, w) < MIN_SIZE:
            flat = F.interpolate(flat, size=(max(MIN_SIZE, h), max(MIN_SIZE, w)), mode="bilinear", align_corners=False)
        return flat

    a, b = frames(generated), frames(real)
    scores = torch.cat([
        model(a[i : i + batch_size].to(device), b[i : i + batch_size].to(device)).flatten().cpu()
        for i in range(0, len(a), batch_size)
    ])
    return scores.view(n, t).mean(dim=1)
