"""The SQL juror filter (`db.queries.juries.eligible_juror_ids`, with `juror_limits`) agrees with
the domain rule (`domain.juries.juror_refusal`) on generated jurors.

Ages and seniority fall a few days either side of their limits (29 February included), in every
membership state and relation, certified or not, with an active, a revoked or no fraud record, and
as the claimant or not. Each example writes its rows in a transaction that is rolled back.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.factories import MAIN_PLAN, publish_demo_plans

from mutualaid.db.models import Account, FraudRecord, JurorCertification, Membership, Person
from mutualaid.db.queries.juries import eligible_juror_ids
from mutualaid.db.queries.plans import plan_by_code, rules_of
from mutualaid.domain.juries import JurorFacts, juror_limits, juror_refusal
from mutualaid.domain.memberships import MembershipState
from mutualaid.services.context import ServiceContext

_ids = itertools.count(1)
AT = datetime(2026, 3, 1, tzinfo=UTC)

juror_cases = st.fixed_dictionaries(
    {
        "today": st.sampled_from(
            [date(2026, 3, 15), date(2024, 2, 29), date(2025, 2, 28), date(2025, 3, 1)]
        )
        | st.dates(date(2020, 1, 1), date(2030, 12, 31)),
        "min_age": st.sampled_from([18, 20, 21]),
        "min_days": st.sampled_from([0, 30, 365]),
        "birth_offset": st.integers(-2, 2),
        "born_29_february": st.booleans(),
        "joined_offset": st.integers(-2, 2),
        "state": st.sampled_from([*MembershipState, None]),
        "relation": st.sampled_from(["self", "spouse", "child"]),
        "certified": st.booleans(),
        "fraud": st.sampled_from(["none", "active", "revoked"]),
        "claimant": st.booleans(),
    }
)


@pytest.fixture
def plan(ctx: ServiceContext) -> tuple[int, int]:
    publish_demo_plans(ctx)
    with ctx.reading() as session:
        found = plan_by_code(session, MAIN_PLAN)
        return found.id, found.current_version


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=juror_cases)
def test_the_sql_filter_is_the_domain_rule(
    ctx: ServiceContext, plan: tuple[int, int], case: dict[str, object]
) -> None:
    plan_id, version = plan
    today = case["today"]
    assert isinstance(today, date)
    with ctx.reading() as session:
        base = rules_of(session, plan_id, version).jury
    rules = replace(
        base,
        juror_min_age_years=case["min_age"],
        juror_min_membership_days=case["min_days"],
    )
    limits = juror_limits(rules, today)
    birth_on = limits.latest_birth_on + timedelta(days=int(case["birth_offset"]))  # type: ignore[call-overload]
    if case["born_29_february"]:
        leap = next(y for y in range(birth_on.year, birth_on.year - 4, -1) if y % 4 == 0)
        birth_on = date(leap, 2, 29)
    joined_on = limits.joined_by_on + timedelta(days=int(case["joined_offset"]))  # type: ignore[call-overload]
    state = case["state"]
    n = next(_ids)
    session = ctx.sessions()
    try:
        session.begin()
        juror = Account(phone=f"+8619{n:09d}", role="member", created_at=AT)
        claimant = Account(phone=f"+8618{n:09d}", role="member", created_at=AT)
        session.add_all([juror, claimant])
        session.flush()
        if state is not None:
            person = Person(
                account_id=juror.id,
                relation=case["relation"],
                identity_hash=f"juror-eligibility-{n}",
                identity_ciphertext=b"",
                name_ciphertext=b"",
                name_masked="*",
                birth_on=birth_on,
                sex="F",
                province_code="11",
                created_at=AT,
            )
            session.add(person)
            session.flush()
            session.add(
                Membership(
                    plan_id=plan_id,
                    plan_version=version,
                    person_id=person.id,
                    payer_account_id=juror.id,
                    state=str(state),
                    joined_at=AT,
                    joined_on=joined_on,
                    waiting_ends_on=joined_on + timedelta(days=90),
                    covered_from_on=joined_on + timedelta(days=91),
                    ages_out_on=date(2100, 1, 1),
                )
            )
        if case["certified"]:
            session.add(JurorCertification(account_id=juror.id, passed_at=AT, score=4))
        if case["fraud"] != "none":
            session.add(
                FraudRecord(
                    account_id=juror.id,
                    reason="generated",
                    recorded_at=AT,
                    revoked_at=AT if case["fraud"] == "revoked" else None,
                )
            )
        session.flush()
        claimant_id = juror.id if case["claimant"] else claimant.id
        in_sql = (
            session.scalar(
                eligible_juror_ids(
                    plan_id, limits.latest_birth_on, limits.joined_by_on, claimant_id, juror.id
                )
            )
            is not None
        )
        in_set = juror.id in set(
            session.scalars(
                eligible_juror_ids(
                    plan_id, limits.latest_birth_on, limits.joined_by_on, claimant_id
                )
            )
        )
    finally:
        session.rollback()
        session.close()
    facts = JurorFacts(
        birth_on=birth_on,
        joined_on=joined_on,
        membership_state=MembershipState(state) if state and case["relation"] == "self" else None,
        certified=bool(case["certified"]),
        fraud_record=case["fraud"] == "active",
        is_claimant=bool(case["claimant"]),
    )
    refusal = juror_refusal(facts, rules, today)
    assert in_sql == in_set == (refusal is None), (case, refusal)
