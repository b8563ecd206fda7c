"""The corpus a run reads, as a user names it: `synthetic`, `fingerspelling`, or `kind:PATH` for a corpus on disk.

Parsed here and nowhere else, so the config check, the datasets, the run's `dataset` tag and the
recognizer's registry name all agree on what a spec means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from text2sign.config import ConfigError

# kind -> what its PATH must be
KINDS: dict[str, str] = {
    "synthetic": "",
    "phoenix2014t": "the PHOENIX-2014-T folder that holds annotations/ and features/",
    "how2sign": "the folder that holds how2sign_realigned_{train,val,test}.csv and {train,val,test}_rgb_front_clips/ "
                "(or the official tree's sentence_level/)",
    "folder": "a folder of clips with a texts.csv (columns clip,text and optionally glosses, split)",
    "fingerspelling": "a folder laid out like spoken-to-signed's fingerspelling lexicon (data.csv, <language>/*.pose)",
}
# Built in: `synthetic` is generated; `fingerspelling` alone is the lexicon the spoken-to-signed package installs.
BUILT_IN = {"synthetic", "fingerspelling"}
SYNTAX = "synthetic, phoenix2014t:PATH, how2sign:PATH, folder:PATH or fingerspelling[:PATH]"


@dataclass(frozen=True)
class DataSpec:
    kind: str
    path: Path | None = None

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"

    @property
    def slug(self) -> str:
        """The kind and the corpus folder's name in [a-z0-9-]: a stable name for the model registry.

        The folder's name rather than its full path, so a corpus moved to another disk keeps its name
        (and its registered recognizer).
        """
        if self.path is None:
            return self.kind
        folder = re.sub(r"[^a-z0-9]+", "-", self.path.name.lower()).strip("-")[:40].strip("-")
        return f"{self.kind}-{folder}" if folder else self.kind

    @classmethod
    def from_text(cls, text: str, key: str = "data.name") -> DataSpec:
        """The syntax alone: a known kind, and a path exactly for the kinds on disk."""
        kind, colon, path = text.partition(":")
        kind = kind.strip()
        if kind not in KINDS:
            raise ConfigError(f"{key}: unknown corpus {text!r}; expected {SYNTAX}.")
        if kind == "synthetic":
            if colon:
                raise ConfigError(f"{key}: 'synthetic' is built in and takes no path, got {text!r}; use synthetic.")
            return cls(kind)
        if kind in BUILT_IN and not colon:
            return cls(kind)
        if not path.strip():
            raise ConfigError(f"{key}: {kind} needs a path, {kind}:PATH, where PATH is {KINDS[kind]}.")
        return cls(kind, Path(path.strip()).expanduser())


def parse_data_spec(text: str, key: str = "data.name") -> DataSpec:
    """`text` checked against the disk: the path must be a folder; it comes back absolute."""
    spec = DataSpec.from_text(text, key)
    if spec.path is None:
        return spec
    if not spec.path.is_dir():
        raise ConfigError(f"{key}: {spec.path} (from {text!r}) is not a folder; {spec.kind}:PATH needs the path of "
                          f"{KINDS[spec.kind]}.")
    return DataSpec(spec.kind, spec.path.resolve())
