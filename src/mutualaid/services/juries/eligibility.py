"""Who may serve as a juror today: the domain rule's bounds (`juror_limits`) in one query, also
used set-based to notify every eligible juror."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from mutualaid.db.models import Claim
from mutualaid.db.queries.juries import eligible_juror_ids
from mutualaid.domain.juries import juror_limits
from mutualaid.domain.plans import PlanRules


def eligible_jurors(
    plan_id: int,
    today: date,
    rules: PlanRules,
    exclude_account: int | None,
    only_account: int | None = None,
) -> Select[Any]:
    """Accounts that may serve: certified, paying for an active membership, themself a member of
    the plan for >= 30 days and >= 18 years old, with no fraud record."""
    limits = juror_limits(rules.jury, today)
    return eligible_juror_ids(
        plan_id, limits.latest_birth_on, limits.joined_by_on, exclude_account, only_account
    )


def is_eligible(
    session: Session, account_id: int, claim: Claim, rules: PlanRules, today: date
) -> bool:
    query = eligible_jurors(claim.plan_id, today, rules, claim.claimant_account_id, account_id)
    return session.scalar(query) is not None
