"""Periods over HTTP: an operator closes, collects by file and pays; the public reads the notice;
a member reads their statement and checks their charge proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from tests.api.calls import Api
from tests.factories import LOCK_MARCH_7, TEST_LOG_KEY, TEST_TRUST, approved_claim, use_rules

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.transparency.charge_proofs import parse_charge_proof, verify_charge_proof

PERIOD = "/api/v1/plans/xhb-main/periods/2026-03-07"


def test_an_operator_closes_collects_and_pays_and_everyone_can_check_the_numbers(
    api: Api, client: TestClient, ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rules(ctx)
    member = api.member()
    others = [api.member() for _ in range(3)]
    membership = api.join(member)["id"]
    joined = [api.join(h)["id"] for h in others]
    approved_claim(ctx, joined[0], 1000, LOCK_MARCH_7 - timedelta(days=1))
    operator = api.staff()
    clock.set(datetime(2026, 3, 7, 1, tzinfo=UTC))

    assert client.post("/api/v1/plans/xhb-main/periods", headers=member, json={}).status_code == 403
    closed = client.post(
        "/api/v1/plans/xhb-main/periods",
        headers=operator,
        json={"on": "2026-03-07", "cap_excess": "sponsor"},
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["member_count"], closed.json()["share_fen"]) == (4, 270)
    again = client.post(
        "/api/v1/plans/xhb-main/periods", headers=operator, json={"on": "2026-03-07"}
    )
    assert again.json() == closed.json()

    notice = client.get(PERIOD)
    assert notice.status_code == 200
    body = notice.json()
    assert [c["payout_fen"] for c in body["cases"]] == [1000]
    assert all(check["holds"] for check in body["checks"])
    assert body["period"]["charges_root"] in body["commitment_leaf"]
    assert client.get("/api/v1/plans/xhb-main/periods").json()[0]["state"] == "committed"

    params = {"membership_id": membership}
    early = client.get(f"{PERIOD}/charge-proof", params=params, headers=member)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "commitment_not_yet_checkpointed"
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    proof = client.get(f"{PERIOD}/charge-proof", params=params, headers=member)
    assert proof.status_code == 200, proof.text
    assert proof.headers["content-type"] == "application/json"
    assert f"-{membership}.json" in proof.headers["content-disposition"]
    report = verify_charge_proof(parse_charge_proof(proof.content), TEST_TRUST)
    assert report.checks[-1].passed
    assert (
        client.get(
            f"{PERIOD}/charge-proof", params={"membership_id": membership}, headers=others[0]
        ).status_code
        == 404
    )

    clock.set(clock.now() + timedelta(days=7))
    exported = client.get(f"{PERIOD}/collection-file", headers=operator)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert len(lines) == 5 and lines[0] == "membership_id,payer_account_id,amount_fen,reference"
    results = f"membership_id,status\n{joined[2]},failed\n"
    imported = client.post(f"{PERIOD}/collection-results", headers=operator, content=results)
    assert imported.status_code == 200, imported.text
    assert (imported.json()["collected_fen"], imported.json()["failed_fen"]) == (810, 270)
    assert (
        client.post(f"{PERIOD}/collection-results", headers=operator, content=results).status_code
        == 409
    )

    paid = client.post(f"{PERIOD}/payouts", headers=operator)
    assert paid.status_code == 200, paid.text
    assert [p["amount_fen"] for p in paid.json()["payouts"]] == [1000]

    statement = client.get(f"/api/v1/memberships/{membership}/statement", headers=member)
    assert statement.status_code == 200
    assert [(line["charge_fen"], line["status"]) for line in statement.json()["lines"]] in (
        [(270, "paid")],
        [(270, "unpaid")],
    )
    assert client.get("/api/v1/statements", headers=member).json()[0]["membership_id"] == membership
    assert (
        client.get(f"/api/v1/memberships/{membership}/statement", headers=others[1]).status_code
        == 404
    )

    ledger = client.get("/api/v1/ledger/balances", headers=operator)
    assert ledger.status_code == 200 and ledger.json()["total_fen"] == 0
    assert client.get("/api/v1/ledger/balances", headers=member).status_code == 403


def test_a_prepaid_member_tops_up_once_per_key(
    api: Api, client: TestClient, ctx: ServiceContext
) -> None:
    use_rules(ctx, funding_model="prepaid")
    member = api.member()
    url = "/api/v1/plans/xhb-main/prepaid/top-ups"
    first = client.post(url, headers=member | {"Idempotency-Key": "k1"}, json={"amount_fen": 1000})
    assert first.status_code == 201, first.text
    second = client.post(url, headers=member | {"Idempotency-Key": "k1"}, json={"amount_fen": 1000})
    assert second.json() == first.json() == {"plan_code": "xhb-main", "balance_fen": 1000}
    assert (
        client.get("/api/v1/plans/xhb-main/prepaid", headers=member).json()["balance_fen"] == 1000
    )
    assert client.post(url, headers=member, json={"amount_fen": 0}).status_code == 422


def test_the_notice_of_an_unknown_period_is_a_clean_404(
    client: TestClient, ctx: ServiceContext
) -> None:
    use_rules(ctx)
    response = client.get(PERIOD)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "period_not_found"
