"""How many SQL statements the hot paths send (issue 15): joining, a jury vote, filing a claim, a
member's statement, a charge proof. Each is pinned at today's exact count, per dialect, over a
population of several members, so a query per member or per row (an N+1) fails here. A change that
really needs more (or fewer) statements updates the pin, on purpose."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from tests.builders.juries import TODAY, answers_for, jurors, rejected_claim, use_jury_rules
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    TEST_LOG_KEY,
    account,
    approved_claim,
    close_on,
    covered_member,
    current_rules_sha256,
    enroll,
    members,
    publish_demo_plans,
    use_rules,
)
from tests.query_counter import QueryCounter

from mutualaid.clock import FixedClock
from mutualaid.services.accounts.accounts import Actor, BearerToken, issue_token
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import MembershipView
from mutualaid.services.juries.panels import dispute_rejection
from mutualaid.services.juries.votes import cast_vote
from mutualaid.services.periods.proofs import charge_proof
from mutualaid.services.periods.statements import member_statement
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint


def pinned(engine: Engine, *, sqlite: int, postgresql: int) -> int:
    """The pin for this database. PostgreSQL counts both pools: joins and votes are one read and
    one write on the autocommit pool."""
    return {"sqlite": sqlite, "postgresql": postgresql}[engine.dialect.name]


def test_joining_through_the_service(ctx: ServiceContext, clock: FixedClock) -> None:
    publish_demo_plans(ctx)
    members(ctx, clock, 5)
    holder = account(ctx)
    agreed = current_rules_sha256(ctx)  # read before the join, as a member reads the rules
    with QueryCounter(ctx.engine) as counted:
        enroll(ctx, holder, date(1990, 5, 1), rules_sha256=agreed)
    # Issue 14: the join's membership_event leaf is one more INSERT on SQLite (5 -> 6); on
    # PostgreSQL it is a CTE of the join's one statement (still 2). Issue 17: so is the payer's
    # "you joined" notice (6 -> 7; still 2).
    assert counted.count == pinned(ctx.engine, sqlite=7, postgresql=2), "\n".join(
        s[:120] for s in counted.statements
    )


def test_a_jury_vote(ctx: ServiceContext, clock: FixedClock) -> None:
    publish_demo_plans(ctx)
    use_jury_rules(ctx, min_votes=3, vote_hours=24)
    panel = jurors(ctx, clock, 5)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "the pathology report shows stage III")
    cast_vote(ctx, panel[0], jury.id, "approve", answers_for(ctx, panel[0], jury.id))
    answers = answers_for(ctx, panel[1], jury.id)
    with QueryCounter(ctx.engine) as counted:
        cast_vote(ctx, panel[1], jury.id, "approve", answers)
    assert counted.count == pinned(ctx.engine, sqlite=3, postgresql=2), counted.statements


def test_a_jury_vote_over_the_api_once_the_case_is_known(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    """Issue 20: the caller's token, the open case and the right to vote are checked by the
    vote's one statement once this process has read the case (the first vote reads it)."""
    publish_demo_plans(ctx)
    use_jury_rules(ctx, min_votes=3, vote_hours=24)
    panel = jurors(ctx, clock, 5)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "the pathology report shows stage III")
    first, second = (BearerToken(issue_token(ctx, j.account_id).token) for j in panel[:2])
    cast_vote(ctx, first, jury.id, "approve", answers_for(ctx, panel[0], jury.id))
    answers = answers_for(ctx, panel[1], jury.id)
    with QueryCounter(ctx.engine) as counted:
        cast_vote(ctx, second, jury.id, "approve", answers)
    assert counted.count == pinned(ctx.engine, sqlite=2, postgresql=1), counted.statements


def test_filing_a_claim(ctx: ServiceContext, clock: FixedClock) -> None:
    publish_demo_plans(ctx)
    members(ctx, clock, 5, when=datetime(2025, 6, 1, tzinfo=UTC))
    holder, membership = covered_member(ctx, clock)
    report = ClaimReport(membership.id, "CI01", TODAY - timedelta(days=2), "四川省人民医院")
    with QueryCounter(ctx.engine) as counted:
        report_claim(ctx, holder, report)
    # Issue 17: +1, the claimant's "claim received" notice.
    assert counted.count == pinned(ctx.engine, sqlite=22, postgresql=21), counted.statements


def closed_march_7(ctx: ServiceContext, clock: FixedClock) -> list[tuple[Actor, MembershipView]]:
    """Five members and one approved case in the period of 7 March, closed."""
    publish_demo_plans(ctx)
    use_rules(ctx)
    people = members(ctx, clock, 5)
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    close_on(ctx, clock, MARCH_7)
    return people


def test_a_members_statement(ctx: ServiceContext, clock: FixedClock) -> None:
    holder, membership = closed_march_7(ctx, clock)[3]
    with QueryCounter(ctx.engine) as counted:
        member_statement(ctx, holder, membership.id)
    assert counted.count == pinned(ctx.engine, sqlite=5, postgresql=4), counted.statements


def test_a_charge_proof(ctx: ServiceContext, clock: FixedClock) -> None:
    holder, membership = closed_march_7(ctx, clock)[3]
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    with QueryCounter(ctx.engine) as counted:
        charge_proof(ctx, holder, membership.id, MAIN_PLAN, MARCH_7)
    assert counted.count == pinned(ctx.engine, sqlite=11, postgresql=10), counted.statements
