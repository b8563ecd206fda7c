"""What a real corpus's index is made of: one record per usable clip, one problem per bad row or clip.

Reading an index never decodes video, so it is cheap enough to run before a run starts. Problems are
collected rather than raised where one bad sample should not hide the others: `data.on_error=skip`
leaves them out and reports them, `raise` turns the first one into a `DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SKIP_HINT = "or train with data.on_error=skip to leave such samples out (their count is logged as data/skipped_samples)"


class DataError(ValueError):
    """A corpus file is missing, unreadable or malformed. The message names the file and the fix."""


@dataclass(frozen=True)
class Problem:
    """One sample that cannot be used: where (a file, with the line for a table row), why, and the fix."""

    file: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"

    def error(self) -> DataError:
        return DataError(f"{self.file}: {self.reason}. {self.fix}, {SKIP_HINT}.")


@dataclass(frozen=True)
class ClipRecord:
    """One sample of a real corpus. `source` is a video file or a folder of frame images.

    `frames` is the clip's frame count when the index knows it without opening the clip (a folder of
    frames), else 0. `keypoints` is where the clip's keypoints are (How2Sign's JSON folder, a `.pose` file,
    an extracted entry), None where the corpus has none for it.
    """

    name: str
    source: Path
    text: str
    glosses: tuple[str, ...]
    frames: int = 0
    keypoints: Path | None = None


@dataclass
class Index:
    """A split as its corpus files describe it."""

    records: list[ClipRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
