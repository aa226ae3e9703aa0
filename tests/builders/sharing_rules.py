"""Builders for sharing rules: a banded plan, a population across the bands, two cases."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    account,
    approved_claim,
    enroll,
)

from mutualaid.clock import FixedClock
from mutualaid.plan_files import read_plan_file
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import MembershipView
from mutualaid.services.plans.plans import publish_plan

YOUNG, OLD = 30_000_000, 10_000_000
MEMBERS = f"plan:{MAIN_PLAN}:members"


#: Two bands. Per period (24 a year): under 40, a 300,000 yuan payout with probability
#: 240 / 24,000,000 = 1/100,000, expected 300 fen; 40-59, 100,000 yuan with 480 / 24,000,000 =
#: 1/50,000, expected 200 fen. Weights 3 : 2.
BANDS = """
[[sharing_bands]]
from_age = 0
to_age = 39
severe_per_million = 240

[[sharing_bands]]
from_age = 40
to_age = 59
severe_per_million = 480
"""


#: Ages at the lock date (publicity day, 7 March 2026): 36, 30, 39 (40 the day after), 40 (that
#: very day) and 56.
BIRTHS = [date(1990, 1, 1), date(1995, 5, 5), date(1986, 3, 8), date(1986, 3, 7), date(1970, 1, 1)]


def use_rule(ctx: ServiceContext, rule: str, *, annual_fen: int = 10**9) -> None:
    text = read_plan_file("xhb-main.toml")
    text = text.replace('sharing_rule = "uniform"', f'sharing_rule = "{rule}"')
    text = re.sub(r"^per_case_fen = [0-9_]+", "per_case_fen = 1_000_000_000", text, flags=re.M)
    text = re.sub(r"^annual_fen = [0-9_]+", f"annual_fen = {annual_fen}", text, flags=re.M)
    publish_plan(ctx, None, text + BANDS)


def population(ctx: ServiceContext, clock: FixedClock) -> list[MembershipView]:
    now = clock.now()
    clock.set(datetime(2025, 6, 1, tzinfo=UTC))
    try:
        return [enroll(ctx, account(ctx), born) for born in BIRTHS]
    finally:
        clock.set(now)


def two_cases(ctx: ServiceContext, people: list[MembershipView]) -> None:
    """One young member's severe case (300,000 yuan) and one old member's (100,000 yuan)."""
    approved_claim(ctx, people[0].id, YOUNG, LOCK_MARCH_7 - timedelta(days=2))
    approved_claim(ctx, people[4].id, OLD, LOCK_MARCH_7 - timedelta(days=1))
