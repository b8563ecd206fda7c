"""How2Sign as released: instructional videos in American Sign Language, English sentences, no glosses, and
OpenPose keypoints of the frontal view. Read from either layout users have, PATH being:

    the folder of the downloaded archives, unpacked side by side (the flat layout):
        PATH/how2sign_realigned_{split}.csv                       the sentence table
        PATH/{split}_rgb_front_clips/raw_videos/<NAME>.mp4        the clips
        PATH/{split}_2D_keypoints/openpose_output/json/<NAME>/    the keypoints, a folder per clip

    the official tree, which How2Sign's download script (download_how2sign.sh, how2sign/how2sign.github.io)
    builds by unpacking each archive into its place, chosen when PATH/sentence_level/ exists:
        PATH/sentence_level/{split}/text/en/raw_text/re_aligned/how2sign_realigned_{split}.csv
        PATH/sentence_level/{split}/rgb_front/raw_videos/<NAME>.mp4            ({split}_rgb_front_clips.zip)
        PATH/sentence_level/{split}/rgb_front/features/openpose_output/json/<NAME>/   ({split}_2D_keypoints.tar.gz)

with How2Sign's splits train, val, test. The tables are tab-separated: VIDEO_ID VIDEO_NAME SENTENCE_ID
SENTENCE_NAME START_REALIGNED END_REALIGNED SENTENCE, and <NAME> is the SENTENCE_NAME. The clips are already
cut to one sentence each, so each is read whole; START/END_REALIGNED (the sentence's seconds within the
full-length video) are not needed. Many names start with '-' (they begin with a YouTube id); they are read
like any other.

The corpus has keypoints when their folders exist on disk, for any split; then every split must have them,
and a sentence without its keypoint folder is a bad sample (a corpus whose samples have keypoints only in
part could not batch them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from text2sign.data.records import ClipRecord, DataError, Index, Problem
from text2sign.data.table import read_table

SPLITS = {"train": "train", "val": "val", "test": "test"}
COLUMNS = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE")
OFFICIAL_TREE = "sentence_level"


@dataclass(frozen=True)
class SplitFiles:
    """Where one split's files are, in the layout the corpus folder has."""

    table: Path
    clips: Path  # the folder of <NAME>.mp4
    keypoints: Path  # the folder of <NAME>/ OpenPose folders

    def clip(self, name: str) -> Path:
        return self.clips / f"{name}.mp4"


def split_files(root: Path, split: str) -> SplitFiles:
    name = SPLITS[split]
    tree = root / OFFICIAL_TREE / name
    if (root / OFFICIAL_TREE).is_dir():
        return SplitFiles(tree / "text" / "en" / "raw_text" / "re_aligned" / f"how2sign_realigned_{name}.csv",
                          tree / "rgb_front" / "raw_videos",
                          tree / "rgb_front" / "features" / "openpose_output" / "json")
    return SplitFiles(root / f"how2sign_realigned_{name}.csv", root / f"{name}_rgb_front_clips" / "raw_videos",
                      root / f"{name}_2D_keypoints" / "openpose_output" / "json")


def has_keypoints(root: Path) -> bool:
    """Whether the corpus at `root` has OpenPose keypoints: their folder exists for some split."""
    return any(split_files(root, split).keypoints.is_dir() for split in SPLITS)


def read_index(root: Path, split: str) -> Index:
    files = split_files(root, split)
    if not files.table.is_file():
        raise DataError(f"{files.table}: missing, so the {split} split cannot be read. how2sign:PATH needs the folder "
                        f"that holds how2sign_realigned_{{train,val,test}}.csv and {{train,val,test}}_rgb_front_clips/, "
                        f"or How2Sign's official tree (the folder that holds {OFFICIAL_TREE}/).")
    with_keypoints = has_keypoints(root)
    if with_keypoints and not files.keypoints.is_dir():
        raise DataError(f"{files.keypoints}: missing, though the corpus has keypoints for another split. Unpack "
                        f"{SPLITS[split]}_2D_keypoints.tar.gz there, or move every split's keypoints away to train "
                        f"without them.")
    table = read_table(files.table, "\t", COLUMNS)
    index = Index(problems=list(table.problems))
    for row in table.rows:
        where = f"{files.table}, line {row.line}"
        name, text = row.fields["SENTENCE_NAME"], row.fields["SENTENCE"]
        if not name:
            index.problems.append(Problem(where, "empty SENTENCE_NAME", "Fill in the clip's name or remove the line"))
            continue
        if not text:
            index.problems.append(Problem(where, f"clip {name} has an empty SENTENCE", "Fill it in or remove the line"))
            continue
        clip = files.clip(name)
        if not clip.is_file():
            index.problems.append(Problem(str(clip), f"is missing (clip of {where})",
                                          "Restore it from the release (the rgb_front clips) or remove the line"))
            continue
        keypoints = files.keypoints / name if with_keypoints else None
        if keypoints is not None and not keypoints.is_dir():
            index.problems.append(Problem(str(keypoints), f"is missing (the OpenPose keypoints of {where})",
                                          "Restore it from the release (the 2D keypoints) or remove the line"))
            continue
        index.records.append(ClipRecord(name, clip, text, (), keypoints=keypoints))
    return index
