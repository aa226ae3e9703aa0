"""Issue #18, "misleading or broken": each page tells the truth and the next step (page tests;
the browser tests with screenshots are tests/e2e/test_truthful_screens.py)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from tests.api.calls import Api
from tests.builders.case_files import ID_NUMBER, NAME, covered, disputed_case
from tests.builders.juries import RIGHT_ANSWERS
from tests.factories import account, enroll
from tests.web.conftest import Browser, phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import start_review
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.juries.votes import juror_case_file


def test_a_juror_reads_the_whole_case_file_without_a_name_or_number(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    claimant, _ = disputed_case(ctx, clock)
    juror, _ = covered(ctx, clock, date(1985, 1, 1))
    assert certify_juror(ctx, juror, RIGHT_ANSWERS).passed
    browser = Browser(client)
    browser.log_in(phone_of(ctx, juror.account_id))
    home = browser.get("/jury").text
    case_id = home.split('href="/jury/cases/')[1].split('"')[0]
    page = browser.get(f"/jury/cases/{case_id}").text
    phone = phone_of(ctx, claimant.account_id)
    for secret in (NAME, "明华", ID_NUMBER, phone, "浙江大学医学院附属第一医院"):
        assert secret not in page, secret
    # What the reviewer, the investigator and the member said, and the evidence by kind and date.
    assert "该疾病不符合计划的定义" in page or "不符合" in page
    assert "原位癌，不符合定义" in page
    assert "肿瘤分期为原位癌" in page
    assert "病理报告已补充" in page
    assert "诊断证明" in page and "身份证件" in page
    assert "2026年2月25日" in page
    assert "省级或大学附属医院" in page
    # The rules that apply: the payout for this age, the waiting period, the vote's threshold.
    assert "计划给付 ¥100,000.00" in page  # aged 45 at diagnosis
    assert "确诊于加入后 197 天" in page and "赞成票超过 50%" in page
    # Every juror reads the same file (staff too, through the service the API shares).
    other, _ = covered(ctx, clock, date(1986, 2, 2))
    assert certify_juror(ctx, other, RIGHT_ANSWERS).passed
    assert (
        juror_case_file(ctx, juror, int(case_id)).file
        == juror_case_file(ctx, other, int(case_id)).file
    )
    english = browser.get(f"/jury/cases/{case_id}?lang=en").text
    assert "[name removed]" in english and "[number removed]" in english
    assert NAME not in english and ID_NUMBER not in english


def test_the_api_returns_the_same_case_file(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    _, ref = disputed_case(ctx, clock)
    staff = account(ctx, Role.OPERATOR)
    headers = Api(client, ctx).log_in(phone_of(ctx, staff.account_id))
    case_id = client.get(f"/api/v1/claims/{ref}/juries").json()[0]["id"]
    body = client.get(f"/api/v1/juries/{case_id}/case-file", headers=headers)
    assert body.status_code == 200, body.text
    file = body.json()["file"]
    assert file["rejection_reason"] == "criteria_not_met"
    assert file["hospital_level"] == "tertiary"
    assert [e["kind"] for e in file["evidence"]] == ["diagnosis_certificate", "identity_document"]
    assert NAME not in body.text and ID_NUMBER not in body.text


def test_the_claimant_sees_the_jury_rounds_on_the_claim(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    claimant, ref = disputed_case(ctx, clock)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, claimant.account_id))
    page = browser.get(f"/claims/{ref}?lang=en").text
    assert 'id="jury-rounds"' in page
    assert "round 1" in page and "the count is shown when the vote closes" in page


def person(client: TestClient, ctx: ServiceContext, actor: Actor) -> Browser:
    """A browser of its own (its own cookies) logged in as `actor`."""
    browser = Browser(TestClient(client.app, base_url="http://localhost"))
    browser.log_in(phone_of(ctx, actor.account_id))
    return browser


def test_a_card_in_the_waiting_period_says_accidents_only_until_when(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    member = account(ctx)
    membership = enroll(ctx, member, date(1990, 5, 1))
    me = person(client, ctx, member).get("/me").text
    card = me.split(f'id="ms-{membership.id}"')[1].split("</section>")[0]
    assert "到 2026年5月30日 为止只保障意外导致的疾病" in card
    assert "现在确诊可获互助金" not in card
    assert "申请互助" not in card and "报告意外导致的疾病" in card
    assert "自 2026年5月31日 起" in card


def test_objections_are_offered_only_to_members_who_may_object(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    from tests.refusals import refused
    from tests.web.conftest import published_case

    from mutualaid.services.claims.publicity import object_to_claim

    case = published_case(ctx, clock)
    objector, _ = covered(ctx, clock, date(1984, 3, 3))
    waiting = account(ctx)
    enroll(ctx, waiting, date(1991, 1, 1))
    link = f'href="/claims/{case.ref}/objection"'
    assert link in person(client, ctx, objector).get("/plans/xhb-main/notices").text
    for who, code, words in (
        (case.member, "own_claim", "这是您家庭自己的申请"),
        (waiting, "not_covered_member", "只有本计划保障生效中的会员才能提出异议"),
    ):
        browser = person(client, ctx, who)
        assert link not in browser.get("/plans/xhb-main/notices").text
        assert link not in browser.get("/notices").text
        form = browser.get(f"/claims/{case.ref}/objection")
        assert form.status_code == 403 and words in form.text and "<textarea" not in form.text
        with refused(code):
            object_to_claim(ctx, who, case.ref, "我认为这个案例有问题，需要再核实。")


def test_publicity_periods_redirects_and_a_suspended_card(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from tests.web.conftest import published_case

    shanghai = ZoneInfo("Asia/Shanghai")
    case = published_case(ctx, clock)
    publicity_on = clock.now().date()  # the 7th or the 21st
    next_day = (
        date(publicity_on.year, publicity_on.month, 21)
        if publicity_on.day == 7
        else date(publicity_on.year + (publicity_on.month == 12), publicity_on.month % 12 + 1, 7)
    )
    public = Browser(TestClient(client.app, base_url="http://localhost"))
    notices = public.get("/plans/xhb-main/notices?lang=en").text
    assert 'id="two-calendars"' in notices
    charged = notices.split(f'id="case-{case.ref}"')[1].split("</article>")[0]
    assert "Shared in the period of" in charged and public.client.app is client.app
    assert f"{next_day:%B} {next_day.day}, {next_day.year}" in charged

    operator = person(client, ctx, account(ctx, Role.OPERATOR))
    clock.set(datetime.combine(publicity_on + timedelta(days=4), time(9), tzinfo=shanghai))
    ran = operator.submit("/staff/operations", "/staff/plans/xhb-main/publicity", {})
    assert ran.status_code == 303 and ran.headers["location"].startswith("/staff/operations?")
    told = operator.get(ran.headers["location"]).text
    assert "0个案例开始公示" in told and "1个通过" in told
    # A refresh is a GET: it runs nothing again.
    assert operator.get(ran.headers["location"]).text.count("1个通过") == 1
    assert (
        "今天不是公示日" in told and f"{next_day.year}年{next_day.month}月{next_day.day}日" in told
    )

    clock.set(datetime.combine(next_day, time(10), tzinfo=shanghai))
    closed = operator.submit(
        "/staff/plans/xhb-main/periods",
        "/staff/plans/xhb-main/periods/close",
        {"on": next_day.isoformat(), "confirm": "yes"},
    )
    assert closed.status_code == 303
    page = operator.get(f"/staff/plans/xhb-main/periods?on={next_day}").text
    assert "（已结算）" in page and "这一期</h2>" not in page

    results = f"membership_id,status\n{case.membership_id},failed\n".encode()
    imported = operator.submit(
        "/staff/plans/xhb-main/periods",
        f"/staff/plans/xhb-main/periods/{next_day}/results",
        {},
        files={"results": ("results.csv", results, "text/csv")},
    )
    assert imported.status_code == 303, imported.text
    after = operator.get(imported.headers["location"]).text
    assert 'id="results-imported"' in after and f"xhb-main/{next_day}" in after

    me = person(client, ctx, case.member).get("/me").text
    card = me.split(f'id="ms-{case.membership_id}"')[1].split("</section>")[0]
    assert "保障已暂停" in card and "欠款 ¥0.10" in card
    assert f'href="/me/statement#s-{case.membership_id}"' in card
    assert "现在确诊可获互助金" not in card and "申请互助" not in card


def test_the_same_file_sent_again_under_a_new_label_is_named(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    member, membership_id = covered(ctx, clock, date(1990, 5, 1))
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership_id, "CI01", clock.now().date() - timedelta(days=2), "医院"),
    )
    browser = person(client, ctx, member)
    photo = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + bytes(2000) + b"\xff\xd9"
    page = f"/claims/{claim.ref}"
    first = browser.submit(
        page,
        f"{page}/evidence",
        {"label": "诊断证明"},
        files={"file": ("a.jpg", photo, "image/jpeg")},
    )
    assert first.headers["location"].endswith("ok=evidence_added#evidence")
    again = browser.submit(
        page, f"{page}/evidence", {"label": "病历"}, files={"file": ("b.jpg", photo, "image/jpeg")}
    )
    told = browser.get(again.headers["location"]).text
    assert 'id="duplicate-upload"' in told and "“诊断证明”" in told
    assert told.count('<li class="card">') == 1  # still one document


def test_unknown_paths_answer_a_page_to_browsers_and_json_to_api_clients(
    client: TestClient,
) -> None:
    page = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<title>未找到" in page.text and 'href="/"' in page.text
    api = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    unknown_api = client.get("/api/v1/nothing", headers={"Accept": "text/html"})
    assert unknown_api.json()["error"]["code"] == "not_found"
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_desk_review_says_why_only_rejection_is_offered(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    member, membership_id = covered(ctx, clock, date(1990, 5, 1))
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership_id, "CI01", clock.now().date() - timedelta(days=2), "医院"),
    )
    reviewer = account(ctx, Role.REVIEWER)
    start_review(ctx, reviewer, claim.ref)
    page = person(client, ctx, reviewer).get(f"/staff/claims/{claim.ref}").text
    assert 'id="approve-needs-investigation"' in page and "批准申请前必须先进行实地调查" in page
    decision = page.split(f'action="/staff/claims/{claim.ref}/decision"')[1].split("</form>")[0]
    assert 'value="reject"' in decision and 'value="approve"' not in decision


def test_approving_and_closing_are_confirmed_with_the_amount(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    from tests.web.conftest import csrf

    from mutualaid.services.claims.review import (
        assign_investigation,
        file_investigation_report,
    )
    from mutualaid.services.claims.views import get_claim

    member, membership_id = covered(ctx, clock, date(1990, 5, 1))
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership_id, "CI01", clock.now().date() - timedelta(days=2), "医院"),
    )
    reviewer, investigator = account(ctx, Role.REVIEWER), account(ctx, Role.INVESTIGATOR)
    start_review(ctx, reviewer, claim.ref)
    assign_investigation(ctx, reviewer, claim.ref, investigator.account_id)
    file_investigation_report(ctx, investigator, claim.ref, "属实", "approve")
    browser = person(client, ctx, reviewer)
    case_page = f"/staff/claims/{claim.ref}"
    page = browser.get(case_page).text
    assert "如批准：我确认给付" in page and "¥300,000.00" in page.split('id="confirm-approval"')[1]
    unconfirmed = browser.submit(
        case_page, f"{case_page}/decision", {"outcome": "approve", "note": ""}
    )
    assert unconfirmed.status_code == 422 and 'id="f-confirm-error"' in unconfirmed.text
    assert get_claim(ctx, reviewer, claim.ref).state == "re_review"
    confirmed = browser.submit(
        case_page, f"{case_page}/decision", {"outcome": "approve", "confirm": "yes"}
    )
    assert confirmed.status_code == 303
    operator = person(client, ctx, account(ctx, Role.OPERATOR))
    periods = operator.get("/staff/plans/xhb-main/periods").text
    # The period of 21 February is locked and open: its close is confirmed with the amounts.
    assert 'id="close-period"' in periods
    assert "我确认：" in periods and "结算后不能撤销" in periods
    refused_close = operator.client.post(
        "/staff/plans/xhb-main/periods/close",
        data={"csrf_token": csrf(periods), "on": "2026-02-21"},
        follow_redirects=False,
    )
    assert refused_close.status_code == 422 and 'id="f-confirm-error"' in refused_close.text
    assert "（已结算）" not in operator.get("/staff/plans/xhb-main/periods").text
