"""Staff search (/staff/search) and the work queue's columns: a claim found by its reference, the
payer's phone or the membership number, never showing a name or ID number in full; the queue's
illness name, age, days waiting and deadline; the next step with its date on the case file."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.web.conftest import phone_of, published_case, staff_browser

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.phone_codes import mask_phone
from mutualaid.services.context import ServiceContext


def test_a_case_is_found_by_reference_phone_or_membership_without_its_id_number(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    case = published_case(ctx, clock)
    browser, _ = staff_browser(ctx, client, Role.REVIEWER)
    phone = phone_of(ctx, case.member.account_id)
    for query in (case.ref, phone, f" {phone[:3]} {phone[3:]} ", str(case.membership_id)):
        page = browser.get("/staff/search", params={"q": query}).text
        assert f'href="/staff/claims/{case.ref}"' in page, query
        assert case.id_number not in page and case.full_name not in page
        hits = page.split('id="search-hits"')[1]
        assert phone not in hits and mask_phone(phone) in hits
    by_phone = browser.get("/staff/search", params={"q": phone}).text
    assert f"成员编号{case.membership_id}" in by_phone
    nothing = browser.get("/staff/search", params={"q": "no-such-claim", "lang": "en"}).text
    assert "Nothing found." in nothing


def test_members_cannot_search(ctx: ServiceContext, clock: FixedClock, client: TestClient) -> None:
    from tests.factories import account
    from tests.web.conftest import Browser

    member = account(ctx)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, member.account_id))
    assert browser.get("/staff/search?q=1").status_code == 403


def test_the_queue_shows_illness_age_days_waiting_and_deadline_and_the_case_its_next_step(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    from datetime import timedelta

    from tests.factories import covered_member

    from mutualaid.services.claims.filing import ClaimReport, report_claim

    member, membership = covered_member(ctx, clock)
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=1), "医院"),
    )
    clock.set(clock.now() + timedelta(days=3))
    browser, _ = staff_browser(ctx, client, Role.REVIEWER)
    queue = browser.get("/staff").text
    assert "已等待天数" in queue and "截止日期" in queue and "恶性肿瘤" in queue
    deadline = claim.reported_on + timedelta(days=30)  # the default decision days
    assert f"{deadline.month}月{deadline.day}日" in queue
    case = browser.get(f"/staff/claims/{claim.ref}").text
    assert 'id="next-step"' in case and "开始审核" in case and "已等待3天" in case
    english = browser.get("/staff?lang=en").text
    assert "Days waiting" in english and "start the review" in english
    case = browser.get(f"/staff/claims/{claim.ref}").text
    assert "start the review" in case and "waiting 3 days" in case
    clock.set(clock.now() + timedelta(days=30))
    later, _ = staff_browser(ctx, client, Role.REVIEWER)  # a new day, a new login
    assert "已逾期" in later.get("/staff?lang=zh_CN").text
    assert "已逾期" in later.get(f"/staff/claims/{claim.ref}").text
