"""What a corpus on disk holds, split by split, and what is wrong with it: `python -m text2sign.data inspect`.

Reads every split's table and opens every clip: a frame folder's first image, a video's container
header (its frame count). `decode=True` decodes every frame of every clip, which also finds damage
past the header, at the cost of reading the whole corpus.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from text2sign.data import how2sign, phoenix
from text2sign.data.real import SPLITS, read_index
from text2sign.data.records import SKIP_HINT, ClipRecord, DataError, Problem
from text2sign.data.spec import DataSpec
from text2sign.data.video_io import ClipError, count_frames

_CORPUS_SPLITS = {"phoenix2014t": phoenix.SPLITS, "how2sign": how2sign.SPLITS}
_LISTED_PROBLEMS = 20


@dataclass
class SplitReport:
    split: str  # ours: train, val, test
    corpus_split: str  # the corpus's own name for it (PHOENIX calls val "dev")
    frames: list[int] = field(default_factory=list)  # per usable clip
    example: ClipRecord | None = None
    problems: list[Problem] = field(default_factory=list)
    error: str = ""  # why the split cannot be read at all

    @property
    def samples(self) -> int:
        return len(self.frames)

    @property
    def usable(self) -> bool:
        return not self.error and self.samples > 0


def inspect_corpus(spec: DataSpec, decode: bool = False) -> list[SplitReport]:
    reports = []
    for split in SPLITS:
        report = SplitReport(split, _CORPUS_SPLITS.get(spec.kind, {}).get(split, split))
        reports.append(report)
        try:
            index = read_index(spec, split)
        except DataError as error:
            report.error = str(error)
            continue
        report.problems = list(index.problems)
        for record in index.records:
            try:
                report.frames.append(count_frames(record.source, decode))
            except ClipError as error:
                report.problems.append(Problem(str(record.source), str(error), "Re-encode or replace the clip"))
                continue
            report.example = report.example or record
    return reports


def format_reports(spec: DataSpec, reports: list[SplitReport]) -> str:
    lines = [str(spec)]
    for r in reports:
        title = r.split if r.split == r.corpus_split else f"{r.split} ({r.corpus_split})"
        if r.error:
            lines += [f"  {title}: MISSING OR UNREADABLE", f"    {r.error}"]
            continue
        if r.frames:
            lines.append(f"  {title}: {r.samples} samples, frames per clip {min(r.frames)} / "
                         f"{statistics.median(r.frames):g} / {max(r.frames)} (min / median / max)")
        else:
            lines.append(f"  {title}: NO USABLE SAMPLE")
        if r.example is not None:
            glosses = " ".join(r.example.glosses) or "(none)"
            lines.append(f"    example: {r.example.text!r}  glosses: {glosses}")
        lines.append(f"    problems: {len(r.problems) or 'none'}")
        lines += [f"      {p}" for p in r.problems[:_LISTED_PROBLEMS]]
        if len(r.problems) > _LISTED_PROBLEMS:
            lines.append(f"      ... and {len(r.problems) - _LISTED_PROBLEMS} more")
    unusable = [r.split for r in reports if not r.usable]
    if unusable:
        lines.append(f"not usable: {', '.join(unusable)} (see above)")
    elif any(r.problems for r in reports):
        lines.append(f"usable; fix the samples listed above, {SKIP_HINT}")
    else:
        lines.append("usable; no problems found")
    return "\n".join(lines)
