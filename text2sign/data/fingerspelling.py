"""Real signers spelling single letters in 19 sign languages: spoken-to-signed's fingerspelling lexicon as a corpus.

`fingerspelling` reads the lexicon that the spoken-to-signed package (ZurichNLP, MIT) installs with its wheel;
`fingerspelling:PATH` reads a folder in the same layout:

    PATH/data.csv           path,spoken_language,signed_language,start,end,words,glosses,priority (one row a letter)
    PATH/<language>/*.pose  MediaPipe Holistic keypoints of one signer spelling the row's letter, about a second

Samples are dicts like the synthetic corpus's:
    video      float32 [3, T, H, W] in [-1, 1]: the recording drawn as the synthetic signer (`render.render_skeleton`)
    text       str, "the letter B in German Sign Language"
    glosses    (the letter,)
    keypoints  float32 [T, 50, 3]: the recording's skeleton (`text2sign.skeleton`) moved onto the synthetic signer's
               body (`render.place_on_signer`), at T = data.num_frames frames evenly over the recording; x, y in
               [0, 1], a missing point (the hand a signer does not use, a point off the frame) NaN with confidence 0

The recordings carry no picture (only keypoints), so drawing them as the synthetic signer gives real motion a
video the UNet already knows how to read and draw, each sample in its own look (data.signer_variation).

Splits hold out whole (language, letter) pairs, by a stable hash of the pair (80/10/10, `synthetic.split_of`): the
test split asks for letters that training saw in other languages, or not at all, never for a pair it saw.

A recording that cannot be read, shows no hand in any frame or never both shoulders is left out with a warning
naming it, whatever data.on_error says: the lexicon ships in a package its user cannot repair, and one letter of
one language fewer does not change what a run means. The run counts them (data/skipped_samples).
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from text2sign import skeleton
from text2sign.config import DataConfig
from text2sign.data.frames import sample_indices
from text2sign.data.keypoints import KeypointError, shows_hands
from text2sign.data.pose_file import read_track
from text2sign.data.real import SPLITS, capped
from text2sign.data.records import ClipRecord, DataError, Index, Problem
from text2sign.data.render import Appearance, place_on_signer, render_skeleton, toward_default
from text2sign.data.spec import DataSpec
from text2sign.data.synthetic import split_of
from text2sign.data.table import read_table

PACKAGE = "spoken-to-signed"
INSTALL = "pip install 'text2sign[fingerspelling]'"
LEXICON = "spoken_to_signed/assets/fingerspelling_lexicon"  # inside the installed package
TABLE = "data.csv"
# ISO 639-3 codes, as the lexicon's signed_language column writes them, and the names the captions use:
# ISO's reference names, but "Croatian" for csq (ISO's reference name is "Croatia Sign Language").
LANGUAGES = {
    "ase": "American Sign Language",
    "asq": "Austrian Sign Language",
    "bzs": "Brazilian Sign Language",
    "cse": "Czech Sign Language",
    "csq": "Croatian Sign Language",
    "eso": "Estonian Sign Language",
    "gsg": "German Sign Language",
    "gss": "Greek Sign Language",
    "ise": "Italian Sign Language",
    "jos": "Jordanian Sign Language",
    "lls": "Lithuanian Sign Language",
    "mfs": "Mexican Sign Language",
    "psr": "Portuguese Sign Language",
    "sgg": "Swiss-German Sign Language",
    "ssp": "Spanish Sign Language",
    "svk": "Slovakian Sign Language",
    "swl": "Swedish Sign Language",
    "tsm": "Turkish Sign Language",
    "ukl": "Ukrainian Sign Language",
}
_BAD_RECORDING_FIX = "Record it again (MediaPipe Holistic, pose-format's video_to_pose) or remove its line from data.csv"
_LISTED = 5  # skipped recordings named in one warning
log = logging.getLogger(__name__)


def lexicon_folder(spec: DataSpec) -> Path:
    """The folder `spec` names: its PATH, or the lexicon inside the installed spoken-to-signed package, found from
    the package's metadata without importing it (importing it loads its translation pipeline). Raises DataError
    with the install command when the package is missing."""
    if spec.path is not None:
        return spec.path
    try:
        distribution = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise DataError(f"fingerspelling: the lexicon comes with the {PACKAGE} package, which is not installed. "
                        f"Install it with: {INSTALL}") from None
    folder = Path(str(distribution.locate_file(LEXICON)))
    if not (folder / TABLE).is_file():
        raise DataError(f"fingerspelling: {PACKAGE} {distribution.version} is installed but holds no {LEXICON}/{TABLE}; "
                        f"reinstall a version that ships it: {INSTALL}")
    return folder


def gloss_of(letter: str) -> str:
    """The gloss for a letter as the lexicon writes it: Unicode NFC, and capitals where a letter has a single one.

    The lexicon writes one letter several ways (German Sign Language's ä beside Austrian's Ä, Swiss-German's Ä
    decomposed, Mexican's Ll beside Spanish's LL), so one letter becomes one gloss; ß stays ß (its capital, SS,
    would be two letters)."""
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in unicodedata.normalize("NFC", letter.strip()))


def caption(letter: str, language: str) -> str:
    return f"the letter {letter} in {LANGUAGES[language]}"


def read_splits(folder: Path, corpus_seed: int) -> dict[str, Index]:
    """Each split's recordings as data.csv names them, in its order, without reading a recording. A line that
    cannot be used (unreadable, no letter, a language this version has no name for, a missing file) is a
    problem of its pair's split, or of train when it has no pair. Raises DataError when data.csv is missing
    or has not the lexicon's columns."""
    path = folder / TABLE
    if not path.is_file():
        raise DataError(f"{path}: missing. fingerspelling:PATH needs the lexicon's {TABLE} (columns path,"
                        f"signed_language,words and others) and the .pose files it names, relative to PATH.")
    table = read_table(path, ",", ("path", "signed_language", "words"))
    splits = {split: Index() for split in SPLITS}
    splits["train"].problems += table.problems
    for row in table.rows:
        where = f"{path}, line {row.line}"
        language, letter = row.fields["signed_language"], gloss_of(row.fields["words"])
        if not letter:
            splits["train"].problems.append(Problem(where, "no letter in its words column",
                                                    "Fill it in or remove the line"))
            continue
        index = splits[split_of((language, letter), corpus_seed)]
        if language not in LANGUAGES:
            index.problems.append(Problem(where, f"signed_language {language!r} is not one of the {len(LANGUAGES)} this "
                                                 f"version names ({', '.join(LANGUAGES)})", "Remove the line"))
            continue
        source = folder / row.fields["path"]
        if not source.is_file():
            index.problems.append(Problem(str(source), f"is missing ({where})", "Restore it or remove the line"))
            continue
        index.records.append(ClipRecord(row.fields["path"], source, caption(letter, language), (letter,),
                                        keypoints=source))
    return splits


