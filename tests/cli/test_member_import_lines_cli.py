"""`mutualaid members import` with hostile lines: a wrong encoding, a huge field, a huge line.

Each is one refused line in the error report; the good rows around it are imported, the summary
counts what is in the database, and memory stays flat however long a line is.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from tests.factories import publish_demo_plans

import mutualaid
from mutualaid.db.models import Membership
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo_data import random_member_rows

HEADER = ["payer_phone", "full_name", "id_number", "relation", "joined_on"]
LONG_LINE_BYTES = 64 * 1024 * 1024


def _line(row: dict[str, str]) -> bytes:
    return (",".join(row[column] for column in HEADER) + "\n").encode()


def _import(path: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the command in a process of its own; its peak resident memory in bytes."""
    src = str(Path(mutualaid.__file__).parents[1])
    script = (
        "import resource, subprocess, sys;"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stdout.write(done.stdout); sys.stderr.write(done.stderr);"
        "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "sys.exit(done.returncode)"
    )
    command = [sys.executable, "-c", script, sys.executable, "-m", "mutualaid"]
    command += ["members", "import", "xhb-main", str(path), "--chunk-rows", "1000"]
    env = dict(os.environ, PYTHONPATH=src, COLUMNS="300")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    peak = re.search(r"PEAK (\d+)", done.stdout)
    assert peak, done.stdout + done.stderr
    return done, int(peak.group(1)) * 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.slow
def test_bad_lines_are_reported_and_the_summary_counts_what_was_committed(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    publish_demo_plans(ctx)
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    rows = random_member_rows(2600, today)
    gbk = dict(rows[2499], full_name="王小明")
    huge_field = dict(rows[2500], full_name="张" * 100_000)  # 300 KB of UTF-8
    path = tmp_path / "members.csv"
    with path.open("wb") as out:
        out.write((",".join(HEADER) + "\n").encode())
        for row in rows[:2499]:
            out.write(_line(row))  # lines 2 .. 2500
        out.write(_line(gbk).decode().encode("gbk"))  # line 2501
        out.write(_line(huge_field))  # line 2502
        out.write(b"13800000000,")  # line 2503: 64 MB with no newline in sight
        block = b"x" * (1 << 20)
        for _ in range(LONG_LINE_BYTES // len(block)):
            out.write(block)
        out.write(b"\n")
        for row in rows[2502:]:
            out.write(_line(row))  # lines 2504 .. 2601

    done, peak = _import(path)

    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    with ctx.reading() as session:
        committed = session.scalar(select(func.count()).select_from(Membership))
    assert committed == 2597
    assert f"2,600 rows read, {committed:,} imported, 3 refused" in " ".join(done.stdout.split())
    with path.with_suffix(".errors.csv").open(newline="", encoding="utf-8") as report:
        refused = [(r["line"], r["code"]) for r in csv.DictReader(report)]
    assert refused == [
        ("2501", "invalid_encoding"),
        ("2502", "field_too_long"),
        ("2503", "line_too_long"),
    ]

    small = tmp_path / "small.csv"
    small.write_bytes((",".join(HEADER) + "\n").encode() + b"".join(map(_line, rows[:100])))
    _, baseline = _import(small)
    # Reading the long line whole would cost at least its 64 MB (a str of it, and the csv copy).
    assert peak - baseline < 16 * 1024 * 1024, (peak, baseline)
