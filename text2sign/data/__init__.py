"""Datasets of (text, sign-language video) pairs, chosen by `DataConfig.name`."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from text2sign.config import DataConfig
from text2sign.data.synthetic import SyntheticSigningCorpus

SUPPORTED = ("synthetic",)


def build_dataset(config: DataConfig, split: str) -> Dataset:
    """The `split` ("train", "val" or "test") of the corpus `config.name` names."""
    if config.name == "synthetic":
        return SyntheticSigningCorpus(config, split)
    raise ValueError(
        f"data.name={config.name!r} is not supported: this version reads only {', '.join(repr(s) for s in SUPPORTED)}. "
        "Real corpora ('phoenix2014t:PATH', 'how2sign:PATH', 'folder:PATH') are not yet supported in this version."
    )


def collate(samples: list[dict]) -> dict:
    """Batch samples: video [B, 3, T, H, W], keypoints [B, T, K, 2], texts list[str], glosses list[tuple]."""
    return {
        "video": torch.stack([s["video"] for s in samples]),
        "keypoints": torch.stack([s["keypoints"] for s in samples]),
        "texts": [s["text"] for s in samples],
        "glosses": [s["glosses"] for s in samples],
    }
