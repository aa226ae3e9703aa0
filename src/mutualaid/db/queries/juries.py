"""Who may serve as a juror, in SQL: `domain.juries.juror_refusal` as one filter.

Fast enough to notify every eligible juror of an open vote at once (set-based), and to check one
voter inside the vote's INSERT. tests/integration/test_juror_eligibility.py compares this filter
with the domain rule on generated cases.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, literal, select

from mutualaid.db.models import FraudRecord, JurorCertification, Membership, Person
from mutualaid.domain.juries import JUROR_MEMBERSHIP_STATES


def eligible_juror_ids(
    plan_id: Any, latest_birth: Any, joined_by: Any, exclude_account: Any, only_account: Any = None
) -> Select[Any]:
    """Accounts that may serve: certified, paying for their own active membership of the plan,
    joined by `joined_by` and born by `latest_birth` (`domain.juries.juror_limits`), with no
    fraud record, other than `exclude_account` (the claimant)."""
    # Takes values or bind parameters, so the vote path can build its statement once.
    own = (
        select(Membership.payer_account_id)
        .join(Person, Person.id == Membership.person_id)
        .where(
            Membership.plan_id == plan_id,
            Person.relation == "self",
            # One bound value per state, not an expanding list: the statement's text is then
            # final when compiled (no re-rendering on every execution of a vote).
            Membership.state.in_([literal(str(s)) for s in sorted(JUROR_MEMBERSHIP_STATES)]),
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
