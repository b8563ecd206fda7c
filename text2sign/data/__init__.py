"""Datasets of (text, sign-language video) pairs, chosen by `DataConfig.name`: `synthetic` (the built-in signer),
`fingerspelling` (real signers' letters, drawn as that signer) or `phoenix2014t:PATH`, `how2sign:PATH`,
`folder:PATH` (see `spec`)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from text2sign.config import DataConfig
from text2sign.data import fingerspelling
from text2sign.data.fingerspelling import FingerspellingCorpus
from text2sign.data.keypoints import NO_HANDS_ADVICE
from text2sign.data.real import SPLITS, CorpusFiles, RealCorpus
from text2sign.data.records import DataError
from text2sign.data.spec import DataSpec, parse_data_spec
from text2sign.data.synthetic import SyntheticSigningCorpus

__all__ = ["DataError", "build_dataset", "check_corpus", "collate", "corpus_report", "has_glosses"]
_LISTED_PROBLEMS = 5  # in the data/skipped tag; the metric has the count


def build_dataset(config: DataConfig, split: str) -> Dataset:
    """The `split` ("train", "val" or "test") of the corpus `config.name` names."""
    spec = parse_data_spec(config.name)
    if spec.kind == "synthetic":
        return SyntheticSigningCorpus(config, split)
    if spec.kind == "fingerspelling":
        return FingerspellingCorpus(config, split, spec)
    return RealCorpus(config, split, spec)


def has_glosses(config: DataConfig) -> bool:
    """Whether the corpus has glosses, which back-translation (the recognizer) needs: How2Sign has none."""
    return CorpusFiles.open(parse_data_spec(config.name)).has_glosses()


def check_corpus(config: DataConfig) -> None:
    """Read every split's table without decoding a clip: raises DataError for a missing or unreadable split,
    and with data.on_error=raise for the first bad row. Cheap: what an entry point runs before a run starts."""
    spec = parse_data_spec(config.name)
    if spec.kind == "synthetic":
        return
    if spec.kind == "fingerspelling":
        _check_fingerspelling(spec, config.corpus_seed)
        return
    corpus = CorpusFiles.open(spec)
    for split in SPLITS:
        index = corpus.index(split)
        if index.problems and config.on_error == "raise":
            raise index.problems[0].error()


def _check_fingerspelling(spec: DataSpec, corpus_seed: int) -> None:
    """The package (or folder) is there, data.csv reads, and each split has a pair: bad lines and recordings are
    left out, not raised (`fingerspelling`)."""
    for split, index in fingerspelling.read_splits(fingerspelling.lexicon_folder(spec), corpus_seed).items():
        if not index.records:
            raise DataError(f"{spec}: no usable line of its data.csv falls in the {split} split ({len(index.problems)} "
                            f"left out); a hash of each (language, letter) pair puts a tenth of them in val and a "
                            f"tenth in test, so the lexicon needs a few dozen pairs. Check it with: "
                            f"python -m text2sign.data inspect {spec}")


def corpus_report(splits: dict[str, Dataset]) -> tuple[dict[str, float], dict[str, str]]:
    """Metrics and tags that say which samples of a real corpus a run used (nothing for the synthetic one):
    tag `data/samples` (used of usable, per split); with data.on_error=skip, and always for the fingerspelling
    lexicon, metric `data/skipped_samples` and tag `data/skipped` (the count and the first few files with the
    reason); with keypoints, tag `data/clips_without_hands` (per split), and `data/no_hands`, the warning, where
    most clips show no hand."""
    real = {name: dataset for name, dataset in splits.items() if isinstance(dataset, (RealCorpus, FingerspellingCorpus))}
    if not real:
        return {}, {}
    tags = {"data/samples": ", ".join(f"{name} {len(d)} of {d.usable}" for name, d in real.items())}
    if all(d.has_keypoints for d in real.values()):
        tags["data/clips_without_hands"] = ", ".join(f"{name} {d.handless} of {len(d)}" for name, d in real.items())
        warnings = [f"{name}: {d.no_hands}" for name, d in real.items() if d.no_hands]
        if warnings:
            tags["data/no_hands"] = f"{'; '.join(warnings)}. {NO_HANDS_ADVICE}"
    metrics: dict[str, float] = {}
    first = next(iter(real.values()))
    if isinstance(first, FingerspellingCorpus) or first.config.on_error == "skip":
        skipped = [f"{name}: {problem}" for name, d in real.items() for problem in d.skipped]
        metrics["data/skipped_samples"] = float(len(skipped))
        listed = "; ".join(skipped[:_LISTED_PROBLEMS])[:4000]
        more = f"; and {len(skipped) - _LISTED_PROBLEMS} more" if len(skipped) > _LISTED_PROBLEMS else ""
        tags["data/skipped"] = f"{len(skipped)} skipped: {listed}{more}" if skipped else "none"
    return metrics, tags


def collate(samples: list[dict]) -> dict:
    """Batch samples: video [B, 3, T, H, W], texts list[str], glosses list[tuple], and keypoints
    [B, T, 50, 3] (`text2sign.skeleton`) when the corpus has them."""
    batch = {
        "video": torch.stack([s["video"] for s in samples]),
        "texts": [s["text"] for s in samples],
        "glosses": [s["glosses"] for s in samples],
    }
    if all("keypoints" in s for s in samples):
        batch["keypoints"] = torch.stack([s["keypoints"] for s in samples])
    return batch
