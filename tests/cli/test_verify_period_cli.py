"""Issue 14: `mutualaid verify period` recomputes closed periods from the log alone.

Members join (one after the first lock), the rules change between the periods, a case is decided
before each lock, a member who does not pay is suspended and removed; then the log's entry
bundles and the plan files they name are all an auditor gets, and the recomputation agrees with
both periods to the fen. One altered membership event is caught.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.builders.claims import through_investigation
from tests.builders.wind_down import at
from tests.cli.cli import mutualaid, said
from tests.factories import (
    MAIN_PLAN,
    close_on,
    join_at,
    members,
    publish_demo_plans,
    staff,
    use_rules,
)

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import decide_claim
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.prepaid import top_up
from mutualaid.services.collections.retries import retry_failed_payments
from mutualaid.services.context import ServiceContext
from mutualaid.services.periods.views import PeriodView
from mutualaid.services.plans.plans import plan_file
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.services.transparency.log import integrate_all
from mutualaid.services.transparency.proofs import entry_bundle, log_size
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.leaves import decode_leaf
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.tiles import (
    TILE_WIDTH,
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
)

MARCH_7, MARCH_21 = date(2026, 3, 7), date(2026, 3, 21)


def claim(ctx: ServiceContext, holder: Actor, membership_id: int) -> str:
    return report_claim(
        ctx,
        holder,
        ClaimReport(
            membership_id=membership_id,
            illness_code="CI02",
            diagnosed_on=date(2026, 2, 5),
            hospital="浙江省人民医院",
        ),
    ).ref


def decide(ctx: ServiceContext, ref: str) -> None:
    """Review, investigation and the decision to approve: publicity on the next publicity day."""
    through_investigation(ctx, ref)
    decide_claim(ctx, staff(ctx, Role.REVIEWER), ref, approve=True)


def publicise(ctx: ServiceContext, clock: FixedClock, publicity_on: date) -> None:
    """Three days of publicity from 00:00 (Shanghai) on `publicity_on`: the case is approved."""
    operator = staff(ctx, Role.OPERATOR)
    opens = datetime(publicity_on.year, publicity_on.month, publicity_on.day, tzinfo=UTC)
    clock.set(opens - timedelta(hours=8))
    assert run_publicity(ctx, MAIN_PLAN, operator).published == 1
    clock.set(opens - timedelta(hours=8) + timedelta(days=3))
    assert run_publicity(ctx, MAIN_PLAN, operator).approved == 1


def two_periods(ctx: ServiceContext, clock: FixedClock) -> tuple[PeriodView, PeriodView]:
    at(clock, date(2026, 2, 10))
    publish_demo_plans(ctx)
    # A prepaid plan; the per-case cap binds (0.10 yuan a case), the sponsor pays the rest.
    use_rules(ctx, funding_model="prepaid", per_case_fen=10, fee_bp=800, retry_days=2)
    people = members(ctx, clock, 5)
    for holder, _ in people[:4]:
        top_up(ctx, holder, MAIN_PLAN, 1_000)
    top_up(ctx, people[4][0], MAIN_PLAN, 5)  # cannot pay a share: suspended, then removed
    decide(ctx, claim(ctx, *_member(people[0])))
    publicise(ctx, clock, date(2026, 2, 21))  # approved on 24 February: the first period's
    at(clock, date(2026, 2, 25))
    decide(ctx, claim(ctx, *_member(people[1])))
    publicise(ctx, clock, MARCH_7)  # approved on 10 March, after the first lock
    first = close_on(ctx, clock, MARCH_7)
    join_at(ctx, clock, datetime(2026, 3, 10, 2, tzinfo=UTC))  # shares from the second period
    at(clock, date(2026, 3, 14))
    collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, None)
    at(clock, date(2026, 3, 15))
    use_rules(ctx, funding_model="prepaid", per_case_fen=10, fee_bp=500, retry_days=2)
    at(clock, date(2026, 3, 17))
    assert retry_failed_payments(ctx, SYSTEM_ACTOR, MAIN_PLAN).removed == 1
    second = close_on(ctx, clock, MARCH_21)
    integrate_all(ctx)
    return first, second


def _member(person: tuple[Actor, object]) -> tuple[Actor, int]:
    holder, membership = person
    return holder, membership.id  # type: ignore[attr-defined]


def export_log(ctx: ServiceContext, root: Path) -> list[bytes]:
    """What an auditor downloads: every entry bundle and every plan file the log names."""
    with ctx.reading() as session:
        size = log_size(session)
        entries: list[bytes] = []
        for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, size - index * TILE_WIDTH)
            bundle = entry_bundle(session, index, width)
            path = root / TileRef(None, index, width).path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_entry_bundle(bundle))
            entries += bundle
    (root / "plan-files").mkdir()
    for data in entries:
        leaf = decode_leaf(data)
        if leaf.type == "plan_version":
            sha256 = str(leaf.fields["rules_sha256"])
            (root / "plan-files" / sha256).write_bytes(plan_file(ctx, sha256))
    return entries


def alter_join(root: Path, membership_id: int, occurred_at: int) -> None:
    """Rewrite one membership's join leaf in the auditor's copy (what a forger would do)."""
    for path in (root / "tile" / "entries").rglob("*"):
        if not path.is_file():
            continue
        bundle = decode_entry_bundle(path.read_bytes())
        for position, data in enumerate(bundle):
            leaf = decode_leaf(data)
            if leaf.type == "membership_event" and leaf.fields == {
                **leaf.fields,
                "membership_ref": f"m-{membership_id}",
                "event": "join",
            }:
                old = f'"occurred_at":{leaf.fields["occurred_at"]},'.encode()
                bundle[position] = data.replace(old, f'"occurred_at":{occurred_at},'.encode())
                path.write_bytes(encode_entry_bundle(bundle))
                return
    raise AssertionError(f"no join leaf of m-{membership_id}")


def test_both_periods_recompute_from_the_log_alone_and_an_altered_event_is_caught(
    ctx: ServiceContext, clock: FixedClock, tmp_path: Path
) -> None:
    first, second = two_periods(ctx, clock)
    assert (first.member_count, second.member_count) == (5, 5)
    log = tmp_path / "log"
    entries = export_log(ctx, log)

    for period, view in ((MARCH_7, first), (MARCH_21, second)):
        result = mutualaid("verify", "period", MAIN_PLAN, period.isoformat(), "--from", str(log))
        assert result.exit_code == 0, result.output
        text = said(result.output)
        assert "every figure agrees" in text
        assert f"ok share_fen: {view.share_fen}" in text
        assert f"ok total_charged_fen: {view.total_charged_fen}" in text
        assert f"ok member_count: {view.member_count}" in text
    assert "plan version 3" in said(
        mutualaid("verify", "period", MAIN_PLAN, "2026-03-21", "--from", str(log)).output
    )

    # A forger moves one member's join after the first lock: that period no longer adds up.
    forged = tmp_path / "forged"
    shutil.copytree(log, forged)
    lock = int(datetime(2026, 3, 6, 16, tzinfo=UTC).timestamp())
    first_member = _first_membership(entries)
    alter_join(forged, first_member, lock + 60)
    result = mutualaid("verify", "period", MAIN_PLAN, "2026-03-07", "--from", str(forged))
    assert result.exit_code == 1, result.output
    assert "FAILED member_count: the log gives 4, the period's commitment says 5" in said(
        result.output
    )
    assert "figure(s) differ from the commitment" in said(result.output)

    # With the log's signed checkpoint, the altered leaf is caught before any arithmetic.
    signer = generate_signer_key("log.test.example", seed=bytes(32))
    tree = MemoryTree.from_entries(entries)
    note = sign_checkpoint(Checkpoint("log.test.example", tree.size, tree.root()), signer)
    for directory in (log, forged):
        (directory / "checkpoint").write_text(note, encoding="utf-8")
    log_key = signer.verifier().encode()
    honest = mutualaid(
        "verify", "period", MAIN_PLAN, "2026-03-07", "--from", str(log), "--log-key", log_key
    )
    assert honest.exit_code == 0, honest.output
    assert "root matches the leaves; signed by the log" in said(honest.output)
    caught = mutualaid(
        "verify", "period", MAIN_PLAN, "2026-03-07", "--from", str(forged), "--log-key", log_key
    )
    assert caught.exit_code == 1
    assert "do not make the checkpoint's tree" in said(caught.output)


def _first_membership(entries: list[bytes]) -> int:
    for data in entries:
        leaf = decode_leaf(data)
        if leaf.type == "membership_event":
            return int(str(leaf.fields["membership_ref"]).removeprefix("m-"))
    raise AssertionError("no membership on the log")


def test_a_period_missing_from_the_log_is_a_clear_failure(
    ctx: ServiceContext, clock: FixedClock, tmp_path: Path
) -> None:
    two_periods(ctx, clock)
    export_log(ctx, tmp_path)
    result = mutualaid("verify", "period", MAIN_PLAN, "2026-04-07", "--from", str(tmp_path))
    assert result.exit_code == 1
    assert "no period_commitment leaf for xhb-main/2026-04-07" in said(result.output)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("period", ["07-03-2026", "2026-13-01"])
def test_a_malformed_period_is_refused(period: str, tmp_path: Path) -> None:
    result = mutualaid("verify", "period", MAIN_PLAN, period, "--from", str(tmp_path))
    assert result.exit_code == 2
    assert "is not a date" in said(result.output)


def test_a_period_is_recomputed_from_the_servers_log(
    ctx: ServiceContext, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--server reads /log/checkpoint, the entry bundles and /api/v1/plan-files/… (here through
    the app in-process), and checks the leaves against the signed checkpoint."""
    first, _ = two_periods(ctx, clock)
    signer = generate_signer_key("log.test.example", seed=bytes(32))
    publish_checkpoint(ctx, LogConfig(signer))
    client = TestClient(create_app(ctx))

    def get(url: str, **_: object) -> httpx.Response:
        assert url.startswith("https://aid.example/")
        answer = client.get(url.removeprefix("https://aid.example"))
        return httpx.Response(answer.status_code, content=answer.content)

    monkeypatch.setattr(httpx, "get", get)
    result = mutualaid(
        "verify",
        "period",
        MAIN_PLAN,
        "2026-03-07",
        "--server",
        "https://aid.example",
        "--log-key",
        signer.verifier().encode(),
    )
    assert result.exit_code == 0, result.output
    text = said(result.output)
    assert "root matches the leaves; signed by the log" in text
    assert f"ok total_charged_fen: {first.total_charged_fen}" in text
