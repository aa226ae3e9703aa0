"""Reading an uploaded CSV file line by line with every line's size bounded.

A member file comes from another system: a line in the wrong encoding, a field pasted a thousand
times, a line with no newline for a gigabyte. Each of those is a problem with one line, reported
with its number, never a reason to stop reading or to hold the whole line in memory: a line is
read at most `max_line_bytes` at a time, and the rest of an overlong line is skipped in pieces of
that size until its newline.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

MAX_LINE_BYTES = 1024 * 1024
MAX_FIELD_CHARS = 1000
_BOM = "\ufeff"

#: line number, error code, field, message: one row of an import's error report.
LineProblem = tuple[int, str, str, str]


def bounded_lines(
    source: IO[bytes] | IO[str], problems: list[LineProblem], max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, str]]:
    """The file's lines (numbered from 1) as text; an unreadable line becomes a problem instead."""
    line_no = 0
    while line := source.readline(max_line_bytes + 1):
        line_no += 1
        if len(line) > max_line_bytes:
            _skip_rest_of_line(source, max_line_bytes)
            problems.append(
                (line_no, "line_too_long", "", f"the line is longer than {max_line_bytes} bytes")
            )
            continue
        if isinstance(line, bytes):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                problems.append(
                    (
                        line_no,
                        "invalid_encoding",
                        "",
                        f"byte {error.start + 1} of the line is not UTF-8; save the file as UTF-8",
                    )
                )
                continue
        else:
            text = line
        yield line_no, text.removeprefix(_BOM) if line_no == 1 else text


def _skip_rest_of_line(source: IO[bytes] | IO[str], piece: int) -> None:
    while True:
        rest = source.readline(piece)
        if not rest or rest[-1:] in (b"\n", "\n"):
            return


def parse_line(text: str) -> list[str]:
    """One CSV line's fields (a line is one row: no field spans lines in a member file)."""
    return next(csv.reader([text]), [])


def oversized_field(row: list[str], max_chars: int = MAX_FIELD_CHARS) -> int | None:
    """The position of the first field longer than `max_chars`, or None."""
    return next((i for i, value in enumerate(row) if len(value) > max_chars), None)
