"""Risk on the staff pages: the case file's explained signals with feedback buttons, the linked-
claims graph, routing by score, proven fraud, and the operator's risk desk."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from tests.factories import account, covered_member
from tests.web.conftest import Browser, phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.risk import ClaimLinks
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.context import ServiceContext
from mutualaid.services.risk.fraud_records import my_fraud_records, pending_appeals
from mutualaid.services.risk.reviews import claim_risk


def staff_browser(ctx: ServiceContext, client: TestClient, role: Role) -> tuple[Browser, int]:
    actor = account(ctx, role)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, actor.account_id))
    return browser, actor.account_id


def two_linked_claims(ctx: ServiceContext, clock: FixedClock) -> list[str]:
    refs = []
    for _ in range(2):
        member, membership = covered_member(ctx, clock)
        refs.append(
            report_claim(
                ctx,
                member,
                ClaimReport(
                    membership.id,
                    "CI01",
                    clock.now().date() - timedelta(days=1),
                    "医院",
                    links=ClaimLinks(payee_account="62220210", device_id="tablet-7"),
                ),
            ).ref
        )
    return refs


def test_the_case_file_explains_each_signal_and_takes_the_reviewers_feedback(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    _, second = two_linked_claims(ctx, clock)
    browser, reviewer_id = staff_browser(ctx, client, Role.REVIEWER)
    page = browser.get(f"/staff/claims/{second}").text
    assert "风险评分 60 / 100" in page
    assert (
        "收款账户与其他家庭的申请相同" in page and "收款账户也出现在另外 1 个家庭的申请中" in page
    )
    assert "评分只提示先看哪里，从不拒绝申请。" in page
    answer = browser.submit(
        f"/staff/claims/{second}",
        f"/staff/claims/{second}/risk/feedback",
        {"signal": "shared_device", "useful": "no"},
    )
    assert answer.status_code == 303
    from mutualaid.services.accounts.accounts import Actor

    device = next(
        s
        for s in claim_risk(ctx, Actor(reviewer_id, Role.REVIEWER), second).signals
        if s.code == "shared_device"
    )
    assert device.my_feedback is False
    english = browser.get(f"/staff/claims/{second}?lang=en").text
    assert "Payee account shared with another family&#39;s claim" in english


def test_the_graph_shows_the_linked_claims_and_what_links_them(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    first, second = two_linked_claims(ctx, clock)
    browser, _ = staff_browser(ctx, client, Role.INVESTIGATOR)
    page = browser.get(f"/staff/claims/{first}/risk/graph").text
    assert "<svg" in page and f'href="/staff/claims/{second}"' in page
    assert "device, payee" in page


def test_routing_by_risk_sends_a_linked_claim_to_a_field_investigator(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    _, second = two_linked_claims(ctx, clock)
    browser, reviewer_id = staff_browser(ctx, client, Role.REVIEWER)
    investigator = account(ctx, Role.INVESTIGATOR)
    from mutualaid.services.accounts.accounts import Actor

    start_review(ctx, Actor(reviewer_id, Role.REVIEWER), second)
    answer = browser.submit(f"/staff/claims/{second}", f"/staff/claims/{second}/risk/route", {})
    assert answer.status_code == 303
    assert f"调查员（编号{investigator.account_id}）" in browser.get(f"/staff/claims/{second}").text


def test_an_operator_records_proven_fraud_and_decides_the_appeal_on_the_risk_desk(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    member, membership = covered_member(ctx, clock)
    ref = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=1), "医院"),
    ).ref
    reviewer = account(ctx, Role.REVIEWER)
    start_review(ctx, reviewer, ref)
    decide_claim(
        ctx,
        reviewer,
        ref,
        approve=False,
        reason_code=RejectionReason.FRAUD,
        note="forged certificate",
    )
    operator, _ = staff_browser(ctx, client, Role.OPERATOR)
    short = operator.submit(
        f"/staff/claims/{ref}", f"/staff/claims/{ref}/fraud-record", {"reason": "short"}
    )
    assert short.status_code == 422
    answer = operator.submit(
        f"/staff/claims/{ref}",
        f"/staff/claims/{ref}/fraud-record",
        {"reason": "the hospital confirmed the certificate is forged"},
    )
    assert answer.status_code == 303
    record = my_fraud_records(ctx, member)[0]
    # The member sees the record on her page, with what it means, and appeals there.
    own = Browser(client)
    own.log_in(phone_of(ctx, member.account_id))
    page = own.get("/me").text
    assert "我的账户上的欺诈记录" in page and "不能担任评审员" in page
    too_short = own.submit("/me", f"/me/fraud-records/{record.id}/appeal", {"reason": "no"})
    assert too_short.status_code == 422
    appealed = own.submit(
        "/me",
        f"/me/fraud-records/{record.id}/appeal",
        {"reason": "my certificate is genuine, ask again"},
    )
    assert appealed.headers["location"] == "/me?ok=appealed"
    assert "申诉已提交" in own.get(appealed.headers["location"]).text
    [appeal] = pending_appeals(ctx, account(ctx, Role.OPERATOR))
    other, _ = staff_browser(ctx, client, Role.OPERATOR)
    desk = other.get("/staff/risk").text
    assert f'id="appeal-{appeal.id}"' in desk and "每件调查成本" in desk
    decided = other.submit(
        "/staff/risk",
        f"/staff/fraud-appeals/{appeal.id}/decision",
        {"outcome": "uphold", "note": "the hospital found the records"},
    )
    assert decided.status_code == 303
    assert my_fraud_records(ctx, member)[0].revoked_at is not None


def test_members_cannot_open_the_risk_desk(
    ctx: ServiceContext, client: TestClient, member_browser: Browser
) -> None:
    assert member_browser.get("/staff/risk").status_code == 403
