"""The whole life of a claim, walked in a real browser by every role, in Chinese and in English.

A member registers, enrolls herself and a child (after being refused, in words, for a mistyped ID
number), reports a claim with a photo of her diagnosis; a reviewer sends it to an investigator, a
different reviewer approves it (the investigator cannot); the operator publishes it and the public
sees it, anonymised; another member objects and the objection is dismissed; publicity ends; that
member, certified as a juror, votes on a disputed case; the operator closes the period and the
member sees her charge; the public page verifies the claim's proof on the transparency log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect
from tests.e2e.conftest import LiveServer, Person, Shots, staff_phone
from tests.factories import PASSWORD, account, covered_member, publish_demo_plans, resident_id

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.transparency.notes import generate_signer_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: What the pages say, per language, where the test checks words rather than structure.
WORDS = {
    "zh_CN": {
        "check_digit": "校验位",
        "separated": "职责分离",
        "verified": "所有检查均已通过",
    },
    "en": {
        "check_digit": "check digit",
        "separated": "Separated duties",
        "verified": "All checks passed",
    },
}

# A small valid JPEG: what a phone camera would send (the store checks the first bytes).
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def at_shanghai(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture(params=["zh_CN", "en"])
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def people(
    chromium: Browser, live_server: LiveServer, lang: str, shots: Shots
) -> Iterator[dict[str, Person]]:
    made: dict[str, Person] = {}

    def person(name: str) -> Person:
        made[name] = Person(chromium, live_server, lang, shots, name)
        return made[name]

    yield person  # type: ignore[misc]
    for p in made.values():
        p.close()


def account_id(ctx: ServiceContext, phone: str) -> str:
    from sqlalchemy import select

    from mutualaid.db.models import Account

    with ctx.reading() as session:
        return str(session.scalars(select(Account.id).where(Account.phone == phone)).one())


def test_a_claim_from_report_to_the_members_statement(
    ctx: ServiceContext,
    clock: FixedClock,
    live_server: LiveServer,
    people,
    lang: str,  # type: ignore[no-untyped-def]
    shots: Shots,
) -> None:
    words = WORDS[lang]
    clock.set(at_shanghai(2026, 3, 1))
    publish_demo_plans(ctx)
    reviewer = staff_phone(ctx, Role.REVIEWER, "10000000102")
    approver = staff_phone(ctx, Role.REVIEWER, "10000000103")
    investigator = staff_phone(ctx, Role.INVESTIGATOR, "10000000104")
    operator = staff_phone(ctx, Role.OPERATOR, "10000000105")
    # Another member, in the plan for 200 days: she objects and serves as a juror.
    juror, _ = covered_member(ctx, clock, date(1985, 2, 3))
    from tests.web.conftest import phone_of

    juror_phone = phone_of(ctx, juror.account_id)
    # A third member whose claim was rejected: he disputes it, and the jury votes.
    disputer, disputer_membership = covered_member(ctx, clock, date(1979, 9, 9))
    rejected = report_claim(
        ctx, disputer, ClaimReport(disputer_membership.id, "CI02", date(2026, 2, 20), "县人民医院")
    )

    # --- the member registers and enrolls --------------------------------------------------------
    member = people("member")
    page = member.page
    member.shot("home")
    member.go("/register")
    page.fill("#f-phone", "13912345678")
    page.fill("#f-display_name", "张三华")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_again", PASSWORD)
    member.shot("register")
    member.submit("form[action='/register']")
    expect(page).to_have_url(re.compile(r"/me\?ok=registered$"))

    member.go("/plans/xhb-main/join")
    page.fill("#f-full_name", "张三华")
    page.fill("#f-id_number", resident_id(date(1990, 5, 1)))
    for radio in page.locator("input[type=radio][value=no]").all():
        radio.check()
    page.check("#f-rules_sha256")
    member.shot("join-self")
    member.submit("form[action='/plans/xhb-main/join']")
    expect(page).to_have_url(re.compile(r"/me\?ok=enrolled$"))

    member.go("/plans/xhb-main/join")
    page.locator("input[name=relation][value=child]").check()
    page.fill("#f-full_name", "张小华")
    good_child_id = resident_id(date(2020, 6, 1))
    wrong_child_id = good_child_id[:-1] + ("1" if good_child_id[-1] != "1" else "2")
    page.fill("#f-id_number", wrong_child_id)
    for radio in page.locator("input[type=radio][value=no]").all():
        radio.check()
    page.check("#f-rules_sha256")
    member.submit("form[action='/plans/xhb-main/join']")
    refusal = page.locator("#f-id_number-error")
    expect(refusal).to_contain_text(words["check_digit"])
    expect(page.locator("#f-id_number")).to_have_attribute("aria-invalid", "true")
    member.shot("refused-wrong-id")
    page.fill("#f-id_number", good_child_id)
    member.submit("form[action='/plans/xhb-main/join']")
    expect(page).to_have_url(re.compile(r"/me\?ok=enrolled$"))
    expect(page.locator("section.card")).to_have_count(2)
    member.shot("my-cover-waiting")

    # --- 100 days later she is covered and reports a claim ----------------------------------------
    clock.set(at_shanghai(2026, 6, 9))
    member.go("/me")
    member.shot("my-cover-covered")
    member.go("/claims/new")
    page.select_option("#f-illness_code", "CI01")
    page.fill("#f-diagnosed_on", "2026-06-05")
    page.fill("#f-hospital", "浙江省肿瘤医院")
    member.shot("report-claim")
    member.submit("form[action='/claims/new']")
    expect(page).to_have_url(re.compile(r"/claims/C[0-9A-F-]+\?ok=claim_reported$"))
    ref = page.url.split("/claims/")[1].split("?")[0]
    upload = page.locator("form#upload")
    if upload.count():
        photo = Path(shots.folder) / "diagnosis.jpg"
        photo.write_bytes(JPEG)
        page.set_input_files("#f-file", str(photo))
        page.fill("#f-label", "诊断证明 diagnosis")
        member.submit("form#upload")
        expect(page.locator("#evidence-list li")).to_have_count(1)
    member.shot("claim-reported")

    # --- review, investigation, and a decision by someone else -------------------------------------
    first = people("reviewer")
    first.log_in(reviewer)
    first.go(f"/staff/claims/{ref}")
    first.submit(f"form[action='/staff/claims/{ref}/review']")
    first.page.select_option("#f-investigator_id", account_id(ctx, investigator))
    first.shot("assign-investigator")
    first.submit(f"form[action='/staff/claims/{ref}/assign']")

    field = people("investigator")
    field.log_in(investigator)
    expect(field.page.locator(f"a[href='/staff/claims/{ref}']")).to_be_visible()
    field.shot("queue")
    field.go(f"/staff/claims/{ref}")
    field.page.fill("#f-findings", "医院确认诊断 diagnosis confirmed by the hospital")
    field.page.locator("input[name=recommendation][value=approve]").check()
    field.shot("investigation-report")
    field.submit(f"form[action='/staff/claims/{ref}/report']")
    expect(field.page.locator("#separated-duties")).to_contain_text(words["separated"])
    expect(field.page.locator(f"form[action='/staff/claims/{ref}/decision']")).to_have_count(0)
    field.shot("separated-duties")

    decider = people("approver")
    decider.log_in(approver)
    decider.go(f"/staff/claims/{ref}")
    decider.page.locator("input[name=outcome][value=approve]").check()
    # Approving commits every member to share the aid: the amount is confirmed first.
    expect(decider.page.locator("#confirm-approval")).to_contain_text("300,000.00")
    decider.page.locator("#confirm-approval input[name=confirm]").check()
    decider.shot("decision")
    decider.submit(f"form[action='/staff/claims/{ref}/decision']")

    # --- publicity: the operator publishes, the public sees it, a member objects --------------------
    clock.set(at_shanghai(2026, 6, 21, 9))
    desk = people("operator")
    desk.log_in(operator)
    desk.go("/staff/operations")
    desk.submit("form[action='/staff/plans/xhb-main/publicity']")
    desk.shot("publicity-run")

    public = people("public")
    public.go("/plans/xhb-main/notices")
    case = public.page.locator(f"#case-{ref}")
    expect(case).to_contain_text("张*华")
    expect(public.page.locator("body")).not_to_contain_text("张三华")
    public.shot("public-notice")

    objector = people("objector")
    objector.log_in(juror_phone)
    objector.go(f"/claims/{ref}/objection")
    objector.page.fill(
        "#f-reason", "我认识这位成员,她在加入前已经确诊。 She was diagnosed before joining."
    )
    objector.shot("objection")
    objector.submit(f"form[action='/claims/{ref}/objection']")
    expect(objector.page).to_have_url(re.compile(r"/me\?ok=objected$"))

    decider.go(f"/staff/claims/{ref}")
    decider.page.locator("input[name=outcome][value=dismiss]").check()
    decider.page.fill(
        "#f-note", "入院记录显示首次诊断在加入之后 records show the first diagnosis after joining"
    )
    decider.shot("objection-review")
    decider.submit("form[action^='/staff/objections/']")

    clock.set(at_shanghai(2026, 6, 24, 1))
    desk.go("/staff/operations")
    desk.submit("form[action='/staff/plans/xhb-main/publicity']")
    member.go(f"/claims/{ref}")
    expect(member.page.locator("#status-h")).to_be_visible()
    member.shot("claim-approved")

    # --- the jury: a disputed rejection, and a certified member votes -------------------------------
    # Rejected now, so that it is disputed within the plan's time to dispute (30 days).
    reviewer_actor = account(ctx, Role.REVIEWER)
    start_review(ctx, reviewer_actor, rejected.ref)
    decide_claim(
        ctx,
        reviewer_actor,
        rejected.ref,
        approve=False,
        reason_code=RejectionReason.INSUFFICIENT_EVIDENCE,
        note="the diagnosis certificate is missing",
    )
    appellant = people("appellant")
    appellant.log_in(phone_of(ctx, disputer.account_id))
    appellant.go(f"/claims/{rejected.ref}")
    appellant.page.fill("#f-reason", "诊断证明已补交 the certificate is attached now")
    appellant.submit(f"form[action='/claims/{rejected.ref}/dispute']")
    appellant.shot("disputed")

    objector.go("/jury/certification")
    for code, answer in (
        ("waiting_period", "no"),
        ("evidence", "case_file"),
        ("declaration", "no"),
        ("conflict", "recuse"),
    ):
        objector.page.locator(f"input[name={code}][value={answer}]").check()
    objector.shot("juror-quiz")
    objector.submit("form[action='/jury/certification']")
    expect(objector.page).to_have_url(re.compile(r"/jury\?ok=certified$"))
    objector.page.locator("a[href^='/jury/cases/']").first.click()
    objector.page.locator("input[name='quiz.illness'][value=CI02]").check()
    objector.page.locator("input[name='quiz.age_band'][value='40-49']").check()
    objector.page.locator("input[name=choice][value=approve]").check()
    objector.shot("jury-case")
    objector.submit("form[action$='/vote']")
    expect(objector.page).to_have_url(re.compile(r"/jury\?ok=voted$"))
    objector.shot("my-votes")

    # --- the period closes and the member sees her charge ----------------------------------------
    clock.set(at_shanghai(2026, 7, 7))
    desk.go("/staff/plans/xhb-main/periods")
    if desk.page.locator("form#close-period").count():
        desk.page.locator("form#close-period input[name=confirm]").check()
        desk.shot("period-preview")
        desk.submit("form#close-period")
        desk.shot("period-closed")
        member.go("/me/statement")
        # One case of ¥300,000 shared by three members, capped at ¥0.10 per case per member.
        expect(member.page.locator("main table").first).to_contain_text("¥0.10")
        member.shot("statement")

    # --- the transparency log: a checkpoint, and the public verifies the claim --------------------
    publish_checkpoint(ctx, LogConfig(generate_signer_key("mutualaid.example/log")))
    public.go(f"/verify/claim/{ref}")
    expect(public.page.locator("#verify-result")).to_contain_text(words["verified"])
    public.shot("verify")
