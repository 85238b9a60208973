"""The accounting CSV: RFC 4180, UTF-8, a header row, safe to open in a spreadsheet.

``csv_chunks`` yields encoded pieces so the same code streams an HTTP download and writes
``manage.py billing export --out FILE``; nothing is built up in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

# A spreadsheet treats a cell starting with one of these as a formula (CSV injection).
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """Render one cell; a text that a spreadsheet would run as a formula gets a leading
    single quote. Numbers in the export are never negative, so they are never touched."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_TRIGGERS):
        return "'" + text
    return text


class _Line:
    """A write-only file that hands back what csv.writer wrote."""

    def __init__(self) -> None:
        self.value = ""

    def write(self, text: str) -> int:
        self.value = text
        return len(text)


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """One RFC 4180 record per item (CRLF line ends, quotes doubled, fields quoted as needed)."""
    line = _Line()
    writer = csv.writer(line, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise(h) for h in header])
    yield line.value
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
        yield line.value


def csv_chunks(header: Iterable[str], rows: Iterable[Iterable[Any]], *, lines_per_chunk: int = 500) -> Iterator[bytes]:
    """Encoded UTF-8 chunks of a few hundred records (fewer, larger writes than per line)."""
    buffer: list[str] = []
    for text in csv_lines(header, rows):
        buffer.append(text)
        if len(buffer) >= lines_per_chunk:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
    if buffer:
        yield "".join(buffer).encode("utf-8")
