"""RWTH-PHOENIX-Weather-2014T as released: German weather forecasts in DGS, with glosses.

    PATH/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv   name|video|start|end|speaker|orth|translation
    PATH/features/fullFrame-210x260px/{train,dev,test}/{name}/images0001.png ...

PATH is the release's `PHOENIX-2014-T` folder. The text is `translation` (lower-case German), the
glosses are `orth`; our val split is PHOENIX's dev split.
"""

from __future__ import annotations

from pathlib import Path

from text2sign.data.records import ClipRecord, DataError, Index, Problem
from text2sign.data.table import read_table
from text2sign.data.video_io import frame_files

SPLITS = {"train": "train", "val": "dev", "test": "test"}  # ours -> PHOENIX's
COLUMNS = ("name", "video", "start", "end", "speaker", "orth", "translation")
FRAMES = Path("features") / "fullFrame-210x260px"


def annotation_file(root: Path, split: str) -> Path:
    return root / "annotations" / "manual" / f"PHOENIX-2014-T.{SPLITS[split]}.corpus.csv"


def read_index(root: Path, split: str) -> Index:
    path = annotation_file(root, split)
    if not path.is_file():
        hint = (" (PATH looks like the archive's top folder: point at its PHOENIX-2014-T subfolder)"
                if (root / "PHOENIX-2014-T").is_dir() else "")
        raise DataError(f"{path}: missing, so the {split} split ({SPLITS[split]} in PHOENIX) cannot be read. "
                        f"phoenix2014t:PATH needs the release's PHOENIX-2014-T folder, which holds annotations/ "
                        f"and features/{hint}.")
    table = read_table(path, "|", COLUMNS)
    index = Index(problems=list(table.problems))
    for row in table.rows:
        where = f"{path}, line {row.line}"
        name, text, glosses = row.fields["name"], row.fields["translation"], tuple(row.fields["orth"].split())
        if not name:
            index.problems.append(Problem(where, "empty name", "Fill in the clip's folder name or remove the line"))
            continue
        if not text:
            index.problems.append(Problem(where, f"clip {name} has an empty translation", "Fill it in or remove the line"))
            continue
        if not glosses:
            index.problems.append(Problem(where, f"clip {name} has an empty orth (glosses)", "Fill it in or remove the line"))
            continue
        folder = root / FRAMES / SPLITS[split] / name
        frames = frame_files(folder)
        if not frames:
            reason = "holds no PNG frames" if folder.is_dir() else "is missing"
            index.problems.append(Problem(str(folder), f"{reason} (clip of {where})",
                                          "Restore the clip's frames from the release"))
            continue
        index.records.append(ClipRecord(name, folder, text, glosses, frames=len(frames)))
    return index
