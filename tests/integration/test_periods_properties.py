"""Properties over random plans, memberships, cases and caps, closed on a real database:
the ledger balances, Σ charges equals each period's total exactly, nobody passes the annual cap,
the surplus carries exactly, and a re-run is a no-op."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.factories import (
    HEALTHY,
    account,
    approved_claim,
    current_rules_sha256,
    resident_id,
)

from mutualaid.clock import FixedClock
from mutualaid.db.models import LedgerEntry, Membership
from mutualaid.domain.apportionment import CapExcess
from mutualaid.domain.memberships import MembershipEvent
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.enrollment.memberships import change_membership
from mutualaid.services.ledger.ledger import unbalanced_transactions
from mutualaid.services.periods.close import close_period
from mutualaid.services.periods.notice import period_notice
from mutualaid.services.periods.statements import member_statement
from mutualaid.services.plans.plans import publish_plan

PUBLICITY_DAYS = [date(2026, 1, 7), date(2026, 1, 21), date(2026, 2, 7), date(2026, 2, 21)]
_plans = itertools.count(1)
_births = itertools.count(1)


def at(day: date, hour: int = 2) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


member = st.fixed_dictionaries(
    {
        # Joined long ago, or on a day between the periods (at a random hour, so around the lock).
        "joined": st.one_of(st.just(None), st.tuples(st.integers(0, 50), st.integers(0, 23))),
        "leaves_after": st.one_of(st.none(), st.integers(1, 50)),
        "rejoins_after": st.one_of(st.none(), st.integers(1, 10)),
    }
)
scenario = st.fixed_dictionaries(
    {
        "members": st.lists(member, min_size=1, max_size=6),
        "cases": st.lists(st.lists(st.integers(1, 3000), max_size=2), min_size=4, max_size=4),
        "fee_bp": st.integers(0, 1000),
        "per_case": st.sampled_from([10**9, 40, 300]),
        "annual": st.sampled_from([10**9, 150, 700, 2500]),
        "excess": st.sampled_from(CapExcess),
    }
)


def plan_text(code: str, fee_bp: int, per_case: int, annual: int) -> str:
    text = read_plan_file("xhb-main.toml").replace('code = "xhb-main"', f'code = "{code}"')
    for key, value in (
        ("per_case_fen", per_case),
        ("annual_fen", annual),
        ("management_fee_bp", fee_bp),
    ):
        text = re.sub(rf"^{key} = [0-9_]+", f"{key} = {value}", text, flags=re.M)
    return text


# Each example is a few dozen transactions on the real database: a dozen examples, and no
# shrinking (it would replay hundreds of them); a failure prints its whole scenario anyway.
@settings(
    max_examples=int(__import__("os").environ.get("PERIODS_EXAMPLES", "12")),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scenario)
def test_random_periods_always_add_up(ctx: ServiceContext, clock: FixedClock, case: dict) -> None:  # type: ignore[type-arg]
    code = f"prop-{next(_plans)}"
    publish_plan(ctx, None, plan_text(code, case["fee_bp"], case["per_case"], case["annual"]))
    # Memberships, in time order (a close depends only on their recorded instants).
    events: list[tuple[datetime, int, str]] = []
    for index, m in enumerate(case["members"]):
        joined = (
            at(date(2025, 6, 1))
            if m["joined"] is None
            else at(date(2026, 1, 1) + timedelta(days=m["joined"][0]), m["joined"][1])
        )
        events.append((joined, index, "join"))
        if m["leaves_after"] is not None:
            left = joined + timedelta(days=m["leaves_after"], hours=1)
            events.append((left, index, "leave"))
            if m["rejoins_after"] is not None:
                events.append((left + timedelta(days=m["rejoins_after"]), index, "rejoin"))
    holders, numbers, current = {}, {}, {}
    for when, index, what in sorted(events):
        clock.set(when)
        if what == "leave":
            change_membership(ctx, holders[index], current[index], MembershipEvent.LEAVE)
            continue
        if what == "join":
            holders[index] = account(ctx)
            numbers[index] = resident_id(date(1970, 1, 1) + timedelta(days=next(_births)))
        current[index] = enroll_member(
            ctx,
            holders[index],
            code,
            EnrollmentRequest(
                full_name="王小明",
                id_number=numbers[index],
                health_answers=HEALTHY,
                rules_sha256=current_rules_sha256(ctx, code),
            ),
        ).id
    # Cases: approved the day before each lock, each for a different member's membership.
    with ctx.reading() as session:
        rows = session.execute(
            select(Membership.id, Membership.person_id)
            .where(Membership.plan_id == _plan_id(session, code))
            .order_by(Membership.id)
        ).all()
    memberships = [m for m, _ in rows]
    # One open claim per person: the first membership of each person claims.
    claimants = iter(list({person: m for m, person in reversed(rows)}.values()))
    for day, payouts in zip(PUBLICITY_DAYS, case["cases"], strict=True):
        for payout in payouts:
            claimant = next(claimants, None)
            if claimant is not None:
                approved_claim(ctx, claimant, payout, at(day - timedelta(days=2)))

    views = []
    for day in PUBLICITY_DAYS:
        clock.set(at(day, 1))
        views.append(close_period(ctx, SYSTEM_ACTOR, code, day, cap_excess=case["excess"]))
    with ctx.reading() as session:
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
        assert unbalanced_transactions(session) == []

    statements = [member_statement(ctx, SYSTEM_ACTOR, m) for m in memberships]
    per_person_year: dict[tuple[int, int], int] = defaultdict(int)
    person_of = _persons(ctx, memberships)
    for previous, view in itertools.pairwise([None, *views]):
        if previous is not None:
            assert view.surplus_in_fen == previous.surplus_out_fen
        lines = [
            line
            for s in statements
            for line in s.lines
            if line.period_ref == view.ref and line.status != "excluded"
        ]
        assert sum(line.charge_fen for line in lines) == view.total_charged_fen
        assert len(lines) == view.member_count
        assert all(check.holds for check in period_notice(ctx, code, view.publicity_on).checks)
    for s in statements:
        for line in s.lines:
            per_person_year[(person_of[s.membership_id], line.publicity_on.year)] += line.charge_fen
    assert max(per_person_year.values(), default=0) <= case["annual"]

    for day, view in zip(PUBLICITY_DAYS, views, strict=True):
        assert close_period(ctx, SYSTEM_ACTOR, code, day) == view
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == entries


def _plan_id(session, code: str) -> int:  # type: ignore[no-untyped-def]
    from mutualaid.db.queries.plans import plan_by_code

    return plan_by_code(session, code).id


def _persons(ctx: ServiceContext, memberships: list[int]) -> dict[int, int]:
    with ctx.reading() as session:
        return {m: session.get_one(Membership, m).person_id for m in memberships}
