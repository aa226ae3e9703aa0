"""Builders for winding a plan down: log and witness keys, rules with a minimum membership."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from mutualaid.clock import FixedClock
from mutualaid.plan_files import read_plan_file
from mutualaid.services.context import ServiceContext
from mutualaid.services.plans.plans import publish_plan
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.witnesses import generate_witness_key

ORIGIN = "mutualaid.example/log"


LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x51" * 32)


WITNESS_KEYS = [
    generate_witness_key(f"w{n}.example", seed=bytes([0x70 + n]) * 32) for n in range(2)
]


def publish_rules(
    ctx: ServiceContext,
    *,
    funding_model: str = "post_paid",
    rule: str = "sponsor_paid",
    per_case_fen: int = 10**9,
    notice_days: int = 0,
    minimum: int | None = None,
    below_minimum: str = "alert",
) -> None:
    """The demo main plan with no effective caps and the given wind-down rules."""
    text = read_plan_file("xhb-main.toml")
    text = re.sub(r"^per_case_fen = [0-9_]+", f"per_case_fen = {per_case_fen}", text, flags=re.M)
    text = re.sub(r"^annual_fen = [0-9_]+", "annual_fen = 1_000_000_000", text, flags=re.M)
    text = text.replace('funding_model = "post_paid"', f'funding_model = "{funding_model}"')
    if minimum is not None:
        text = re.sub(
            r"^minimum_members = [0-9_]+", f"minimum_members = {minimum}", text, flags=re.M
        )
    text += (
        f'\n[wind_down]\nrule = "{rule}"\nnotice_days = {notice_days}\n'
        f'below_minimum = "{below_minimum}"\nminimum_grace_days = 10\n'
    )
    publish_plan(ctx, None, text)


def at(clock: FixedClock, day: date, hour_utc: int = 2) -> None:
    clock.set(datetime(day.year, day.month, day.day, hour_utc, tzinfo=UTC))
