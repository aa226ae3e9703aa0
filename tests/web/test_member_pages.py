"""Member pages over the real services: joining (and every refusal in words), cover, claims with
evidence (one request, or resumable pieces), objections, the jury, leaving, my data."""

from __future__ import annotations

import json
from datetime import date, timedelta

from fastapi.testclient import TestClient
from tests.factories import (
    HEALTHY,
    account,
    covered_member,
    demo_rules_sha256,
    imported_member,
    resident_id,
)
from tests.web.conftest import Browser, csrf, phone_of, published_case

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.juries import CERTIFICATION_QUIZ
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.evidence import list_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.panels import dispute_rejection

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + bytes(600_000) + b"\xff\xd9"


def join_form(id_number: str, relation: str = "self", **answers: str) -> dict[str, str]:
    form = {
        "relation": relation,
        "full_name": "张三华",
        "id_number": id_number,
        "rules_sha256": demo_rules_sha256(),
        "consent": "yes",
    }
    for code in HEALTHY:
        form[f"health_answers.{code}"] = answers.get(code, "no")
    return form


def test_a_member_registers_and_enrolls_herself_and_a_child(browser: Browser) -> None:
    response = browser.submit(
        "/register",
        "/register",
        {
            "phone": "13911112222",
            "password": "secret-passphrase",
            "password_again": "secret-passphrase",
        },
    )
    assert response.headers["location"] == "/me?ok=registered"
    joined = browser.submit(
        "/plans/xhb-main/join", "/plans/xhb-main/join", join_form(resident_id(date(1990, 5, 1)))
    )
    assert joined.headers["location"] == "/me?ok=enrolled"
    child = browser.submit(
        "/plans/xhb-main/join",
        "/plans/xhb-main/join",
        join_form(resident_id(date(2025, 12, 1)), relation="child"),
    )
    assert child.headers["location"] == "/me?ok=enrolled"
    me = browser.get("/me").text
    assert me.count("等待期结束") == 2
    assert "¥300,000.00" in me
    # The holder is enrolled: "myself" is no longer offered.
    assert 'value="self"' not in browser.get("/plans/xhb-main/join").text


def test_every_enrollment_refusal_is_explained_next_to_its_field(member_browser: Browser) -> None:
    good = resident_id(date(1990, 5, 1))
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    refused = member_browser.submit(
        "/plans/xhb-main/join", "/plans/xhb-main/join", join_form(wrong)
    )
    assert refused.status_code == 422
    assert (
        '<p class="field-error" id="f-id_number-error">身份证号码的校验位不符（有数字输错了）</p>'
        in refused.text
    )
    assert 'aria-invalid="true"' in refused.text and f'value="{wrong}"' in refused.text
    sick = member_browser.submit(
        "/plans/xhb-main/join",
        "/plans/xhb-main/join?lang=en",
        join_form(good, tumour="yes", diabetes="yes"),
    )
    assert sick.status_code == 422
    assert (
        "the plan cannot accept a member who answers yes to: Do you have, or have you had, "
        "a tumour" in sick.text
    )
    assert "Do you have diabetes" in sick.text.split("Please check:")[1]
    baby = member_browser.submit(
        "/plans/xhb-main/join",
        "/plans/xhb-main/join?lang=zh_CN",
        join_form(resident_id(date(2026, 2, 20)), relation="child"),
    )
    assert "成员须出生满30天（可于2026年3月22日起加入）" in baby.text


def _covered(ctx: ServiceContext, clock: FixedClock, client: TestClient) -> tuple[Browser, int]:
    member, membership = covered_member(ctx, clock)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, member.account_id))
    return browser, membership.id


