"""My payments over the API (issue 17): my debits and unpaid shares, and paying one now, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.api.calls import Api, next_phone
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    account,
    approved_claim,
    close_on,
    join_at,
    members,
    use_rules,
)

from mutualaid.clock import FixedClock
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext

pytestmark = pytest.mark.usefixtures("plans")

JOINED = datetime(2025, 6, 1, tzinfo=UTC)


def test_an_unpaid_share_is_paid_now_once(api: Api, ctx: ServiceContext, clock: FixedClock) -> None:
    use_rules(ctx)
    phone = next_phone()
    holder, membership = join_at(ctx, clock, JOINED, account(ctx, phone=phone))
    [(_, other)] = members(ctx, clock, 1)
    approved_claim(ctx, other.id, 300, LOCK_MARCH_7 - timedelta(days=1))
    close_on(ctx, clock, MARCH_7)
    clock.set(datetime(2026, 3, 14, 2, tzinfo=UTC))
    failing = SimulatedProvider(failing={holder.account_id})
    collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, failing)
    headers = api.log_in(phone)

    mine = api.client.get("/api/v1/payments/mine", headers=headers)
    assert mine.status_code == 200, mine.text
    [unpaid] = mine.json()["unpaid"]
    assert unpaid["membership_id"] == membership.id and unpaid["amount_fen"] > 0
    path = f"/api/v1/payments/shares/{unpaid['failure_id']}/pay"
    paid = api.client.post(path, headers=headers | {"Idempotency-Key": "pay-1"})
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"failure_id": unpaid["failure_id"], "amount_fen": unpaid["amount_fen"]}
    assert api.client.get("/api/v1/payments/mine", headers=headers).json()["unpaid"] == []
    again = api.client.post(path, headers=headers | {"Idempotency-Key": "pay-2"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "nothing_to_pay"


def test_nothing_to_pay_for_a_share_that_is_not_there(api: Api) -> None:
    answer = api.client.post("/api/v1/payments/shares/999999/pay", headers=api.member())
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "nothing_to_pay"
