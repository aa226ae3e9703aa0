"""An illness reported in the waiting period (issue 19): the claim is closed at filing, the
membership ends, and staff list the refunds the provider has to pay back."""

from __future__ import annotations

from datetime import date

import pytest
from tests.api.calls import Api

from mutualaid.domain.accounts import Role

pytestmark = pytest.mark.usefixtures("plans")


def test_an_illness_in_the_waiting_period_closes_the_claim_and_ends_the_membership(
    api: Api,
) -> None:
    headers = api.member()
    membership = api.join(headers, date(1990, 5, 1))

    filed = api.client.post(
        "/api/v1/claims",
        headers=headers,
        json={
            "membership_id": membership["id"],
            "illness_code": "CI02",
            "diagnosed_on": "2026-03-01",
            "hospital": "浙江省人民医院",
        },
    )

    assert filed.status_code == 201, filed.text
    body = filed.json()
    assert (body["state"], body["payout_fen"], body["decision_reason"]) == (
        "closed_rejected",
        0,
        "waiting_period",
    )
    ended = api.client.get(f"/api/v1/memberships/{membership['id']}", headers=headers).json()
    assert (ended["state"], ended["end_reason"]) == ("ended", "waiting_illness")
    operator = api.staff(Role.OPERATOR)
    due = api.client.get("/api/v1/payments/plans/xhb-main/refunds", headers=operator)
    assert (due.status_code, due.json()) == (200, [])  # no share was paid yet


def test_only_staff_see_refunds_and_an_unknown_refund_is_not_found(api: Api) -> None:
    member = api.client.get("/api/v1/payments/plans/xhb-main/refunds", headers=api.member())
    assert member.status_code == 403
    unknown = api.client.post(
        "/api/v1/payments/refunds/999/paid",
        headers=api.staff(Role.OPERATOR) | {"Idempotency-Key": "r1"},
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "refund_not_found")
