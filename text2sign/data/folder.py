"""Any corpus as a folder of clips and one table of their texts:

    PATH/texts.csv     clip,text[,glosses][,split]   (comma-separated, quoted like a spreadsheet's CSV)
    PATH/<clip>        a video file (.mp4, .mov, .avi, .mkv, .webm) or a folder of frame images
    PATH/<clip>.pose   optional: the clip's keypoints, a pose-format file beside it (clips/a.mp4 ->
                       clips/a.pose, a frame folder clips/b/ -> clips/b.pose; see `pose_file`)

`clip` is relative to PATH. `glosses` (space-separated) make back-translation possible; without the
column the corpus has none. `split` is train, val or test; without the column a stable hash of the
text decides (80/10/10), so one sentence never lands in two splits.

Keypoints are all or nothing: once any clip of the table has its `.pose`, the corpus has keypoints
(`has_keypoints`), and a clip without one is a bad sample, reported like a missing clip, rather than
a sample the pose plan would silently train on without a pose.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from text2sign.data.pose_file import SUFFIX as POSE_SUFFIX
from text2sign.data.records import ClipRecord, DataError, Index, Problem
from text2sign.data.table import Table, read_table
from text2sign.data.video_io import VIDEO_SUFFIXES, frame_files, is_video_file

TABLE = "texts.csv"
REQUIRED, OPTIONAL = ("clip", "text"), ("glosses", "split")
SPLITS = ("train", "val", "test")
_BUCKETS = {"train": range(0, 80), "val": range(80, 90), "test": range(90, 100)}


def table_file(root: Path) -> Path:
    return root / TABLE


def split_of(text: str) -> str:
    """Where a text goes when the table has no split column: a hash, the same in every process."""
    bucket = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") % 100
    return next(name for name, buckets in _BUCKETS.items() if bucket in buckets)


def read_texts(root: Path) -> Table:
    """PATH/texts.csv, which says all there is to know about the corpus short of its clips: read it once and hand
    it to `has_glosses`, `has_keypoints` and `split_index`. Raises DataError when it is missing or malformed."""
    path = table_file(root)
    if not path.is_file():
        raise DataError(f"{path}: missing. folder:PATH needs a {TABLE} in PATH with the header "
                        f"clip,text[,glosses][,split] and one line per clip.")
    return read_table(path, ",", REQUIRED, OPTIONAL, strict=True, quoted=True)


def has_glosses(texts: Table) -> bool:
    return "glosses" in texts.columns


def pose_beside(source: Path) -> Path:
    """Where a clip's `.pose` file is: a video's path with the suffix .pose, a frame folder's name plus .pose."""
    return source.parent / (source.name + POSE_SUFFIX) if source.is_dir() else source.with_suffix(POSE_SUFFIX)


def has_keypoints(root: Path, texts: Table) -> bool:
    """Whether any clip of the table has a `.pose` file beside it: then every clip must have one."""
    return any(pose_beside(root / row.fields["clip"]).is_file() for row in texts.rows if row.fields.get("clip"))


def read_index(root: Path, split: str) -> Index:
    return split_index(root, read_texts(root), split)


def split_index(root: Path, table: Table, split: str) -> Index:
    """The clips of `split`. Lines that cannot be read, or name no valid split, belong to no split: they
    are reported with the train split, so that each is counted once."""
    path = table_file(root)
    index = Index(problems=list(table.problems) if split == "train" else [])
    in_split = 0
    with_keypoints = has_keypoints(root, table)
    for row in table.rows:
        where = f"{path}, line {row.line}"
        fields = row.fields
        chosen = fields.get("split")
        if chosen is not None and chosen not in SPLITS:
            if split == "train":
                index.problems.append(Problem(where, f"split {chosen!r} is not one of {', '.join(SPLITS)}", "Correct it"))
            continue
        if (chosen or split_of(fields["text"])) != split:
            continue
        in_split += 1
        if not fields["clip"]:
            index.problems.append(Problem(where, "empty clip", "Fill in the clip's path or remove the line"))
            continue
        if not fields["text"]:
            index.problems.append(Problem(where, f"clip {fields['clip']} has an empty text", "Fill it in or remove the line"))
            continue
        glosses = tuple(fields.get("glosses", "").split())
        if "glosses" in fields and not glosses:
            index.problems.append(Problem(where, f"clip {fields['clip']} has empty glosses",
                                          "Fill them in, or remove the glosses column if the corpus has none"))
            continue
        source = root / fields["clip"]
        frames = frame_files(source)
        if not (frames or (is_video_file(source) and source.is_file())):
            reason = ("is not a video file (" + ", ".join(sorted(VIDEO_SUFFIXES)) + ") or a folder of frame images"
                      if source.exists() else "is missing")
            index.problems.append(Problem(str(source), f"{reason} (clip of {where})", "Restore the clip or remove the line"))
            continue
        keypoints = pose_beside(source)
        if not keypoints.is_file():
            if with_keypoints:
                index.problems.append(Problem(
                    str(keypoints), f"is missing: clip {fields['clip']} ({where}) has no keypoints, and the corpus "
                    "has .pose files beside its other clips",
                    "Extract its keypoints to that file (pose-format's video_to_pose) or remove the line"))
                continue
            keypoints = None
        index.records.append(ClipRecord(fields["clip"], source, fields["text"], glosses, frames=len(frames),
                                        keypoints=keypoints))
    if in_split == 0:
        hint = ("its split column names no clip for it" if "split" in table.columns
                else "the hash of the texts puts about 10% of them in val and in test; add a split column to choose")
        raise DataError(f"{path}: no line for the {split} split ({hint}). Each of train, val and test needs at least "
                        "one clip.")
    return index
