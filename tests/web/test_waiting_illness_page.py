"""An illness reported in the waiting period (issue 19), as the member reads it: the claim closed
with no payout, the membership ended, in her language."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from tests.factories import account, enroll
from tests.web.conftest import Browser, phone_of

from mutualaid.domain.accounts import Role
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.context import ServiceContext

pytestmark = pytest.mark.usefixtures("plans")


def test_the_member_reads_why_the_claim_closed_and_her_cover_ended(
    ctx: ServiceContext, client: TestClient
) -> None:
    member = account(ctx, Role.MEMBER)
    membership = enroll(ctx, member, date(1990, 5, 1))
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI02", date(2026, 3, 1), "浙江省人民医院"),
    )
    browser = Browser(client)
    browser.log_in(phone_of(ctx, member.account_id))

    page = browser.get(f"/claims/{claim.ref}").text
    assert "不予互助；成员资格已终止，已分摊的费用将退还" in page
    assert "等待期内确诊疾病（已分摊费用退还）" in browser.get("/me").text
