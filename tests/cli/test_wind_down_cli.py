"""`mutualaid schemes …`, `mutualaid wind-down …` and `mutualaid verify archive` as an operator
and an auditor run them (the commands run on the real clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.builders.schemes import COVID
from tests.builders.wind_down import LOG_KEY, WITNESS_KEYS
from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import account, enroll, publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig
from mutualaid.services.wind_down.wind_down import announce_end, close_plan, end_cover
from mutualaid.transparency.verification import TrustPolicy


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def test_an_operator_attaches_a_scheme_and_sponsors_a_period(tmp_path: Path) -> None:
    scheme = tmp_path / "covid.toml"
    scheme.write_text(COVID, encoding="utf-8")
    attached = mutualaid("schemes", "attach", "xhb-main", str(scheme))
    assert attached.exit_code == 0, attached.output
    assert "scheme covid-19 attached to xhb-main" in said(attached.output)
    listed = mutualaid("schemes", "list", "xhb-main")
    assert [s["code"] for s in json.loads(listed.output)] == ["covid-19"]
    sponsored = mutualaid(
        "schemes",
        "sponsor",
        "xhb-main",
        "--from",
        "2026-12-07",
        "--to",
        "2026-12-07",
        "--memo",
        "launch",
    )
    assert sponsored.exit_code == 0, sponsored.output
    scheme.write_text(COVID.replace("payout_fen", "payout"), encoding="utf-8")
    refused = mutualaid("schemes", "attach", "xhb-main", str(scheme))
    assert refused.exit_code == 2
    assert "invalid_scheme (payout)" in said(refused.output)
    assert_clean_failure(refused)


def test_an_operator_announces_the_end_and_cannot_end_cover_early(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    enroll(ctx, account(ctx), date(1990, 5, 1))
    end_on = (datetime.now(UTC) + timedelta(days=40)).date()
    announced = mutualaid(
        "wind-down",
        "announce",
        "xhb-main",
        "--end-on",
        end_on.isoformat(),
        "--reason",
        "too few members",
    )
    assert announced.exit_code == 0, announced.output
    assert "xhb-main: winding_down" in announced.output
    status = mutualaid("wind-down", "status", "xhb-main", "--json")
    assert json.loads(status.output)["end_on"] == end_on.isoformat()
    early = mutualaid("wind-down", "end-cover", "xhb-main")
    assert early.exit_code == 2 and "end_not_reached" in said(early.output)
    out = tmp_path / "members.csv"
    exported = mutualaid("wind-down", "export-members", "xhb-main", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert "1 memberships written" in said(exported.output)
    assert out.read_text().splitlines()[0].startswith("membership_id,plan,person_ref")


@pytest.fixture
def archive(
    ctx: ServiceContext,
    clock: FixedClock,
    tmp_path: Path,
    witnesses: tuple[LogConfig, httpx.Client, TrustPolicy],
) -> Iterator[Path]:
    config, http, _ = witnesses
    announce_end(ctx, SYSTEM_ACTOR, "xhb-main", date(2026, 3, 5), "closing")
    clock.set(datetime(2026, 3, 5, 2, tzinfo=UTC))
    end_cover(ctx, SYSTEM_ACTOR, "xhb-main")
    clock.set(datetime(2026, 9, 1, 2, tzinfo=UTC))
    out = tmp_path / "archive"
    close_plan(ctx, SYSTEM_ACTOR, "xhb-main", config, out, http=http)
    yield out


def test_an_auditor_verifies_the_archive_offline_with_the_keys_they_trust(
    archive: Path, tmp_path: Path
) -> None:
    keys = ["--log-key", LOG_KEY.verifier().encode()]
    for witness in WITNESS_KEYS:
        keys += ["--witness-key", witness.verifier().encode()]
    verified = mutualaid("verify", "archive", str(archive), *keys)
    assert verified.exit_code == 0, verified.output
    assert "verified: all 6 checks hold" in verified.output
    unkeyed = mutualaid("verify", "archive", str(archive))
    assert unkeyed.exit_code == 0 and "warning: no --log-key" in unkeyed.output
    (archive / "plan.json").write_text("{}")
    tampered = mutualaid("verify", "archive", str(archive), *keys)
    assert tampered.exit_code == 1
    assert "FAILED  manifest: plan.json has SHA-256" in tampered.output
    assert_clean_failure(tampered)
