"""Security #13 finding 12: refusals do not say whether another person's record exists."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from tests.factories import PASSWORD, covered_member, publish_demo_plans

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.db.models import Account
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.context import ServiceContext


def headers_of(client: TestClient, ctx: ServiceContext, actor: Actor) -> dict[str, str]:
    with ctx.reading() as session:
        found = session.get(Account, actor.account_id)
        assert found is not None
        phone = found.phone
    response = client.post("/api/v1/sessions", json={"phone": phone, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_an_objection_answers_alike_for_a_hidden_claim_and_no_claim(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    client = TestClient(create_app(ctx))
    holder, membership = covered_member(ctx, clock)
    hidden = report_claim(
        ctx, holder, ClaimReport(membership.id, "CI01", date(2026, 2, 27), "四川省人民医院")
    )
    stranger, _ = covered_member(ctx, clock)
    headers = headers_of(client, ctx, stranger)
    reason = {"reason": "the diagnosis date looks wrong to me"}
    answers = [
        client.post(f"/api/v1/claims/{ref}/objections", headers=headers, json=reason)
        for ref in (hidden.ref, "C-NO-SUCH-CLAIM")
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert [a.json()["error"]["code"] for a in answers] == ["publicity_closed"] * 2
    assert answers[0].json()["error"]["message"] == answers[1].json()["error"]["message"]
