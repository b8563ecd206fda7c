"""A registered model's weights are checked against the SHA-256 recorded when it was logged, before loading.

Loading never runs code from a weights file (checkpoints load with `weights_only`, the recognizer from
safetensors); the checksum adds that a file damaged or swapped since registration is named, not used.
It is kept in the model's MLmodel file (`model_config`), so it guards against a damaged or replaced weights
file, not against someone who may rewrite the whole model folder: that is what the server's permissions
are for (docs/server.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SHA256_KEY = "weights_sha256"


class TamperedModelError(RuntimeError):
    """A registered model's file is not the one that was registered."""


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_unchanged(path: str | Path, model_config: dict | None) -> None:
    """Raise TamperedModelError unless `path` has the SHA-256 that `model_config` recorded at registration.

    Versions registered before checksums were recorded have none to compare with, and load as before.
    """
    expected = (model_config or {}).get(SHA256_KEY)
    if expected is None:
        return
    found = sha256_of(path)
    if found != expected:
        raise TamperedModelError(
            f"{Path(path).name} of this model is not the file that was registered (SHA-256 {found[:12]}..., "
            f"registered {expected[:12]}...): it was damaged or replaced, so it is not loaded. Register the run's "
            "checkpoint again, or load another version."
        )
