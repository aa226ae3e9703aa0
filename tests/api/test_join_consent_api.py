"""Joining over the API carries consent to the plan rules (issue 17): refused without it, or
when the rules changed since they were read; a post-paid Alipay plan waits for the agreement."""

from __future__ import annotations

import pytest
from tests.api.calls import JOIN_PATH, Api, enrollment
from tests.factories import current_rules_sha256, use_rules

from mutualaid.services.context import ServiceContext

pytestmark = pytest.mark.usefixtures("plans")


def test_a_join_without_consent_is_refused_with_the_hash_to_agree_to(
    api: Api, ctx: ServiceContext
) -> None:
    body = enrollment()
    del body["rules_sha256"]
    response = api.client.post(JOIN_PATH, headers=api.member(), json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("consent_required", "rules_sha256")
    assert error["details"] == {"rules_sha256": current_rules_sha256(ctx), "version": 1}


def test_a_join_agreeing_to_old_rules_is_refused_as_changed(api: Api, ctx: ServiceContext) -> None:
    old = current_rules_sha256(ctx)
    use_rules(ctx, fee_bp=500)
    response = api.client.post(JOIN_PATH, headers=api.member(), json=enrollment(rules_sha256=old))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "rules_changed"
    assert error["details"] == {"rules_sha256": current_rules_sha256(ctx), "version": 2}
    agreed = enrollment(rules_sha256=error["details"]["rules_sha256"])
    assert api.client.post(JOIN_PATH, headers=api.member(), json=agreed).status_code == 201


def test_a_post_paid_alipay_plan_asks_for_the_debit_agreement_first(
    api: Api, ctx: ServiceContext
) -> None:
    use_rules(ctx, tables='\n[payments]\nprovider = "alipay"\n')
    body = enrollment(rules_sha256=current_rules_sha256(ctx))
    response = api.client.post(JOIN_PATH, headers=api.member(), json=body)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "debit_authorisation_required"
    assert error["details"]["sign_page"] == "/me/payments"
