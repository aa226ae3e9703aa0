"""Who may serve as a juror: one query, also used set-based to notify every eligible juror."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    FraudRecord,
    JurorCertification,
    Membership,
    Person,
)
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
    latest_birth, joined_by = juror_limits(rules, today)
    return eligibility(plan_id, latest_birth, joined_by, exclude_account, only_account)


def juror_limits(rules: PlanRules, today: date) -> tuple[date, date]:
    """The latest birth date and the latest joining date of an eligible juror today."""
    jury = rules.jury
    latest_birth = date(
        today.year - jury.juror_min_age_years,
        today.month,
        28 if (today.month, today.day) == (2, 29) else today.day,
    )
    return latest_birth, today - timedelta(days=jury.juror_min_membership_days)


def eligibility(
    plan_id: Any, latest_birth: Any, joined_by: Any, exclude_account: Any, only_account: Any = None
) -> Select[Any]:
    # Takes values or bind parameters, so the vote path can build its statement once.
    own = (
        select(Membership.payer_account_id)
        .join(Person, Person.id == Membership.person_id)
        .where(
            Membership.plan_id == plan_id,
            Person.relation == "self",
            Membership.state.in_(["waiting", "covered"]),
            Membership.joined_on <= joined_by,
            Person.birth_on <= latest_birth,
        )
    )
    if only_account is not None:
        # Checking one juror (a vote): narrow every part to that account so it is index lookups.
        own = own.where(Membership.payer_account_id == only_account)
    fraud = select(FraudRecord.account_id).where(
        FraudRecord.revoked_at.is_(None), FraudRecord.account_id.is_not(None)
    )
    query = select(JurorCertification.account_id).where(
        JurorCertification.account_id.in_(own), JurorCertification.account_id.not_in(fraud)
    )
    if exclude_account is not None:
        query = query.where(JurorCertification.account_id != exclude_account)
    if only_account is not None:
        query = query.where(JurorCertification.account_id == only_account)
    return query


def is_eligible(
    session: Session, account_id: int, claim: Claim, rules: PlanRules, today: date
) -> bool:
    query = eligible_jurors(claim.plan_id, today, rules, claim.claimant_account_id, account_id)
    return session.scalar(query) is not None