def test_a_claim_with_evidence_is_reported_without_javascript(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    browser, membership_id = _covered(ctx, clock, client)
    refused = browser.submit(
        "/claims/new",
        "/claims/new",
        {
            "membership_id": str(membership_id),
            "illness_code": "CI01",
            "diagnosed_on": (clock.now().date() + timedelta(days=2)).isoformat(),
            "hospital": "医院",
        },
    )
    assert refused.status_code == 422 and "确诊日期晚于今天" in refused.text
    reported = browser.submit(
        "/claims/new",
        "/claims/new",
        {
            "membership_id": str(membership_id),
            "illness_code": "CI01",
            "diagnosed_on": (clock.now().date() - timedelta(days=2)).isoformat(),
            "hospital": "浙江省肿瘤医院",
            "form_key": "k1",
        },
    )
    ref = reported.headers["location"].split("/claims/")[1].split("?")[0]
    page = browser.get(f"/claims/{ref}").text
    token = csrf(page)
    uploaded = browser.client.post(
        f"/claims/{ref}/evidence",
        data={"csrf_token": token, "label": "诊断证明"},
        files={"file": ("d.jpg", JPEG, "image/jpeg")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    not_a_photo = browser.client.post(
        f"/claims/{ref}/evidence",
        data={"csrf_token": token, "label": "x"},
        files={"file": ("d.jpg", b"hello world!", "image/jpeg")},
    )
    assert not_a_photo.status_code == 422 and "不支持此类文件" in not_a_photo.text
    claim = browser.get(f"/claims/{ref}").text
    assert "诊断证明" in claim and "586 KB" in claim


def test_a_resumable_upload_survives_a_dropped_piece_and_a_resent_one(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    browser, membership_id = _covered(ctx, clock, client)
    claim = browser.submit(
        "/claims/new",
        "/claims/new",
        {
            "membership_id": str(membership_id),
            "illness_code": "CI01",
            "diagnosed_on": (clock.now().date() - timedelta(days=2)).isoformat(),
            "hospital": "医院",
        },
    )
    ref = claim.headers["location"].split("/claims/")[1].split("?")[0]
    headers = {"X-CSRF-Token": csrf(browser.get(f"/claims/{ref}").text)}
    started = browser.client.post(
        f"/claims/{ref}/uploads",
        headers=headers,
        data={"size": str(len(JPEG)), "media_type": "image/jpeg", "label": "病历"},
    ).json()
    upload_id, piece = started["upload_id"], started["piece_bytes"]
    base = f"/claims/{ref}/uploads/{upload_id}"
    first = browser.client.put(f"{base}?offset=0", headers=headers, content=JPEG[:piece]).json()
    assert first["received"] == piece
    # The connection dropped after the piece arrived; the phone sends it again: acknowledged once.
    again = browser.client.put(f"{base}?offset=0", headers=headers, content=JPEG[:piece]).json()
    assert again["received"] == piece
    # A piece from the wrong place is refused with where to resume.
    skipped = browser.client.put(
        f"{base}?offset={2 * piece}", headers=headers, content=JPEG[2 * piece : 3 * piece]
    )
    assert skipped.status_code == 400 and skipped.json()["error"]["received"] == piece
    assert browser.client.get(base).json()["received"] == piece
    offset = piece
    while offset < len(JPEG):
        offset = browser.client.put(
            f"{base}?offset={offset}", headers=headers, content=JPEG[offset : offset + piece]
        ).json()["received"]
    # What waits on disk is encrypted: the JPEG's bytes are nowhere in it.
    assert ctx.upload_dir is not None
    (part,) = ctx.upload_dir.glob(f"*{upload_id}.part")
    stored = part.read_bytes()
    assert JPEG[:40] not in stored
    done = browser.client.post(f"{base}/finish", headers=headers)
    assert done.json()["redirect"].startswith(f"/claims/{ref}?ok=evidence_added")
    assert not part.exists()
    assert "病历" in browser.get(f"/claims/{ref}").text


def test_someone_elses_upload_cannot_be_continued(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    browser, membership_id = _covered(ctx, clock, client)
    claim = browser.submit(
        "/claims/new",
        "/claims/new",
        {
            "membership_id": str(membership_id),
            "illness_code": "CI01",
            "diagnosed_on": (clock.now().date() - timedelta(days=2)).isoformat(),
            "hospital": "医院",
        },
    )
    ref = claim.headers["location"].split("/claims/")[1].split("?")[0]
    headers = {"X-CSRF-Token": csrf(browser.get(f"/claims/{ref}").text)}
    upload_id = browser.client.post(
        f"/claims/{ref}/uploads", headers=headers, data={"size": "100", "media_type": "image/jpeg"}
    ).json()["upload_id"]
    with TestClient(client.app, base_url="http://localhost") as other_client:
        other = Browser(other_client)
        other.log_in(phone_of(ctx, account(ctx).account_id))
        token = {"X-CSRF-Token": csrf(other.get("/me").text)}
        response = other_client.put(
            f"/claims/{ref}/uploads/{upload_id}?offset=0", headers=token, content=b"x" * 100
        )
        assert response.status_code == 404


def test_a_member_follows_a_claim_answers_a_request_and_disputes_a_rejection(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    browser, membership_id = _covered(ctx, clock, client)
    member_id = int(browser.get("/me/data.json").json()["account"]["id"])
    claim = report_claim(
        ctx,
        Actor(member_id, Role.MEMBER),
        ClaimReport(membership_id, "CI01", clock.now().date() - timedelta(days=3), "医院"),
    )
    reviewer = account(ctx, Role.REVIEWER)
    start_review(ctx, reviewer, claim.ref)
    decide_claim(
        ctx,
        reviewer,
        claim.ref,
        approve=False,
        reason_code=RejectionReason.WAITING_PERIOD,
        note="诊断日期在等待期内",
    )
    page = browser.get(f"/claims/{claim.ref}").text
    assert "在等待期内确诊" in page and "诊断日期在等待期内——如不同意此决定" in page
    disputed = browser.submit(
        f"/claims/{claim.ref}", f"/claims/{claim.ref}/dispute", {"reason": "等待期计算有误"}
    )
    assert disputed.headers["location"].endswith("ok=disputed")
    assert "评审团投票中" in browser.get(f"/claims/{claim.ref}").text
    messages = browser.get("/me/notifications").text
    assert "您的申请状态：已拒绝" in messages


def test_a_member_answers_a_document_request_and_withdraws_only_after_confirming(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    from mutualaid.services.claims.review import assign_investigation, request_documents
    from mutualaid.services.claims.views import get_claim

    browser, membership_id = _covered(ctx, clock, client)
    member = Actor(int(browser.get("/me/data.json").json()["account"]["id"]), Role.MEMBER)
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership_id, "CI01", clock.now().date() - timedelta(days=3), "医院"),
    )
    reviewer, investigator = account(ctx, Role.REVIEWER), account(ctx, Role.INVESTIGATOR)
    start_review(ctx, reviewer, claim.ref)
    assign_investigation(ctx, reviewer, claim.ref, investigator.account_id)
    request_documents(ctx, investigator, claim.ref, "请补充出院小结")
    provided = browser.submit(
        f"/claims/{claim.ref}",
        f"/claims/{claim.ref}/documents-provided",
        {"note": "已上传出院小结"},
    )
    assert provided.headers["location"].endswith("ok=documents_provided")
    unconfirmed = browser.submit(f"/claims/{claim.ref}", f"/claims/{claim.ref}/withdraw", {})
    assert unconfirmed.status_code == 422 and "请勾选以确认" in unconfirmed.text
    assert get_claim(ctx, member, claim.ref).state != "withdrawn"
    withdrawn = browser.submit(
        f"/claims/{claim.ref}", f"/claims/{claim.ref}/withdraw", {"confirm": "yes"}
    )
    assert withdrawn.headers["location"].endswith("ok=done")
    assert get_claim(ctx, member, claim.ref).state == "withdrawn"


def test_a_covered_member_objects_once_to_a_published_case(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    case = published_case(ctx, clock)
    browser, _ = _covered(ctx, clock, client)
    assert "对此案例提出异议" in browser.get("/plans/xhb-main/notices").text
    short = browser.submit(
        f"/claims/{case.ref}/objection", f"/claims/{case.ref}/objection", {"reason": "太短"}
    )
    assert short.status_code == 422 and "请用10至2,000个字说明理由" in short.text
    filed = browser.submit(
        f"/claims/{case.ref}/objection",
        f"/claims/{case.ref}/objection",
        {"reason": "我认识她,她在加入之前就已经确诊了。"},
    )
    assert filed.headers["location"] == "/me?ok=objected"
    # The form is no longer offered; a second objection sent anyway is refused by the service.
    again = browser.get(f"/claims/{case.ref}/objection")
    assert again.status_code == 403 and "<textarea" not in again.text
    assert "您已对此案例提出异议" in again.text
    twice = browser.client.post(
        f"/claims/{case.ref}/objection",
        data={
            "csrf_token": csrf(browser.get("/me").text),
            "reason": "我认识她,她在加入之前就已经确诊了。",
        },
        follow_redirects=False,
    )
    assert twice.status_code == 422 and "您已对此案例提出过异议" in twice.text
    assert "待处理" in browser.get("/me").text


def test_a_member_certifies_as_a_juror_and_votes_after_reading_the_file(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    appellant, membership = covered_member(ctx, clock, date(1979, 9, 9))
    claim = report_claim(
        ctx,
        appellant,
        ClaimReport(membership.id, "CI02", clock.now().date() - timedelta(days=3), "医院"),
    )
    reviewer = account(ctx, Role.REVIEWER)
    start_review(ctx, reviewer, claim.ref)
    decide_claim(
        ctx,
        reviewer,
        claim.ref,
        approve=False,
        reason_code=RejectionReason.INSUFFICIENT_EVIDENCE,
        note="缺少诊断证明",
    )
    dispute_rejection(ctx, appellant, claim.ref, "已补交")
    juror, _ = _covered(ctx, clock, client)
    assert "参加评审员测验" in juror.get("/jury").text
    wrong = juror.submit(
        "/jury/certification",
        "/jury/certification",
        {q.code: q.choices[0] for q in CERTIFICATION_QUIZ},
    )
    assert wrong.status_code == 422 and "个答案不正确" in wrong.text
    passed = juror.submit(
        "/jury/certification", "/jury/certification", {q.code: q.answer for q in CERTIFICATION_QUIZ}
    )
    assert passed.headers["location"] == "/jury?ok=certified"
    home = juror.get("/jury").text
    case_id = home.split('href="/jury/cases/')[1].split('"')[0]
    unread = juror.submit(
        f"/jury/cases/{case_id}", f"/jury/cases/{case_id}/vote", {"choice": "approve"}
    )
    assert unread.status_code == 422 and "请先回答关于案例材料的问题" in unread.text
    voted = juror.submit(
        f"/jury/cases/{case_id}",
        f"/jury/cases/{case_id}/vote",
        {"choice": "approve", "quiz.illness": "CI02", "quiz.age_band": "40-49"},
    )
    assert voted.headers["location"] == "/jury?ok=voted"
    votes = juror.get("/jury").text
    assert claim.ref in votes and "投票中" in votes
    # No running tally anywhere a juror can see.
    assert "1:0" not in votes


def test_a_member_downloads_her_data_and_leaves_the_plan(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    browser, membership_id = _covered(ctx, clock, client)
    data = browser.get("/me/data.json")
    assert data.headers["content-disposition"].startswith("attachment")
    body = json.loads(data.text)
    assert body["persons"][0]["full_name"] == "张三华"
    assert len(body["persons"][0]["id_number"]) == 18
    assert body["memberships"][0]["id"] == membership_id
    assert "statements" in body and "proofs" in body  # the whole record, as a wind-down hands it
    table = browser.get("/me/data.csv")
    assert table.headers["content-type"].startswith("text/csv")
    assert f"membership,{membership_id},xhb-main," in table.text
    unconfirmed = browser.submit(
        f"/me/memberships/{membership_id}/leave", f"/me/memberships/{membership_id}/leave", {}
    )
    assert unconfirmed.status_code == 422 and "请勾选以确认" in unconfirmed.text
    left = browser.submit(
        f"/me/memberships/{membership_id}/leave",
        f"/me/memberships/{membership_id}/leave",
        {"confirm": "yes"},
    )
    assert left.headers["location"] == "/me?ok=left"
    assert "已退出计划" in browser.get("/me").text


def test_a_member_cannot_see_another_members_claim(
    ctx: ServiceContext, clock: FixedClock, client: TestClient, member_browser: Browser
) -> None:
    case = published_case(ctx, clock)
    assert member_browser.get(f"/claims/{case.ref}").status_code == 404
    assert member_browser.get(f"/claims/{case.ref}/proof.json").status_code == 404
    assert list_evidence(ctx, case.member, case.ref) == []


def test_an_imported_member_registers_with_the_invitation_code(
    ctx: ServiceContext, browser: Browser
) -> None:
    code = imported_member(ctx, "13900000002")
    form = {"phone": "13900000002", "password": "secret-passphrase"}
    form["password_again"] = form["password"]
    refused = browser.submit("/register", "/register", form)
    assert refused.status_code == 422
    assert "计划运营方发给您的邀请码" in refused.text
    bound = browser.submit("/register", "/register", form | {"invitation": code})
    assert bound.headers["location"] == "/me?ok=registered"


def test_registering_one_phone_again_and_again_is_refused_for_an_hour(
    ctx: ServiceContext, browser: Browser
) -> None:
    imported_member(ctx, "13900000003")
    form = {"phone": "13900000003", "password": "secret-passphrase"}
    form["password_again"] = form["password"]
    for attempt in range(5):
        assert (
            browser.submit(
                "/register", "/register", form | {"invitation": f"x{attempt}"}
            ).status_code
            == 422
        )
    limited = browser.submit("/register", "/register", form | {"invitation": "x5"})
    assert limited.status_code == 429
    assert "注册次数过多：请等待60分钟后再试" in limited.text
