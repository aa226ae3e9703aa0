"""A forecast of a live plan reads the plan's state today from the database (SQLite and
PostgreSQL): members by joining month, sex and birth year, its experience and its money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.factories import approved_claim, members, publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.domain.memberships import MembershipEvent
from mutualaid.forecasts.models import default_model
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import change_membership
from mutualaid.services.forecasts.live_plans import live_forecast_inputs, plan_today


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def test_the_plan_today_counts_its_members_joiners_claims_and_leavers(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    old = members(ctx, clock, 3, datetime(2025, 6, 1, 4, tzinfo=UTC))
    recent = members(ctx, clock, 2, clock.now() - timedelta(days=30))
    approved_claim(ctx, old[0][1].id, 30_000_000, clock.now() - timedelta(days=10))
    holder, leaving = recent[1]
    change_membership(ctx, holder, leaving.id, MembershipEvent.LEAVE)

    _, today = plan_today(ctx, "xhb-main")
    assert today.today.isoformat() == "2026-03-01"
    assert today.member_count == 4  # one left
    assert {group.joined_month.isoformat() for group in today.members} == {
        "2025-06-01",
        "2026-01-01",
    }
    # A plan younger than a year looks back to its first join: every joiner is a recent one.
    assert today.window_days == 273
    assert sum(group.count for group in today.recent_joiners) == 5
    assert today.observed_cases == 1
    assert today.observed_leavers == 1


def test_a_live_forecast_starts_from_the_plans_members(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    members(ctx, clock, 4, datetime(2025, 6, 1, 4, tzinfo=UTC))
    _, inputs = live_forecast_inputs(ctx, "xhb-main", default_model())
    assert sum(count for c in inputs.start.cohorts for _, _, count in c.members) == 4
    assert inputs.model.joins.start_on == inputs.today.today
    assert inputs.start.incidence is not None and inputs.start.incidence.mean > 0
