"""`mutualaid periods …`: close, notice, export, collect, pay, statement and proof, as an operator
would run them on the server (the commands run on the real clock)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import TEST_LOG_KEY, account, approved_claim, enroll, use_rules

from mutualaid.clock import FixedClock
from mutualaid.domain.calendars import start_of_day
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint

SHANGHAI = ZoneInfo("Asia/Shanghai")


def last_publicity_day() -> date:
    day = datetime.now(UTC).astimezone(SHANGHAI).date()
    while day.day not in (7, 21):
        day -= timedelta(days=1)
    return day


def test_an_operator_closes_collects_and_pays_a_period_from_the_command_line(
    ctx: ServiceContext, clock: FixedClock, tmp_path: Path
) -> None:
    use_rules(ctx)
    on = last_publicity_day()
    lock = start_of_day(on, SHANGHAI)
    clock.set(lock - timedelta(days=60))
    memberships = [enroll(ctx, account(ctx), date(1985 + i, 3, 1)).id for i in range(3)]
    approved_claim(ctx, memberships[0], 600, lock - timedelta(days=1))

    closed = mutualaid("periods", "close", "xhb-main", "--on", on.isoformat())
    assert closed.exit_code == 0, closed.output
    assert "share per member" in closed.output and "¥2.16" in said(closed.output)

    notice = mutualaid("periods", "notice", "xhb-main", "--on", on.isoformat(), "--json")
    assert notice.exit_code == 0, notice.output
    body = json.loads(notice.output)
    assert body["period"]["member_count"] == 3 and all(c["holds"] for c in body["checks"])
    assert "✓" in mutualaid("periods", "notice", "xhb-main", "--on", on.isoformat()).output

    out = tmp_path / "collection.csv"
    exported = mutualaid(
        "periods", "export-collection", "xhb-main", "--on", on.isoformat(), str(out)
    )
    assert exported.exit_code == 0, exported.output
    assert len(out.read_text().splitlines()) == 4

    collected = mutualaid("periods", "collect", "xhb-main", "--on", on.isoformat())
    assert collected.exit_code == 0, collected.output
    assert "3 payers asked" in said(collected.output)
    paid = mutualaid("periods", "pay", "xhb-main", "--on", on.isoformat())
    assert paid.exit_code == 0, paid.output
    assert "1 paid" in said(paid.output) and "period paid" in said(paid.output)

    statement = mutualaid("periods", "statement", str(memberships[1]), "--json")
    assert statement.exit_code == 0, statement.output
    assert [
        (line["charge_fen"], line["status"]) for line in json.loads(statement.output)["lines"]
    ] == [(216, "paid")]
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    proof = mutualaid(
        "periods",
        "proof",
        str(memberships[2]),
        "xhb-main",
        "--on",
        on.isoformat(),
        "--out",
        str(tmp_path / "proof.json"),
    )
    assert proof.exit_code == 0, proof.output
    assert json.loads((tmp_path / "proof.json").read_text())["charge_fen"] == 216
    checked = mutualaid(
        "verify",
        "charge",
        str(tmp_path / "proof.json"),
        "--log-key",
        TEST_LOG_KEY.verifier().encode(),
    )
    assert checked.exit_code == 0, checked.output
    assert "all 9 links hold" in checked.output
    listed = mutualaid("periods", "list", "xhb-main")
    assert on.isoformat() in listed.output and "paid" in listed.output


def test_a_day_that_is_not_a_publicity_day_is_refused_cleanly(ctx: ServiceContext) -> None:
    use_rules(ctx)
    refused = mutualaid("periods", "close", "xhb-main", "--on", "2026-03-08")
    assert refused.exit_code == 2
    assert_clean_failure(refused)
    assert "not_a_publicity_day" in said(refused.output)
