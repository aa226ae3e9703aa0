"""A plan's whole life, end to end: launch, sponsored cover, normal periods, the announcement of
its end, run-off claims and closure — then the money is checked to the fen and the archive is
verified offline, as an auditor would, with no database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.builders.claims import through_investigation
from tests.builders.schemes import COVID
from tests.builders.wind_down import at, publish_rules
from tests.factories import MAIN_PLAN, account, close_on, enroll, members, staff

from mutualaid.clock import FixedClock
from mutualaid.db.models import Claim, Period, PrepaidRefund
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import DomainError
from mutualaid.domain.ledger import SPONSOR
from mutualaid.domain.schemes import PlanStatus
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import decide_claim
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.payouts import pay_approved_claims
from mutualaid.services.collections.prepaid import top_up
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.periods.notice import period_notice
from mutualaid.services.periods.statements import member_statement
from mutualaid.services.plans.schemes import attach_scheme, sponsor_periods
from mutualaid.services.transparency.checkpoints import LogConfig, proof_bundle
from mutualaid.services.wind_down.exports import member_record
from mutualaid.services.wind_down.wind_down import announce_end, close_plan, end_cover
from mutualaid.transparency.archives import verify_archive
from mutualaid.transparency.verification import TrustPolicy

TOP_UPS = [1_000, 1_000, 1_000, 1_000, 5]
SHARE = 10  # the per-case cap binds: 0.10 yuan per member per case, the sponsor pays the rest


def file(
    ctx: ServiceContext,
    holder: Actor,
    membership_id: int,
    diagnosed_on: date,
    scheme: str | None = None,
) -> str:
    return report_claim(
        ctx,
        holder,
        ClaimReport(
            membership_id=membership_id,
            illness_code="CI02",
            diagnosed_on=diagnosed_on,
            hospital="浙江省人民医院",
            scheme_code=scheme,
        ),
    ).ref


def decide_and_publicise(
    ctx: ServiceContext, clock: FixedClock, refs: list[str], publicity_on: date
) -> None:
    """Review, investigation and re-review now; publicity from `publicity_on` for three days."""
    for ref in refs:
        through_investigation(ctx, ref)
        decide_claim(ctx, staff(ctx, Role.REVIEWER), ref, approve=True)
    operator = staff(ctx, Role.OPERATOR)
    opens = datetime(
        publicity_on.year, publicity_on.month, publicity_on.day, tzinfo=UTC
    ) - timedelta(hours=8)  # 00:00 in Shanghai
    clock.set(opens)
    assert run_publicity(ctx, MAIN_PLAN, operator).published == len(refs)
    clock.set(opens + timedelta(days=3))
    assert run_publicity(ctx, MAIN_PLAN, operator).approved == len(refs)


def settle(ctx: ServiceContext, clock: FixedClock, publicity_on: date) -> Period:
    """Close, collect (on the debit day) and pay the period of `publicity_on`."""
    close_on(ctx, clock, publicity_on)
    at(clock, publicity_on.replace(day=publicity_on.day + 7))
    collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, publicity_on)
    pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, publicity_on)
    with ctx.reading() as session:
        return session.scalars(select(Period).where(Period.publicity_on == publicity_on)).one()


def test_a_plan_from_launch_to_closure_charges_only_what_the_rules_allow_and_verifies_offline(
    ctx: ServiceContext,
    clock: FixedClock,
    tmp_path: Path,
    witnesses: tuple[LogConfig, httpx.Client, TrustPolicy],
) -> None:
    config, http, policy = witnesses
    # --- launch (10 Feb 2026): a prepaid plan, the COVID-19 cover, the first period on the sponsor
    at(clock, date(2026, 2, 10))
    publish_rules(ctx, funding_model="prepaid", rule="sponsor_paid", per_case_fen=SHARE)
    attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
    sponsor_periods(
        ctx,
        SYSTEM_ACTOR,
        MAIN_PLAN,
        "period",
        date(2026, 3, 7),
        date(2026, 3, 7),
        "the first apportionment is on the operator",
    )
    people = members(ctx, clock, len(TOP_UPS))
    for (holder, _), amount in zip(people, TOP_UPS, strict=True):
        top_up(ctx, holder, MAIN_PLAN, amount)

    # --- normal periods: case A on the sponsor's promotion, case B under the COVID-19 scheme,
    # case C shared (0.10 yuan each, the per-case cap), one payer short of money.
    a = file(ctx, people[0][0], people[0][1].id, date(2026, 2, 5))
    decide_and_publicise(ctx, clock, [a], date(2026, 2, 21))
    first = settle(ctx, clock, date(2026, 3, 7))
    assert (first.sponsored_by, first.total_charged_fen, first.case_count) == ("promotion", 0, 1)

    at(clock, date(2026, 3, 1))
    b = file(ctx, people[1][0], people[1][1].id, date(2026, 2, 27), scheme="covid-19")
    c = file(ctx, people[2][0], people[2][1].id, date(2026, 2, 25))
    decide_and_publicise(ctx, clock, [b, c], date(2026, 3, 7))
    second = settle(ctx, clock, date(2026, 3, 21))
    assert (second.case_count, second.share_fen, second.member_count) == (1, SHARE, 4)
    assert second.sponsored_aid_fen == 10_000_000 and second.failed_fen == SHARE
    notice = period_notice(ctx, MAIN_PLAN, date(2026, 3, 21))
    assert ([x.ref for x in notice.cases], [x.ref for x in notice.sponsored_cases]) == ([c], [b])

    # --- the announcement (29 March): no joins; the shares stop at once (sponsor_paid)
    at(clock, date(2026, 3, 29))
    announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 4, 15), "below the minimum membership")
    with pytest.raises(DomainError) as refused:
        enroll(ctx, account(ctx), date(1990, 1, 1))
    assert refused.value.code == "plan_winding_down"
    d = file(ctx, people[3][0], people[3][1].id, date(2026, 3, 25))
    decide_and_publicise(ctx, clock, [d], date(2026, 4, 7))
    quiet = settle(ctx, clock, date(2026, 4, 7))
    assert quiet.total_charged_fen == 0

    # --- the end of cover (15 April): memberships end, the unpaid share is written off,
    # every prepaid balance is refunded
    at(clock, date(2026, 4, 15))
    ended = end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
    assert (ended.status, ended.written_off_fen) == (PlanStatus.RUN_OFF, SHARE)

    # --- run-off: a member diagnosed before the end may still claim; the sponsor pays
    at(clock, date(2026, 4, 20))
    e = file(ctx, people[4][0], people[4][1].id, date(2026, 4, 12))
    with pytest.raises(DomainError) as late:
        file(ctx, people[3][0], people[3][1].id, date(2026, 4, 16))
    assert late.value.code == "not_covered_member"
    runoff = settle(ctx, clock, date(2026, 4, 21))
    assert (runoff.member_count, runoff.total_charged_fen, runoff.case_count) == (0, 0, 0)
    at(clock, date(2026, 4, 20))
    decide_and_publicise(ctx, clock, [e], date(2026, 5, 7))
    last = settle(ctx, clock, date(2026, 5, 21))
    assert last.sponsored_aid_fen == ended_payout(ctx, e)

    # --- closure, after the run-off window (until 11 October)
    at(clock, date(2026, 10, 12))
    closed = close_plan(ctx, SYSTEM_ACTOR, MAIN_PLAN, config, tmp_path / "archive", http=http)
    assert closed.status is PlanStatus.CLOSED

    # --- the ledger balances, to the fen
    with ctx.reading() as session:
        assert unbalanced_transactions(session) == []
        plan_balances = balances(session, f"plan:{MAIN_PLAN}:")
        periods = session.scalars(select(Period).order_by(Period.publicity_on)).all()
        claims = {
            r: (s, amount, sponsored)
            for r, s, amount, sponsored in session.execute(
                select(Claim.ref, Claim.state, Claim.payout_fen, Claim.sponsored)
            )
        }
        refunds = dict(
            session.execute(select(PrepaidRefund.payer_account_id, PrepaidRefund.amount_fen)).all()
        )
        sponsor = balances(session, SPONSOR)[SPONSOR]
    for name in ("members", "aid_pool", "prepaid"):
        assert plan_balances.get(f"plan:{MAIN_PLAN}:{name}", 0) == 0, name
    assert {state for state, _, _ in claims.values()} == {ClaimState.PAID}
    assert [claims[r][2] for r in (a, b, c, d, e)] == [False, True, False, True, True]
    paid_out = sum(amount for _, amount, _ in claims.values())
    assert plan_balances[f"plan:{MAIN_PLAN}:payouts"] == paid_out
    sponsored_paid = sum(amount for _, amount, sponsored in claims.values() if sponsored)
    assert -sponsor == sum(p.sponsor_fen or 0 for p in periods) + sponsored_paid + SHARE

    # --- every member was charged only what the rules allow: the share of the one shared
    # period they were in at its lock, nothing during the promotion or after the announcement
    for holder, membership in people:
        statement = member_statement(ctx, holder, membership.id)
        for line in statement.lines:
            expected = SHARE if line.publicity_on == date(2026, 3, 21) else 0
            assert line.charge_fen == expected, (membership.id, line)
        paid = sum(line.paid_fen for line in statement.lines)
        # --- every refund is exact: what was paid in, less what was taken
        assert (
            refunds.get(holder.account_id, 0) == TOP_UPS[people.index((holder, membership))] - paid
        )
    assert sum(refunds.values()) == sum(TOP_UPS) - (second.total_charged_fen or 0) + SHARE
    record = member_record(ctx, people[1][0])
    assert record["refunds"][0]["amount_fen"] == 1_000 - SHARE

    # --- the final archive verifies offline, against keys obtained independently
    report = verify_archive(tmp_path / "archive", policy)
    assert report.ok, [c for c in report.checks if not c.passed]
    assert report.checkpoint is not None and report.checkpoint.size == closed.final_checkpoint_size
    # --- and the end itself is on the log: the announcement and the end of cover, with figures
    bundle = proof_bundle(ctx, "plan", MAIN_PLAN)
    events = [json.loads(entry.leaf_data) for entry in bundle.entries]
    ends = [e for e in events if e["type"] == "plan_event"]
    assert [e["event"] for e in ends] == ["wind_down_announced", "cover_ended"]
    assert ends[1]["refunded_fen"] == sum(refunds.values())
    assert all(entry.leaf_index < closed.final_checkpoint_size for entry in bundle.entries)


def ended_payout(ctx: ServiceContext, ref: str) -> int:
    with ctx.reading() as session:
        return int(session.scalar(select(Claim.payout_fen).where(Claim.ref == ref)) or 0)
