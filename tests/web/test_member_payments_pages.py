"""My payments page (issue 17): consent on the join form, paying an unpaid share now, topping up a
prepaid plan, each refusal in words, and redirect-after-post."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from tests.factories import (
    HEALTHY,
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    approved_claim,
    close_on,
    demo_rules_sha256,
    members,
    resident_id,
    use_rules,
)
from tests.web.conftest import Browser, phone_of

from mutualaid.clock import FixedClock
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext

DEBIT_DAY = datetime(2026, 3, 14, 2, tzinfo=UTC)


def _join_form(consent: bool) -> dict[str, str]:
    form = {
        "relation": "self",
        "full_name": "张三华",
        "id_number": resident_id(date(1990, 5, 1)),
        "rules_sha256": demo_rules_sha256(),
    }
    if consent:
        form["consent"] = "yes"
    for code in HEALTHY:
        form[f"health_answers.{code}"] = "no"
    return form


def test_the_join_form_shows_the_rules_and_needs_the_box_ticked(member_browser: Browser) -> None:
    page = member_browser.get("/plans/xhb-main/join?lang=en").text
    assert demo_rules_sha256() in page and 'name="consent"' in page
    refused = member_browser.submit(
        "/plans/xhb-main/join", "/plans/xhb-main/join?lang=en", _join_form(consent=False)
    )
    assert refused.status_code == 422
    assert "read the plan rules and agree to them before joining" in refused.text
    joined = member_browser.submit(
        "/plans/xhb-main/join", "/plans/xhb-main/join", _join_form(consent=True)
    )
    assert joined.headers["location"] == "/me?ok=enrolled"


def test_a_failed_share_is_paid_now_from_my_payments_once(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    use_rules(ctx)
    people = members(ctx, clock, 2)
    approved_claim(ctx, people[0][1].id, 300, LOCK_MARCH_7 - timedelta(days=1))
    close_on(ctx, clock, MARCH_7)
    holder = people[1][0]
    clock.set(DEBIT_DAY)
    collect_period(
        ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, SimulatedProvider(failing={holder.account_id})
    )
    browser = Browser(client)
    browser.log_in(phone_of(ctx, holder.account_id))
    page = browser.get("/me/payments?lang=en").text
    assert "Unpaid shares" in page
    action = page.split('action="/me/payments/shares/')[1].split('"')[0]
    paid = browser.submit("/me/payments", f"/me/payments/shares/{action}", {})
    assert (paid.status_code, paid.headers["location"]) == (303, "/me/payments?ok=share_paid")
    assert "Unpaid shares" not in browser.get("/me/payments?lang=en").text
    again = browser.submit("/me/payments", f"/me/payments/shares/{action}?lang=en", {})
    assert again.status_code == 422
    assert "there is no failed share to pay" in again.text


def test_a_prepaid_plan_is_topped_up_from_my_payments(
    ctx: ServiceContext, member_browser: Browser
) -> None:
    use_rules(ctx, funding_model="prepaid")
    page = member_browser.get("/me/payments?lang=en").text
    assert 'action="/me/payments/top-up"' in page
    form = {"plan_code": MAIN_PLAN, "amount": "0.10"}
    refused = member_browser.submit("/me/payments", "/me/payments/top-up?lang=en", form)
    assert refused.status_code == 422
    assert "a top-up must be between 1.00 and 100,000.00 yuan" in refused.text
    done = member_browser.submit("/me/payments", "/me/payments/top-up", form | {"amount": "200"})
    assert done.headers["location"] == "/me/payments?ok=topped_up"
    assert "¥200.00" in member_browser.get("/me/payments").text
