"""A corpus on disk as a Dataset: PHOENIX-2014T, How2Sign or a folder of clips, read by the same code.

Samples are dicts like the synthetic corpus's, less what real data lacks:
    video      float32 [3, T, H, W] in [-1, 1]: T = data.num_frames frames sampled uniformly over the
               whole clip, centre-cropped to a square of data.image_size pixels
    text       str
    glosses    tuple[str, ...]; empty for a corpus without glosses (`has_glosses` False)
    keypoints  float32 [T, 50, 3], only where the corpus has keypoints (`has_keypoints`; How2Sign's OpenPose
               JSON): the skeleton of `text2sign.skeleton` at the same T frames, in the same square, x and y
               in [0, 1], missing points with confidence 0 and NaN x, y

Which samples: the split's usable rows (see `records`); `data.train_size` / `val_size` / `test_size`
cap each split, taking a subset drawn with `data.corpus_seed` (in file order) when the split is larger,
so the `tiny` and `small` scales stay quick on a big corpus. Every chosen clip is then decoded once,
by the DataLoader's workers, before training starts: a corrupt clip is found now rather than in the
epoch that first draws it, and with the cache on (the default) this is the decoding training would
do anyway. Keypoints are read in the same pass and cached with their clip, so a corrupt keypoint file is
found then too. With `data.on_error=raise` the first bad row or clip raises `DataError` naming its file;
with `skip` they are left out, so batches and steps per epoch are known, and listed in `skipped`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from text2sign import skeleton
from text2sign.config import DataConfig
from text2sign.data import extract, folder, how2sign, phoenix
from text2sign.data.clip_cache import ClipCache
from text2sign.data.frames import to_video_tensor
from text2sign.data.keypoints import NO_HANDS_ADVICE, KeypointError, fit_track, hands_missing, load_track, shows_hands
from text2sign.data.records import ClipRecord, DataError, Index, Problem
from text2sign.data.spec import DataSpec
from text2sign.data.table import Table
from text2sign.data.video_io import ClipError, decode_clip, read_clip

SPLITS = ("train", "val", "test")
READERS = {"phoenix2014t": phoenix.read_index, "how2sign": how2sign.read_index, "folder": folder.read_index}
NO_CACHE = "none"
_BAD_CLIP_FIX = "Re-encode or replace the clip, or remove its line"
_BAD_KEYPOINTS_FIX = "Restore the keypoint file from the release (the 2D keypoints) or remove the clip's line"
log = logging.getLogger(__name__)


def read_index(spec: DataSpec, split: str) -> Index:
    """The split's rows as its corpus files describe them; raises DataError when the split is missing or unreadable."""
    _check_split(split)
    return READERS[spec.kind](spec.path, split)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


@dataclass(frozen=True)
class CorpusFiles:
    """A corpus as its files describe it, before any clip is decoded: whether it has glosses and keypoints, and
    each split's rows. A folder corpus has one table for all of these, its texts.csv: `open` reads it once
    and every answer comes from that reading (How2Sign and PHOENIX keep a table per split)."""

    spec: DataSpec
    texts: Table | None = None  # a folder corpus's texts.csv

    @classmethod
    def open(cls, spec: DataSpec) -> CorpusFiles:
        """Raises DataError for a folder corpus whose texts.csv is missing or malformed."""
        return cls(spec, folder.read_texts(spec.path) if spec.kind == "folder" else None)

    def index(self, split: str) -> Index:
        """As `read_index`."""
        if self.texts is None:
            return read_index(self.spec, split)
        _check_split(split)
        return folder.split_index(self.spec.path, self.texts, split)

    def has_glosses(self) -> bool:
        if self.texts is not None:
            return folder.has_glosses(self.texts)
        return self.spec.kind in ("synthetic", "phoenix2014t", "fingerspelling")

    def ships_keypoints(self) -> bool:
        """Whether the corpus itself holds keypoints: the synthetic signer's, the fingerspelling lexicon's
        recordings, How2Sign's JSON folders, `.pose` files beside a folder's clips."""
        if self.spec.kind in ("synthetic", "fingerspelling"):
            return True
        if self.spec.kind == "how2sign":
            return how2sign.has_keypoints(self.spec.path)
        return self.texts is not None and folder.has_keypoints(self.spec.path, self.texts)

    def has_keypoints(self) -> bool:
        """Whether the corpus's samples come with keypoints: a fact of the corpus on disk, not of its kind. One
        that ships none has them once `extract-keypoints` has run on it; its first training clip is looked up,
        and any clip still without an entry is then a bad sample (`with_extracted_keypoints`)."""
        if self.ships_keypoints():
            return True
        try:
            records = self.index("train").records
        except DataError:
            return False
        return bool(records) and extract.extracted_track(records[0].source, extract.default_cache_root()) is not None


