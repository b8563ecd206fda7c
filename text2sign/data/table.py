"""Reading a corpus's text table (PHOENIX's pipe-separated, How2Sign's tab-separated, a folder's CSV).

The header must name the expected columns, or the whole file is refused (a wrong file or separator
breaks every row). A single bad row (wrong field count, bytes that are not UTF-8) is a `Problem` of
that row only: the file is decoded with `surrogateescape`, so a stray Latin-1 byte marks its own row
instead of making the file unreadable.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from text2sign.data.records import DataError, Problem

_NOT_UTF8 = "Fix its encoding (e.g. iconv -f latin1 -t utf-8) or remove the line"


@dataclass(frozen=True)
class Row:
    line: int
    fields: dict[str, str]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[Row]
    problems: list[Problem]  # the rows that could not be read


def _undecodable(text: str) -> bytes:
    """The raw bytes that `surrogateescape` kept as lone surrogates, i.e. the ones that are not UTF-8."""
    return bytes(ord(c) - 0xDC00 for c in text if "\udc80" <= c <= "\udcff")


def read_table(
    path: Path, delimiter: str, required: Sequence[str], optional: Sequence[str] = (), *, strict: bool = False,
    quoted: bool = False,
) -> Table:
    """The rows of `path` as {column: stripped value}, and the rows that could not be read.

    `required` columns must all be in the header; with `strict`, no column outside `required` and
    `optional` may be (a typo like `gloss` for `glosses` would otherwise drop a column silently).
    `quoted`: fields may be quoted, as in a spreadsheet's CSV export; the published corpora are not,
    and their texts contain quote marks.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error}). Check the file's permissions.") from None
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)
    header = [name.strip() for name in next(reader, [])]
    separator = {"\t": "tab", "|": "'|'", ",": "','"}.get(delimiter, repr(delimiter))
    expected = delimiter.join(required) + "".join(f"[{delimiter}{name}]" for name in optional)
    if not header or not any(header):
        raise DataError(f"{path}: is empty; its first line must be the header {expected} ({separator}-separated).")
    if _undecodable("".join(header)):
        raise DataError(f"{path}: its header is not UTF-8 text; save the file as UTF-8 with the header {expected}.")
    missing = [name for name in required if name not in header]
    unknown = [name for name in header if name not in (*required, *optional)] if strict else []
    if missing or unknown or len(set(header)) != len(header):
        details = "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown {', '.join(unknown)}" if unknown else "",
            "a column is repeated" if len(set(header)) != len(header) else "",
        ) if part)
        raise DataError(f"{path}: wrong columns ({details}). The first line must be {expected} "
                        f"({separator}-separated); it is {delimiter.join(header)!r}.")

    rows, problems = [], []
    for fields in reader:
        line = reader.line_num
        if not fields or not any(f.strip() for f in fields):
            continue  # a blank line
        where = f"{path}, line {line}"
        bad = _undecodable("".join(fields))
        if bad:
            problems.append(Problem(where, f"not UTF-8 text (bytes {bad[:8].hex(' ')})", _NOT_UTF8))
            continue
        if len(fields) != len(header):
            problems.append(Problem(where, f"{len(fields)} {separator}-separated fields where the header has "
                                           f"{len(header)} ({delimiter.join(header)})",
                                    "Fix or remove the line"))
            continue
        rows.append(Row(line, {name: value.strip() for name, value in zip(header, fields)}))
    return Table(tuple(header), rows, problems)
