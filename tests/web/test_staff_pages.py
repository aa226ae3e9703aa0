"""Staff pages: queues, the case file and its separated duties, objections, plan configuration
with per-key errors, period close with a preview, collection files, audit search."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from tests.factories import TEST_LOG_KEY, account, covered_member
from tests.web.conftest import Browser, csrf, phone_of, published_case, staff_browser

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import object_to_claim, run_publicity
from mutualaid.services.claims.review import (
    assign_investigation,
    file_investigation_report,
    start_review,
)
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def test_a_reviewer_who_investigated_sees_and_meets_the_separated_duties(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    member, membership = covered_member(ctx, clock)
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=1), "医院"),
    )
    browser, reviewer_id = staff_browser(ctx, client, Role.REVIEWER)
    other = account(ctx, Role.REVIEWER)
    start_review(ctx, other, claim.ref)
    assign_investigation(ctx, other, claim.ref, reviewer_id)  # a desk investigation by a reviewer
    file_investigation_report(ctx, Actor(reviewer_id, Role.REVIEWER), claim.ref, "ok", "approve")
    page = browser.get(f"/staff/claims/{claim.ref}").text
    assert 'id="separated-duties"' in page and "职责分离" in page
    assert f'action="/staff/claims/{claim.ref}/decision"' not in page
    forced = browser.client.post(
        f"/staff/claims/{claim.ref}/decision",
        data={"csrf_token": csrf(page), "outcome": "approve", "confirm": "yes"},
    )
    assert forced.status_code == 422
    assert "调查员不能同时决定同一申请" in forced.text


def test_the_queue_filters_and_answers_htmx_with_the_rows_only(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    member, membership = covered_member(ctx, clock)
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=1), "医院"),
    )
    browser, _ = staff_browser(ctx, client, Role.REVIEWER)
    assert claim.ref in browser.get("/staff").text
    assert claim.ref not in browser.get("/staff?state=approved").text
    rows = browser.get("/staff?state=submitted", headers={"HX-Request": "true"}).text
    assert claim.ref in rows and "<html" not in rows
    investigator, _ = staff_browser(ctx, client, Role.INVESTIGATOR)
    assert claim.ref not in investigator.get("/staff").text  # not assigned to them


def test_documents_open_in_the_viewer_and_every_opening_is_audited(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    member, membership = covered_member(ctx, clock)
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=1), "医院"),
    )
    evidence = add_evidence(ctx, member, claim.ref, [JPEG], "image/jpeg", "诊断证明")
    browser, _ = staff_browser(ctx, client, Role.REVIEWER)
    viewer = browser.get(f"/staff/claims/{claim.ref}/evidence/{evidence.id}").text
    assert f'src="/staff/claims/{claim.ref}/evidence/{evidence.id}/file"' in viewer
    file = browser.get(f"/staff/claims/{claim.ref}/evidence/{evidence.id}/file")
    assert file.content == JPEG and file.headers["cache-control"] == "no-store"
    auditor, _ = staff_browser(ctx, client, Role.OPERATOR)
    log = auditor.get("/staff/audit?action=evidence_viewed").text
    assert "evidence_viewed" in log and claim.ref in log
    member_browser = Browser(client)
    member_browser.client.cookies.clear()
    member_browser.log_in(phone_of(ctx, member.account_id))
    assert (
        member_browser.get(f"/staff/claims/{claim.ref}/evidence/{evidence.id}/file").status_code
        == 403
    )


def test_an_objection_is_reviewed_from_the_case_file(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    case = published_case(ctx, clock)
    objector, _ = covered_member(ctx, clock)
    objection = object_to_claim(ctx, objector, case.ref, "she was ill before joining the plan")
    browser, _ = staff_browser(ctx, client, Role.REVIEWER)
    assert case.ref in browser.get("/staff/objections").text
    unexplained = browser.submit(
        f"/staff/claims/{case.ref}",
        f"/staff/objections/{objection.id}/review",
        {"claim_ref": case.ref, "outcome": "dismiss"},
    )
    assert unexplained.status_code == 422 and "请说明对异议的处理理由" in unexplained.text
    done = browser.submit(
        f"/staff/claims/{case.ref}",
        f"/staff/objections/{objection.id}/review",
        {"claim_ref": case.ref, "outcome": "dismiss", "note": "病历显示加入后确诊"},
    )
    assert done.headers["location"] == f"/staff/claims/{case.ref}?ok=done"
    assert "驳回" in browser.get(f"/staff/claims/{case.ref}").text


def test_a_malformed_plan_file_is_refused_key_by_key_and_a_good_one_is_published(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    source = read_plan_file("xhb-main.toml")
    broken = source.replace("amount_fen = 10_000_000", 'amount_fen = "lots"', 1)
    refused = browser.submit(
        "/staff/plans/xhb-main", "/staff/plans/xhb-main/versions", {"source": broken}
    )
    assert refused.status_code == 422
    assert "<code>payout_bands[1].amount_fen</code>" in refused.text
    assert "amount_fen = &#34;lots&#34;" in refused.text  # what was typed is kept
    changed = source.replace("publicity_length_days = 3", "publicity_length_days = 5")
    published = browser.submit(
        "/staff/plans/xhb-main", "/staff/plans/xhb-main/versions", {"source": changed}
    )
    assert published.headers["location"] == "/staff/plans/xhb-main?ok=plan_published"
    assert "规则第2版" in browser.get("/plans/xhb-main").text
    auditor, _ = staff_browser(ctx, client, Role.AUDITOR)
    page = auditor.get("/staff/plans/xhb-main").text
    assert 'action="/staff/plans/xhb-main/versions"' not in page
    assert (
        auditor.client.post(
            "/staff/plans/xhb-main/versions", data={"csrf_token": csrf(page), "source": changed}
        ).status_code
        == 403
    )


def test_the_operator_previews_then_closes_a_period_and_the_member_checks_her_charge(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    case = published_case(ctx, clock)
    operator = account(ctx, Role.OPERATOR)
    publicity_on = clock.now().date()
    clock.set(
        datetime.combine(
            publicity_on + timedelta(days=4), time(9), tzinfo=ZoneInfo("Asia/Shanghai")
        )
    )
    run_publicity(ctx, "xhb-main", operator)  # publicity is over: the case is approved
    next_day = (
        date(publicity_on.year, publicity_on.month, 21)
        if publicity_on.day == 7
        else date(publicity_on.year + (publicity_on.month == 12), publicity_on.month % 12 + 1, 7)
    )
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    early = browser.get(f"/staff/plans/xhb-main/periods?on={next_day}").text
    assert "本期可在" in early and 'id="close-period"' not in early
    clock.set(datetime.combine(next_day, time(10), tzinfo=ZoneInfo("Asia/Shanghai")))
    preview = browser.get("/staff/plans/xhb-main/periods").text
    assert 'id="close-period"' in preview and "¥300,000.00" in preview
    closed = browser.submit(
        "/staff/plans/xhb-main/periods",
        "/staff/plans/xhb-main/periods/close",
        {"on": next_day.isoformat(), "confirm": "yes"},
    )
    assert closed.headers["location"] == "/staff/plans/xhb-main/periods?ok=period_closed"
    export = browser.get(f"/staff/plans/xhb-main/periods/{next_day}/collection.csv")
    header, *lines = export.text.splitlines()
    assert "amount_fen" in header and lines and f"xhb-main/{next_day}" in lines[0]
    public = Browser(client)
    public.client.cookies.clear()
    notice = public.get(f"/plans/xhb-main/periods/{next_day}").text
    assert "¥300,000.00" in notice and "✗" not in notice
    member = Browser(client)
    member.log_in(phone_of(ctx, case.member.account_id))
    statement = member.get("/me/statement").text
    assert "¥0.10" in statement and "待扣款" in statement
    pending = member.get(f"/me/statement/{case.membership_id}/{next_day}").text
    assert "下一个检查点发布后即可生成证明" in pending
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    check = member.get(f"/me/statement/{case.membership_id}/{next_day}").text
    assert "您的分摊包含在本期已提交的分摊记录中" in check
    assert "¥0.10" in public.get("/plans/xhb-main/statistics").text


def test_audit_search_pages_and_filters(
    ctx: ServiceContext, client: TestClient, browser: Browser
) -> None:
    browser.submit("/login", "/login", {"phone": "13999999999", "password": "wrong password"})
    auditor, _ = staff_browser(ctx, client, Role.AUDITOR)
    failed = auditor.get("/staff/audit?action=login_failed").text
    assert "login_failed" in failed and "13999999999" not in failed
    assert "logged_in" not in failed
    everything = auditor.get("/staff/audit").text
    assert "logged_in" in everything
