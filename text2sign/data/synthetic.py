"""The built-in corpus: English sentences, their glosses, and videos of a procedural signer signing them.

A sample is fixed by (corpus_seed, split, index) alone: each index seeds its own numpy Generator, so
the same index gives the same sample in any process, whatever the global torch / numpy seeds.

Splits hold apart *gloss sequences*, not just sentences: a stable hash of the sequence assigns it to
train, val or test, so val and test ask for sign combinations never seen in training (the signs
themselves are all seen) and a model cannot pass by memorizing whole clips.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch.utils.data import Dataset

from text2sign.config import DataConfig
from text2sign.data.grammar import Sentence, generate_sentence
from text2sign.data.lexicon import LEXICON
from text2sign import skeleton
from text2sign.data.render import Appearance, render, render_keypoints, toward_default

SPLITS = ("train", "val", "test")
# Share of gloss sequences (hash buckets out of 100) in each split.
_SPLIT_BUCKETS = {"train": range(0, 80), "val": range(80, 90), "test": range(90, 100)}
_MAX_DRAWS = 10_000


def split_of(glosses: tuple[str, ...], corpus_seed: int) -> str:
    """The split a gloss sequence belongs to: a hash, so stable across processes and Python versions."""
    key = f"{corpus_seed}:{' '.join(glosses)}".encode()
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % 100
    return next(name for name, buckets in _SPLIT_BUCKETS.items() if bucket in buckets)


class SyntheticSigningCorpus(Dataset):
    """Samples are dicts:
    video      float32 [3, T, H, W] in [-1, 1]
    text       str, the English sentence
    glosses    tuple[str, ...], what is signed, in order (1 to 4 signs)
    keypoints  float32 [T, 50, 3], the signer's 10 joints in the common skeleton (`skeleton.from_synthetic`),
               x, y in [0, 1] image coordinates and a confidence; the 40 points it lacks are missing
               (with data.finger_keypoints, each finger's base and tip too: 28 points)
    """

    keypoint_names = skeleton.POINT_NAMES
    has_keypoints = True
    has_glosses = True

    def __init__(self, config: DataConfig, split: str, cache: bool = True) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.config = config
        self.split = split
        self._split_id = SPLITS.index(split)
        size = {"train": config.train_size, "val": config.val_size, "test": config.test_size}[split]
        self._sentences = [self._draw_sentence(index) for index in range(size)]
        # Rendered clips as uint8 (a quarter of float32's memory); every sample, cached or fresh,
        # goes through uint8 so the two are identical.
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.corpus_seed, self._split_id, index, stream])

    def _draw_sentence(self, index: int) -> Sentence:
        rng = self._rng(index, stream=0)
        for _ in range(_MAX_DRAWS):
            sentence = generate_sentence(rng)
            if split_of(sentence.glosses, self.config.corpus_seed) == self.split:
                return sentence
        raise RuntimeError(f"no sentence for split {self.split!r} in {_MAX_DRAWS} draws; the split buckets are broken")

    def __len__(self) -> int:
        return len(self._sentences)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self._sentences]

    @property
    def vocabulary(self) -> list[str]:
        """Every gloss the signer knows, sorted: the label set for a recognizer."""
        return sorted(LEXICON)

    def glosses_of(self, index: int) -> tuple[str, ...]:
        return self._sentences[index].glosses

    def appearance_of(self, index: int) -> Appearance:
        return toward_default(Appearance.sample(self._rng(index, stream=1)), self.config.signer_variation)

    def keypoints_of(self, index: int) -> torch.Tensor:
        """The sample's keypoints [T, 50, 3] without drawing its video."""
        glosses, c = self._sentences[index].glosses, self.config
        keypoints = render_keypoints(glosses, self.appearance_of(index), c.image_size, c.num_frames, c.finger_keypoints)
        return torch.from_numpy(skeleton.from_synthetic(keypoints))

    def _render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        video, keypoints = render(
            self._sentences[index].glosses, self.appearance_of(index), c.image_size, c.num_frames, c.finger_keypoints
        )
        return np.round((video + 1.0) * 127.5).astype(np.uint8), keypoints

    def prerender(self, processes: int) -> None:
        """Render every clip not yet cached, in `processes` processes, into the in-memory cache.

        DataLoader workers are forked anew each epoch and would otherwise render (and lose) the clips
        of every epoch again; rendered here, once, before they fork, the clips are shared with them
        copy-on-write, and an epoch never waits on the renderer. Samples are the same either way.
        """
        if self._cache is None:
            return
        missing = [index for index in range(len(self)) if index not in self._cache]
        if processes <= 1 or len(missing) < 2:
            self._cache.update((index, self._render(index)) for index in missing)
            return
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(processes) as pool:
            rendered = pool.map(self._render, missing, chunksize=max(1, len(missing) // (8 * processes)))
        self._cache.update(zip(missing, rendered))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for the {self.split} split of {len(self)} samples")
        if self._cache is not None and index in self._cache:
            video, keypoints = self._cache[index]
        else:
            video, keypoints = self._render(index)
            if self._cache is not None:
                self._cache[index] = (video, keypoints)
        sentence = self._sentences[index]
        return {
            "video": torch.from_numpy(video).float().div_(127.5).sub_(1.0),
            "text": sentence.text,
            "glosses": sentence.glosses,
            "keypoints": torch.from_numpy(skeleton.from_synthetic(keypoints)),
        }
