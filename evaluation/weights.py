"""Pretrained evaluation networks come from files on disk, never from the network.

A metric whose published weights are absent is not computed: its `*_status` tag says why and where
the file goes. A number from untrained weights must never be logged under the published metric's name.
"""

from __future__ import annotations

from pathlib import Path

import torch


class PretrainedWeightsMissing(RuntimeError):
    """A metric's published weights are not on this machine; the message says which file and where."""


def hub_checkpoint_dir() -> Path:
    """Where torch.hub and torchvision keep downloaded weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"
