"""Staff search: a claim reference, a payer's phone (as typed, with spaces) or a membership
number; masked names and phones only; for staff only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.factories import account, covered_member, publish_demo_plans
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import Account
from mutualaid.domain.accounts import Role
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.staff_search import staff_search
from mutualaid.services.context import ServiceContext


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def test_a_claim_and_its_membership_are_found_three_ways(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    member, membership = covered_member(ctx, clock)
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=1), "医院"),
    )
    staff = account(ctx, Role.INVESTIGATOR)
    with ctx.reading() as session:
        phone = session.get_one(Account, member.account_id).phone
    spaced = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    for query in (claim.ref, spaced, str(membership.id)):
        hits = staff_search(ctx, staff, query)
        assert [(h.kind, h.claim_ref, h.membership_id) for h in hits] == [
            ("claim", claim.ref, membership.id),
            ("membership", None, membership.id),
        ], query
        assert all(
            phone not in h.phone_masked and h.phone_masked.endswith(phone[-4:]) for h in hits
        )
    assert staff_search(ctx, staff, "C0000-NOPE") == []
    assert staff_search(ctx, staff, "   ") == []
    assert staff_search(ctx, staff, "9" * 30) == []  # too long for an id, not a phone


def test_members_cannot_search(ctx: ServiceContext) -> None:
    with refused("forbidden"):
        staff_search(ctx, account(ctx), "1")
