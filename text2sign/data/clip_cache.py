"""Decoded clips kept on disk, so each clip of a real corpus is decoded once, not once per epoch.

An entry holds the clip as it enters the model (uint8 [T, S, S, 3], already sampled and cropped) and
the SHA-256 of those bytes. Its key covers what the frames depend on: the source's path, the size and
modification time of its file (or of every image of a frame folder), the frame count and size asked
for, and `FORMAT_VERSION`. A changed source or setting thus finds no entry and decodes afresh; an entry
whose bytes no longer match their checksum (a crash mid-copy, a bad disk) is decoded again and
rewritten. Entries are written to a temporary file and renamed, so a reader never sees half of one,
and DataLoader workers writing the same clip at once each rename a complete copy. Nothing is ever
evicted: delete the folder to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from text2sign.data.video_io import fingerprint

# Bump when decoding, sampling or cropping changes what a clip's frames are: old entries stop matching.
FORMAT_VERSION = 1


def _checksum(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


class ClipCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, source: Path, num_frames: int, size: int) -> str:
        payload = {
            "version": FORMAT_VERSION,
            "source": str(source.absolute()),
            "files": fingerprint(source),
            "num_frames": num_frames,
            "size": size,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
        """The entry's frames if it exists, has `shape` and matches its checksum; else None."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as entry:
                frames, checksum = entry["frames"], str(entry["sha256"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None  # unreadable: decoded and rewritten by the caller
        if frames.dtype != np.uint8 or frames.shape != shape or _checksum(frames) != checksum:
            return None
        return frames

    def save(self, key: str, frames: np.ndarray) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, frames=frames, sha256=np.array(_checksum(frames)))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
