"""How2Sign as released: instructional videos in American Sign Language, English sentences, no glosses.

    PATH/how2sign_realigned_{train,val,test}.csv     VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME
                                                     START_REALIGNED END_REALIGNED SENTENCE  (tab-separated)
    PATH/{train,val,test}_rgb_front_clips/raw_videos/{SENTENCE_NAME}.mp4

The clips are already cut to one sentence each, so each is read whole; START/END_REALIGNED (the
sentence's seconds within the full-length video) are not needed. Many names start with '-' (they
begin with a YouTube id); they are read like any other.
"""

from __future__ import annotations

from pathlib import Path

from text2sign.data.records import ClipRecord, DataError, Index, Problem
from text2sign.data.table import read_table

SPLITS = {"train": "train", "val": "val", "test": "test"}
COLUMNS = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE")


def annotation_file(root: Path, split: str) -> Path:
    return root / f"how2sign_realigned_{SPLITS[split]}.csv"


def clip_file(root: Path, split: str, sentence_name: str) -> Path:
    return root / f"{SPLITS[split]}_rgb_front_clips" / "raw_videos" / f"{sentence_name}.mp4"


def read_index(root: Path, split: str) -> Index:
    path = annotation_file(root, split)
    if not path.is_file():
        raise DataError(f"{path}: missing, so the {split} split cannot be read. how2sign:PATH needs the folder that "
                        f"holds how2sign_realigned_{{train,val,test}}.csv and {{train,val,test}}_rgb_front_clips/.")
    table = read_table(path, "\t", COLUMNS)
    index = Index(problems=list(table.problems))
    for row in table.rows:
        where = f"{path}, line {row.line}"
        name, text = row.fields["SENTENCE_NAME"], row.fields["SENTENCE"]
        if not name:
            index.problems.append(Problem(where, "empty SENTENCE_NAME", "Fill in the clip's name or remove the line"))
            continue
        if not text:
            index.problems.append(Problem(where, f"clip {name} has an empty SENTENCE", "Fill it in or remove the line"))
            continue
        clip = clip_file(root, split, name)
        if not clip.is_file():
            index.problems.append(Problem(str(clip), f"is missing (clip of {where})",
                                          "Restore it from the release (the rgb_front clips) or remove the line"))
            continue
        index.records.append(ClipRecord(name, clip, text, ()))
    return index
