"""The payout desk (/staff/payouts): release with a confirmation showing the amount, a second
operator above the four-eyes amount, send and resend through the plan's provider, each refusal
shown in the reader's language; the claimant sees each transfer on their claim page."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.factories import account, collected_payout, use_rules
from tests.web.conftest import Browser, csrf, phone_of, staff_browser

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.payout_desk import release_for_payment, send_transfer
from mutualaid.services.payments.transfers import SimulatedTransfers

FOUR_EYES = '\n[payments]\nprovider = "simulated"\nfour_eyes_above_fen = 500\n'
DESK = "/staff/payouts?plan=xhb-main"


def _post(browser: Browser, page: str, action: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return browser.submit(page, action, data or {})


def test_a_large_payout_is_released_by_two_operators_then_sent(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    use_rules(ctx, tables=FOUR_EYES)
    ref = collected_payout(ctx, clock)
    first, _ = staff_browser(ctx, client, Role.OPERATOR)
    desk = first.get(DESK).text
    assert ref in desk and "待放行" in desk and f'href="/staff/payouts/{ref}/release"' in desk
    confirm_page = first.get(f"/staff/payouts/{ref}/release").text
    assert 'id="release-amount"' in confirm_page and "还须另一位操作员放行此付款" in confirm_page
    unconfirmed = _post(first, f"/staff/payouts/{ref}/release", f"/staff/payouts/{ref}/release")
    assert unconfirmed.status_code == 422
    done = _post(first, DESK, f"/staff/payouts/{ref}/release", {"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == DESK + "&ok=payout_held"
    page = first.get(done.headers["location"]).text
    assert "您的放行已记录" in page and "须由另一位操作员放行" in page
    again = _post(first, DESK, f"/staff/payouts/{ref}/release", {"confirm": "yes"})
    assert again.status_code == 422
    second, _ = staff_browser(ctx, client, Role.OPERATOR)
    released = _post(second, DESK, f"/staff/payouts/{ref}/release", {"confirm": "yes"})
    assert released.headers["location"].endswith("ok=payout_released")
    assert f'action="/staff/payouts/{ref}/send"' in second.get(DESK).text
    sent = _post(second, DESK, f"/staff/payouts/{ref}/send")
    assert sent.status_code == 303 and sent.headers["location"].endswith("ok=transfer_settled")
    assert "转账已发出并到账" in second.get(sent.headers["location"]).text
    english = second.get(DESK + "&lang=en").text
    assert "settled" in english and "Payouts" in english  # the simulated provider settles at once


def test_sending_before_release_and_resending_what_did_not_fail_are_refused(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    ref = collected_payout(ctx, clock)
    operator, _ = staff_browser(ctx, client, Role.OPERATOR)
    early = _post(operator, DESK, f"/staff/payouts/{ref}/send")
    assert early.status_code == 422 and "该付款尚不能发放" in early.text
    _post(operator, DESK, f"/staff/payouts/{ref}/release", {"confirm": "yes"})
    not_failed = _post(operator, DESK + "&lang=en", f"/staff/payouts/{ref}/resend")
    assert not_failed.status_code == 422
    assert "this payout has no failed transfer to send again" in not_failed.text


def test_a_failed_transfer_is_resent_and_the_claimant_sees_each_transfer(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    ref = collected_payout(ctx, clock)
    claimant = _claimant(ctx, ref)
    operator = account(ctx, Role.OPERATOR)
    release_for_payment(ctx, operator, ref)
    failing = SimulatedTransfers(failing=frozenset({f"account:{claimant}"}))
    assert send_transfer(ctx, operator, ref, failing).status == "failed"
    desk, _ = staff_browser(ctx, client, Role.OPERATOR)
    assert f'action="/staff/payouts/{ref}/resend"' in desk.get(DESK).text
    resent = _post(desk, DESK, f"/staff/payouts/{ref}/resend")
    assert resent.status_code == 303 and resent.headers["location"].endswith("ok=transfer_settled")
    assert "共2次" in desk.get(DESK).text

    member = Browser(TestClient(client.app, base_url="http://localhost"))
    member.log_in(phone_of(ctx, claimant))
    page = member.get(f"/claims/{ref}").text
    assert 'id="transfers"' in page and "失败，工作人员将重新发送" in page and "已到账" in page
    assert "3月14日" in page  # the day, in the plan's zone
    english = member.get(f"/claims/{ref}?lang=en").text
    assert "Payout transfers" in english and "failed, staff will send it again" in english


def test_the_desk_is_for_operators_and_auditors_only_operators_act(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    ref = collected_payout(ctx, clock)
    auditor, _ = staff_browser(ctx, client, Role.AUDITOR)
    page = auditor.get(DESK).text
    assert ref in page and f'href="/staff/payouts/{ref}/release"' not in page
    refused = auditor.client.post(
        f"/staff/payouts/{ref}/release", data={"csrf_token": csrf(page), "confirm": "yes"}
    )
    assert refused.status_code == 403
    reviewer, _ = staff_browser(ctx, client, Role.REVIEWER)
    assert reviewer.get(DESK).status_code == 403


def _claimant(ctx: ServiceContext, ref: str) -> int:
    from sqlalchemy import select

    from mutualaid.db.models import Claim

    with ctx.reading() as session:
        account_id = session.scalar(select(Claim.claimant_account_id).where(Claim.ref == ref))
    assert account_id is not None
    return int(account_id)