def read_recording(path: Path, appearance: Appearance) -> np.ndarray:
    """A recording's skeleton on `appearance`'s body (`render.place_on_signer`): [N, 50, 3] at its own N frames.
    Raises KeypointError naming the file when it cannot be read, no frame shows a hand, or none both shoulders."""
    points = read_track(path).points
    if not shows_hands(points):
        raise KeypointError(f"{path}: no hand is seen in any frame")
    # MediaPipe names points for the person, and so does our skeleton (`pose_file`); the lexicon's signers face
    # the camera: in all 600 recordings of 0.4.0 the signer's right shoulder lies left of their left one in the
    # picture, as the synthetic signer's does (`render`), so the skeleton is placed as it is, not mirrored. Most
    # spell with their right hand; Italian Sign Language's signer spells with the left (the right never seen).
    try:
        return place_on_signer(points, appearance)
    except ValueError as error:
        raise KeypointError(f"{path}: {error}") from None


def bad_recording(record: ClipRecord, error: KeypointError) -> Problem:
    # The error begins with the file's path, which the Problem names already.
    return Problem(str(record.source), str(error).removeprefix(f"{record.source}: "), _BAD_RECORDING_FIX)


class FingerspellingCorpus(Dataset):
    keypoint_names = skeleton.POINT_NAMES
    has_keypoints = True
    has_glosses = True
    # A recording with no hand seen is left out as bad (`read_recording`), so none of those kept lacks hands.
    handless = 0
    no_hands = ""

    def __init__(self, config: DataConfig, split: str, spec: DataSpec) -> None:
        """The `split` of the lexicon `spec` (`config.name`, parsed) names. Reads every recording of the split (a few
        kilobytes each), leaves out the bad ones, then takes the split's cap, so a cap never falls on a bad one."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.config, self.split, self.spec = config, split, spec
        splits = read_splits(lexicon_folder(spec), config.corpus_seed)
        # Every letter of the lexicon, not only this split's: a recognizer's labels, the same for every split.
        self.vocabulary = sorted({r.glosses[0] for index in splits.values() for r in index.records})
        self.skipped: list[Problem] = list(splits[split].problems)
        readable = []
        for record in splits[split].records:
            try:
                readable.append((record, self._keypoints(record)))
            except KeypointError as error:
                self.skipped.append(bad_recording(record, error))
        self.usable = len(readable)  # before the cap
        chosen = capped(readable, config, split)
        self.records = [record for record, _ in chosen]
        self._skeletons = [keypoints for _, keypoints in chosen]
        if self.skipped:
            listed = "; ".join(str(p) for p in self.skipped[:_LISTED])
            log.warning("left out %d recordings of the %s split of %s: %s%s", len(self.skipped), split, spec, listed,
                        "; ..." if len(self.skipped) > _LISTED else "")
        if not self.records:
            raise DataError(f"{spec}: the {split} split has no usable recording ({len(self.skipped)} left out). Check it "
                            f"with: python -m text2sign.data inspect {spec}")
        self._videos: dict[int, np.ndarray] = {}  # drawn clips, uint8, as the synthetic corpus keeps them

    def appearance_of(self, record: ClipRecord) -> Appearance:
        """The recording's look, fixed by data.corpus_seed and its file alone, so a cap or a split does not change it."""
        name = int.from_bytes(hashlib.blake2b(record.name.encode(), digest_size=8).digest(), "little")
        rng = np.random.default_rng([self.config.corpus_seed, name])
        return toward_default(Appearance.sample(rng), self.config.signer_variation)

    def _keypoints(self, record: ClipRecord) -> np.ndarray:
        """[T, 50, 3] in [0, 1]; points placed off the frame are missing, as a crop leaves them in the other corpora."""
        points = read_recording(record.source, self.appearance_of(record))
        points = points[sample_indices(len(points), self.config.num_frames)]
        outside = ~((points[..., :2] >= 0) & (points[..., :2] <= 1)).all(-1)
        points[outside] = (np.nan, np.nan, 0.0)
        return skeleton.mark_missing(points)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.records]

    def glosses_of(self, index: int) -> tuple[str, ...]:
        return self.records[index].glosses

    def _video(self, index: int) -> np.ndarray:
        if index not in self._videos:
            appearance = self.appearance_of(self.records[index])
            video = render_skeleton(self._skeletons[index], appearance, self.config.image_size)
            self._videos[index] = np.round((video + 1.0) * 127.5).astype(np.uint8)
        return self._videos[index]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for the {self.split} split of {len(self)} samples")
        record = self.records[index]
        return {
            "video": torch.from_numpy(self._video(index)).float().div_(127.5).sub_(1.0),
            "text": record.text,
            "glosses": record.glosses,
            "keypoints": torch.from_numpy(self._skeletons[index].copy()),
        }