def corpus_has_keypoints(spec: DataSpec) -> bool:
    """`CorpusFiles.has_keypoints` of the corpus `spec` names."""
    return CorpusFiles.open(spec).has_keypoints()


def with_extracted_keypoints(index: Index) -> Index:
    """The index with each clip's extracted keypoints (`text2sign.data.extract`); a clip not extracted is a problem."""
    root = extract.default_cache_root()
    found = Index(problems=list(index.problems))
    for record in index.records:
        entry = extract.extracted_track(record.source, root)
        if entry is None:
            found.problems.append(Problem(str(record.source), f"has no extracted keypoints in {root}",
                                          f"Extract them with python -m text2sign.data extract-keypoints (it skips "
                                          f"the clips already done), or remove the clip's line"))
        else:
            found.records.append(dataclasses.replace(record, keypoints=entry))
    return found


def bad_sample(record: ClipRecord, error: ClipError | KeypointError) -> Problem:
    """A record whose clip or keypoints cannot be read, named by its clip (the keypoint error names its file)."""
    if isinstance(error, KeypointError):
        return Problem(str(record.source), f"its keypoints cannot be read: {error}", _BAD_KEYPOINTS_FIX)
    return Problem(str(record.source), str(error), _BAD_CLIP_FIX)


def capped(items: list, config: DataConfig, split: str) -> list:
    """`items` when the split's cap (data.train_size, val_size or test_size) holds them all, else that many of
    them drawn with data.corpus_seed, in their order."""
    limit = {"train": config.train_size, "val": config.val_size, "test": config.test_size}[split]
    if len(items) <= limit:
        return items
    rng = np.random.default_rng([config.corpus_seed, SPLITS.index(split)])
    return [items[i] for i in sorted(rng.choice(len(items), size=limit, replace=False).tolist())]


def cache_folder(config: DataConfig) -> Path | None:
    return None if config.cache_dir == NO_CACHE else Path(config.cache_dir).expanduser()


