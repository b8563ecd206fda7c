"""Checkpoints: everything needed to continue a run exactly, written so a crash never leaves a bad file.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over the
final name: a rename is atomic on POSIX, so a reader sees either the old file or the complete new one.
Files load with `torch.load(weights_only=True)`: a checkpoint that smuggles pickled code is refused.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_PATTERN = re.compile(r"^step_(\d{8})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or belongs to another configuration."""


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.pt"


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write `state` atomically to `path` (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {path} could not be read safely ({type(error).__name__}: {error}). "
            "It is damaged, or holds pickled objects that weights_only loading refuses."
        ) from error


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The complete checkpoint with the highest step in `folder`; temp files of interrupted writes are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if CHECKPOINT_PATTERN.match(p.name))
    return found[-1] if found else None
