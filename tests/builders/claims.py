"""Builders for claims: a reported claim taken through review and investigation."""

from __future__ import annotations

from tests.factories import staff

from mutualaid.domain.accounts import Role
from mutualaid.services.claims.review import (
    assign_investigation,
    file_investigation_report,
    start_review,
)
from mutualaid.services.context import ServiceContext


def through_investigation(ctx: ServiceContext, ref: str):  # type: ignore[no-untyped-def]
    reviewer = staff(ctx, Role.REVIEWER)
    investigator = staff(ctx, Role.INVESTIGATOR)
    start_review(ctx, reviewer, ref)
    assign_investigation(ctx, reviewer, ref, investigator.account_id)
    file_investigation_report(
        ctx, investigator, ref, "hospital records confirm the diagnosis", "approve", cost_fen=35_000
    )
    return reviewer, investigator
