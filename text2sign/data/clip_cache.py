"""Decoded clips kept on disk, so each clip of a real corpus is decoded once, not once per epoch.

An entry holds the clip as it enters the model (uint8 [T, S, S, 3], already sampled and cropped), its
keypoints when it has any (float32 [T, 50, 3], following the same frames and crop), and the SHA-256 of
those bytes. Its key covers what they depend on: the source's path, the size and modification time of its
file (or of every image of a frame folder), the same for the keypoint source's files (every JSON of an
OpenPose folder), the frame count and size asked for, and `FORMAT_VERSION`. A changed source or setting thus finds no entry and decodes afresh; an entry
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from text2sign import skeleton
from text2sign.data import keypoints as keypoint_sources
from text2sign.data.video_io import fingerprint

# Bump when decoding, sampling or cropping changes what a clip's frames or keypoints are: old entries stop
# matching. 2: entries hold keypoints.
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Entry:
    frames: np.ndarray  # uint8 [T, S, S, 3]
    keypoints: np.ndarray | None  # float32 [T, 50, 3], or None for a clip without keypoints


def _checksum(frames: np.ndarray, keypoints: np.ndarray | None) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(frames).tobytes())
    if keypoints is not None:
        digest.update(np.ascontiguousarray(keypoints).tobytes())
    return digest.hexdigest()


class ClipCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, source: Path, num_frames: int, size: int, keypoints: Path | None = None) -> str:
        payload = {
            "version": FORMAT_VERSION,
            "source": str(source.absolute()),
            "files": fingerprint(source),
            "num_frames": num_frames,
            "size": size,
        }
        if keypoints is not None:
            payload["keypoints"] = str(keypoints.absolute())
            payload["keypoint_files"] = keypoint_sources.fingerprint(keypoints)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str, shape: tuple[int, ...], with_keypoints: bool = False) -> Entry | None:
        """The entry if it exists, has frames of `shape` (and keypoints to match when `with_keypoints`) and
        matches its checksum; else None."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                frames, checksum = stored["frames"], str(stored["sha256"])
                keypoints = stored["keypoints"] if "keypoints" in stored.files else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None  # unreadable: decoded and rewritten by the caller
        if frames.dtype != np.uint8 or frames.shape != shape or (keypoints is not None) != with_keypoints:
            return None
        keypoint_shape = (shape[0], skeleton.NUM_POINTS, 3)
        if keypoints is not None and (keypoints.dtype != np.float32 or keypoints.shape != keypoint_shape):
            return None
        if _checksum(frames, keypoints) != checksum:
            return None
        return Entry(frames, keypoints)

    def save(self, key: str, frames: np.ndarray, keypoints: np.ndarray | None = None) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        arrays = {"frames": frames} if keypoints is None else {"frames": frames, "keypoints": keypoints}
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays, sha256=np.array(_checksum(frames, keypoints)))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