class RealCorpus(Dataset):
    def __init__(self, config: DataConfig, split: str, spec: DataSpec) -> None:
        """The `split` of the corpus `spec` (`config.name`, parsed) names."""
        self.config, self.split, self.spec = config, split, spec
        corpus = CorpusFiles.open(spec)
        self.has_glosses = corpus.has_glosses()
        self.has_keypoints = corpus.has_keypoints()
        self.keypoint_names: tuple[str, ...] = skeleton.POINT_NAMES if self.has_keypoints else ()
        index = corpus.index(split)
        if self.has_keypoints and not corpus.ships_keypoints():
            index = with_extracted_keypoints(index)
        self.skipped: list[Problem] = list(index.problems)
        if self.skipped and config.on_error == "raise":
            raise self.skipped[0].error()
        self.usable = len(index.records)  # before the size cap and the decoding check
        self._cache = self._open_cache()
        # Cache keys by source: a key stats every file of the source (a PHOENIX clip is a folder of ~200
        # PNGs, an OpenPose folder a JSON per frame), which need not be redone on every read of every epoch;
        # a source changed on disk during a run is still caught by the next run.
        self._keys: dict[tuple[Path, Path | None], str] = {}
        self.handless = 0  # of the records with keypoints, those with no hand in any sampled frame
        self.records = self._decodable(capped(index.records, config, split))
        if self.skipped and config.on_error == "raise":
            more = f" ({len(self.skipped) - 1} more clips of this split cannot be read either)" if len(self.skipped) > 1 else ""
            raise DataError(f"{self.skipped[0].error()}{more}")
        if self.skipped:
            examples = "; ".join(str(p) for p in self.skipped[:3])
            log.warning("left out %d samples of the %s split of %s (data.on_error=skip): %s%s", len(self.skipped),
                        split, self.spec, examples, "; ..." if len(self.skipped) > 3 else "")
        if not self.records:
            raise DataError(f"{self.spec}: the {split} split has no usable sample ({len(self.skipped)} left out, e.g. "
                            f"{self.skipped[0] if self.skipped else 'none'}). Check it with: "
                            f"python -m text2sign.data inspect {self.spec}")
        self.no_hands = hands_missing(self.handless, len(self.records))  # "" unless most clips show no hand
        if self.no_hands:
            log.warning("the %s split of %s: %s. %s", split, self.spec, self.no_hands, NO_HANDS_ADVICE)

    def _open_cache(self) -> ClipCache | None:
        folder_path = cache_folder(self.config)
        if folder_path is None:
            return None
        try:
            folder_path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"data.cache_dir: cannot create {folder_path} ({error.strerror or error}); choose another "
                            f"folder with data.cache_dir=PATH, or turn the cache off with data.cache_dir={NO_CACHE}.") from None
        return ClipCache(folder_path)

    def _decodable(self, records: list[ClipRecord]) -> list[ClipRecord]:
        """The records whose clips decode, read once each (filling the cache) by the DataLoader's workers; counts
        `handless` on the way."""
        checks = DataLoader(_DecodeCheck(self, records), batch_size=None, num_workers=self.config.num_workers)
        kept = []
        # disable=None: a progress bar on a terminal only (a big corpus takes a while the first time).
        checked = tqdm(checks, desc=f"reading {self.split} clips", unit="clip", disable=None)
        for record, (problem, handless) in zip(records, checked):
            if problem is None:
                kept.append(record)
                self.handless += handless
            else:
                self.skipped.append(problem)
        return kept

    def clip(self, record: ClipRecord) -> tuple[np.ndarray, np.ndarray | None]:
        """The record's clip as uint8 [T, S, S, 3] and its keypoints as float32 [T, 50, 3] (None when it has
        none), from the cache when it holds a valid copy. Raises ClipError or KeypointError."""
        if self._cache is None:
            return self._read(record)
        size, frames = self.config.image_size, self.config.num_frames
        sources = (record.source, record.keypoints)
        key = self._keys.get(sources)
        if key is None:
            key = self._keys[sources] = self._cache.key(record.source, frames, size, record.keypoints)
        entry = self._cache.load(key, (frames, size, size, 3), with_keypoints=record.keypoints is not None)
        if entry is not None:
            return entry.frames, entry.keypoints
        clip, keypoints = self._read(record)
        self._cache.save(key, clip, keypoints)
        return clip, keypoints

    def _read(self, record: ClipRecord) -> tuple[np.ndarray, np.ndarray | None]:
        size, frames = self.config.image_size, self.config.num_frames
        if record.keypoints is None:
            return read_clip(record.source, frames, size), None
        # The keypoints follow the pixels: the same sampled frames of the same decoded count, the same square.
        clip = decode_clip(record.source, frames, size)
        track = load_track(record.keypoints, (clip.width, clip.height))
        keypoints, _ = fit_track(track, clip.indices, clip.count, clip.fps)
        return clip.frames, keypoints

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for the {self.split} split of {len(self)} samples")
        record = self.records[index]
        try:
            clip, keypoints = self.clip(record)
        except (ClipError, KeypointError) as error:
            raise bad_sample(record, error).error() from None
        sample = {"video": to_video_tensor(clip), "text": record.text, "glosses": record.glosses}
        if keypoints is not None:
            sample["keypoints"] = torch.from_numpy(keypoints)
        return sample

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.records]

    @property
    def vocabulary(self) -> list[str]:
        """Every gloss of this split, sorted: the label set for a recognizer trained on it."""
        return sorted({g for r in self.records for g in r.glosses})

    def glosses_of(self, index: int) -> tuple[str, ...]:
        return self.records[index].glosses


class _DecodeCheck(Dataset):
    """Item i: (None, whether its keypoints show no hand) if record i's clip decodes and its keypoints read, else
    (its Problem, False). Runs in DataLoader workers."""

    def __init__(self, corpus: RealCorpus, records: list[ClipRecord]) -> None:
        self.corpus, self.records = corpus, records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Problem | None, bool]:
        record = self.records[index]
        try:
            _, keypoints = self.corpus.clip(record)
        except (ClipError, KeypointError) as error:
            return bad_sample(record, error), False
        return None, keypoints is not None and not shows_hands(keypoints)
