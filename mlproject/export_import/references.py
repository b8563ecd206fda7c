"""What differs between two stores holding the same runs: run ids and registered version numbers.

A store gives every run it creates a new id and every registered version the next number, so a run imported
elsewhere is the same run under another id. Where a tag names another run (a child's parent, its study) or a
registered version (the judge that read it, its own registered checkpoint), importing translates the name into
the store's, and exporting translates it back into the record's: a run exported, imported and exported again
gives the same record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Tags whose value is a run id.
RUN_ID_TAGS = ("mlflow.parentRunId", "study")
# Tags whose value names a registered version, and how: `eval/recognizer` as evaluation writes it
# ("<name> version <n>"), the others as `<name>/<n>`.
VERSION_TAGS = {"eval/recognizer": " version ", "registry/model": "/", "study/judge": "/"}
_REFERENCE = re.compile(r"^(?P<name>[^\s/]+)(?: version |/)(?P<version>\d+)$")


@dataclass
class References:
    """Run ids and versions of one store, each with its counterpart in the other."""

    runs: dict[str, str] = field(default_factory=dict)
    versions: dict[tuple[str, str], str] = field(default_factory=dict)  # (model name, version) -> version
    models: dict[str, str] = field(default_factory=dict)  # logged model id (a registered version's files) -> id

    def run(self, run_id: str) -> str:
        return self.runs.get(run_id, run_id)

    def tags(self, tags: dict[str, str]) -> dict[str, str]:
        """`tags` with every run id and version they name translated where known, the rest as they were."""
        translated = dict(tags)
        for key in RUN_ID_TAGS:
            if key in translated:
                translated[key] = self.run(translated[key])
        for key, separator in VERSION_TAGS.items():
            reference = model_reference(translated.get(key, ""))
            if reference in self.versions:
                translated[key] = f"{reference[0]}{separator}{self.versions[reference]}"
        return translated


def model_reference(text: str) -> tuple[str, str] | None:
    """(name, version) from `<name> version <n>` or `<name>/<n>`; None for anything else."""
    match = _REFERENCE.match(text.strip())
    return (match["name"], match["version"]) if match else None
