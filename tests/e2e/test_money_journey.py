"""Real money in and out (issue 17), walked in a real browser against a local Alipay gateway and a
local SMTP server.

A member registers and proves her phone with the code sent by SMS; joining an Alipay plan is
refused until she signs the withholding agreement on Alipay's page; she joins, consenting to the
rules, and is covered; a period closes and every share is debited through the Alipay adapter; her
debit is declined, and she is e-mailed the amount and a link; she pays on her payments page. A
payout above the four-eyes amount is released by two operators and settled by Alipay's
notification; replayed and reordered notifications change nothing; a forged one is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import func, select
from tests.alipay_gateway import Gateway, alipay_gateway, new_key, site_config
from tests.e2e.conftest import LiveServer, Person, Shots, staff_phone
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    PASSWORD,
    account,
    approved_claim,
    close_on,
    join_at,
    publish_demo_plans,
    resident_id,
    staff_code,
    use_rules,
)
from tests.mailboxes import Mailbox

from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    Account,
    Claim,
    CollectionFailure,
    LedgerTransaction,
    Membership,
    ProviderPayment,
)
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.context import MessageChannels, ServiceContext
from mutualaid.services.enrollment.memberships import advance_memberships
from mutualaid.services.notifications import dispatch_notifications
from mutualaid.services.payments.agreements import start_agreement
from mutualaid.services.payments.alipay import out_reference
from mutualaid.services.payments.providers import alipay_client, provider_of
from mutualaid.services.payments.transfers import send_payouts

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAYMENTS = '\n[payments]\nprovider = "alipay"\nfour_eyes_above_fen = 500\n'
SMS = "sms-{to}@sms.example.org"
JOINED = datetime(2025, 6, 1, 2, tzinfo=UTC)
DEBIT_DAY = datetime(2026, 3, 14, 2, tzinfo=UTC)
PHONE = "13912340001"
EMAIL = "lin.xiaoman@example.org"


@pytest.fixture
def gateway(ctx: ServiceContext, live_server: LiveServer, smtp: Mailbox) -> Iterator[Gateway]:
    with alipay_gateway(new_key()) as gateway:
        ctx.alipay = site_config(gateway, live_server.url)
        ctx.messages = MessageChannels(
            email_url=smtp.url(), sms_url=smtp.url(SMS), public_url=live_server.url
        )
        yield gateway


@pytest.fixture
def member(chromium: Browser, live_server: LiveServer, shots: Shots) -> Iterator[Person]:
    person = Person(chromium, live_server, "en", shots, "member")
    yield person
    person.close()


def _signed_up(ctx: ServiceContext, gateway: Gateway, payer: Actor, user_id: str) -> None:
    page = start_agreement(ctx, payer)
    assert httpx.get(page.url).status_code == 200
    assert gateway.sign_agreement(page.external_no, user_id).text == "success"


def _count(ctx: ServiceContext, model: type) -> int:
    with ctx.reading() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _staff_token(server: LiveServer, phone: str) -> dict[str, str]:
    body = {"phone": phone, "password": PASSWORD, "code": staff_code(server.ctx)}
    answer = httpx.post(f"{server.url}/api/v1/sessions", json=body, timeout=20)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_money_in_and_out_from_registration_to_a_settled_payout(
    ctx: ServiceContext,
    clock: FixedClock,
    live_server: LiveServer,
    gateway: Gateway,
    smtp: Mailbox,
    member: Person,
) -> None:
    clock.set(JOINED)
    publish_demo_plans(ctx)
    use_rules(ctx, tables=PAYMENTS)
    page = member.page

    # --- she registers and proves her phone with the code sent by SMS ----------------------------
    member.go("/register")
    page.fill("#f-phone", PHONE)
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_again", PASSWORD)
    member.submit("form[action='/register']")
    expect(page).to_have_url(re.compile(r"/me\?ok=registered$"))
    [sms] = smtp.to(SMS.format(to=PHONE))
    code = re.search(r"\b(\d{6})\b", sms.body)
    assert code is not None
    member.go("/me/phone")
    page.fill("#f-code", code.group(1))
    member.submit("form[action='/me/phone/verify']")
    expect(page).to_have_url(re.compile(r"/me\?ok=phone_verified$"))
    member.go("/me/settings")
    page.locator("input[name=channel][value=email]").check()
    page.fill("#f-email", EMAIL)
    member.submit("form[action='/me/settings']")
    expect(page).to_have_url(re.compile(r"ok=settings_saved"))

    # --- joining waits for the debit agreement; she signs it on Alipay's page ---------------------
    def fill_join_form() -> None:
        member.go("/plans/xhb-main/join")
        page.fill("#f-full_name", "林小满")
        page.fill("#f-id_number", id_number)
        for radio in page.locator("input[type=radio][value=no]").all():
            radio.check()
        page.check("#f-rules_sha256")
        member.submit("form[action='/plans/xhb-main/join']")

    id_number = resident_id(date(1990, 5, 1))
    fill_join_form()
    expect(page.locator("#problems")).to_contain_text("sign the debit agreement first")
    member.shot("join-waits-for-agreement")
    member.go("/me/payments")
    member.submit("form[action='/me/payments/agreement']")
    with page.expect_navigation():
        page.locator("#alipay-sign").click()
    expect(page.locator("body")).to_contain_text("签约")  # Alipay's sign page (the local gateway)
    [external_no] = gateway.sign_pages
    assert gateway.sign_agreement(external_no, "2088000000000001").text == "success"
    [agreement_no] = gateway.agreements
    member.go("/me/payments")
    expect(page.locator("body")).to_contain_text("signed and active")
    fill_join_form()
    expect(page).to_have_url(re.compile(r"/me\?ok=enrolled$"))
    with ctx.reading() as session:
        holder_id = session.scalars(select(Account.id).where(Account.phone == PHONE)).one()
        mine = session.scalars(
            select(Membership).where(Membership.payer_account_id == holder_id)
        ).one()
        assert mine.rules_sha256 and mine.plan_version == 2
        membership_id = mine.id

    # --- two more members, signed up the same way; one has an approved claim ----------------------
    others = [account(ctx) for _ in range(2)]
    for n, payer in enumerate(others):
        _signed_up(ctx, gateway, payer, f"208800000000001{n}")
    joined = [join_at(ctx, clock, JOINED, payer)[1] for payer in others]
    clock.set(datetime(2026, 3, 1, 2, tzinfo=UTC))
    advance_memberships(ctx, MAIN_PLAN)
    with ctx.reading() as session:
        assert session.get_one(Membership, membership_id).state == "covered"
    ref = approved_claim(ctx, joined[0].id, 1000, LOCK_MARCH_7 - timedelta(days=1))

    # --- the period closes; every share is debited through Alipay; hers is declined ----------------
    close_on(ctx, clock, MARCH_7)
    clock.set(DEBIT_DAY)
    gateway.declined.add(agreement_no)
    with provider_of(ctx, MAIN_PLAN) as provider:
        assert provider is not None
        run = collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, provider)
    assert run.payers_asked == 3 and run.failed_fen == run.collected_fen // 2
    share = run.failed_fen
    dispatch_notifications(ctx)
    yuan = f"¥{share // 100}.{share % 100:02d}"
    [mail] = [m for m in smtp.to(EMAIL) if yuan in m.subject]  # after her welcome messages
    assert f"{yuan} before" in mail.body
    assert f"{live_server.url}/me/payments" in mail.body

    # --- she pays on the web, through Alipay ----------------------------------------------------
    gateway.declined.discard(agreement_no)
    member.go("/me/payments")
    expect(page.locator("body")).to_contain_text("Unpaid shares")
    member.shot("unpaid-share")
    member.submit("form.unpaid")
    expect(page).to_have_url(re.compile(r"/me/payments\?ok=share_paid$"))
    with ctx.reading() as session:
        assert session.get_one(Membership, membership_id).state == "covered"
        assert session.scalar(select(CollectionFailure.status)) == "paid_late"
        paid_now = session.scalars(
            select(ProviderPayment).where(
                ProviderPayment.account_id == holder_id, ProviderPayment.status == "paid"
            )
        ).one()
        session.expunge(paid_now)
    assert paid_now.provider_ref
    expect(page.locator("body")).to_contain_text(paid_now.provider_ref)
    member.shot("paid")

    # Alipay's notifications of that debit: replayed, and a late "closed", change nothing.
    movement = gateway.movements[paid_now.out_ref]
    transactions = _count(ctx, LedgerTransaction)
    for status, notify_id in (
        ("TRADE_SUCCESS", "m-1"),
        ("TRADE_SUCCESS", "m-1"),
        ("TRADE_CLOSED", "m-2"),
    ):
        answer = gateway.post(
            movement.notify_url, gateway.trade_params(movement, status, notify_id)
        )
        assert answer.text == "success"
    assert _count(ctx, LedgerTransaction) == transactions
    forged = gateway.post(
        movement.notify_url, gateway.trade_params(movement, "TRADE_CLOSED", "m-3"), key=new_key()
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_signature"
    with ctx.reading() as session:
        assert session.get_one(ProviderPayment, paid_now.id).status == "paid"

    # --- the payout: held above the four-eyes amount, released by two operators ----------------
    client = alipay_client(ctx)
    try:
        [held] = send_payouts(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, client)
        assert (held.claim_ref, held.status) == (ref, "held")
        release = f"{live_server.url}/api/v1/payments/payouts/{ref}/release"
        for phone in ("10000000201", "10000000202"):
            headers = _staff_token(live_server, staff_phone(ctx, Role.OPERATOR, phone))
            answer = httpx.post(release, headers=headers, timeout=20)
            assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "ready"
        [sent] = send_payouts(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, client)
        assert sent.status == "pending"
    finally:
        client.close()
    transfer = gateway.movements[out_reference(f"payout:{ref}")]
    params = gateway.transfer_params(transfer, "SUCCESS", "t-1")
    for _ in range(2):  # the notification, and the same one again
        assert gateway.post(transfer.notify_url, params).text == "success"
    with ctx.reading() as session:
        assert session.scalar(select(Claim.state).where(Claim.ref == ref)) == ClaimState.PAID
        payouts = session.scalars(
            select(LedgerTransaction.memo).where(LedgerTransaction.kind == "payout")
        ).all()
    assert len(payouts) == 1 and transfer.reference in payouts[0]
