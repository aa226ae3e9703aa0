"""Issue #13: every mutating route is rate limited per token and per address, state in the database."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from tests.api.calls import Api, next_phone
from tests.factories import PASSWORD

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.services.context import RateLimits, ServiceContext


def test_one_address_is_refused_with_retry_after_once_over_its_limit(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    ctx.rate_limits = RateLimits(window_s=60, per_token=100, per_address=3)
    client = TestClient(create_app(ctx))
    answers = [
        client.post("/api/v1/accounts", json={"phone": next_phone(), "password": PASSWORD})
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert answers[3].json()["error"]["code"] == "rate_limited"
    assert 0 < int(answers[3].headers["Retry-After"]) <= 60
    assert client.get("/api/v1/plans").status_code == 200  # reading is not limited
    clock.advance(timedelta(seconds=60))
    again = client.post("/api/v1/accounts", json={"phone": next_phone(), "password": PASSWORD})
    assert again.status_code == 201


def test_one_token_is_limited_from_any_address(ctx: ServiceContext) -> None:
    ctx.rate_limits = RateLimits(window_s=60, per_token=2, per_address=100)
    api = Api(TestClient(create_app(ctx)), ctx)
    headers = api.member()
    answers = [
        api.client.post("/api/v1/notifications/read?up_to_id=0", headers=headers) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [204, 204, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"


def test_two_app_instances_share_the_count(ctx: ServiceContext) -> None:
    """Like two server worker processes: the count lives in the database, not in memory."""
    ctx.rate_limits = RateLimits(window_s=60, per_token=100, per_address=2)
    first, second = TestClient(create_app(ctx)), TestClient(create_app(ctx))
    body = {"phone": next_phone(), "password": PASSWORD}
    assert first.post("/api/v1/accounts", json=body).status_code == 201
    assert second.post("/api/v1/accounts", json=body).status_code == 409
    assert first.post("/api/v1/accounts", json=body).json()["error"]["code"] == "rate_limited"
