"""Issue #13: every mutating route is rate limited per token and per address, state in the database."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text
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


def test_with_both_request_limits_off_nothing_is_counted(ctx: ServiceContext) -> None:
    """The middleware then skips its count (and its hop to the thread pool): no counter row is
    written, the token limit off means off even for one token, and a limit set again applies."""
    ctx.rate_limits = RateLimits(window_s=60, per_token=0, per_address=0)
    api = Api(TestClient(create_app(ctx)), ctx)
    headers = api.member()  # its registration is counted (a limit of its own)
    counted = text("SELECT coalesce(sum(hits), 0) FROM rate_counters")
    with ctx.reading() as session:
        before = session.scalar(counted)
    answers = [
        api.client.post("/api/v1/notifications/read?up_to_id=0", headers=headers) for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [204] * 5
    with ctx.reading() as session:
        assert session.scalar(counted) == before
    ctx.rate_limits = RateLimits(window_s=60, per_token=1, per_address=0)
    answers = [
        api.client.post("/api/v1/notifications/read?up_to_id=0", headers=headers) for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [204, 429]


def test_two_app_instances_share_the_count(ctx: ServiceContext) -> None:
    """Like two server worker processes: the count lives in the database, not in memory."""
    ctx.rate_limits = RateLimits(window_s=60, per_token=100, per_address=2)
    first, second = TestClient(create_app(ctx)), TestClient(create_app(ctx))
    body = {"phone": next_phone(), "password": PASSWORD}
    assert first.post("/api/v1/accounts", json=body).status_code == 201
    assert second.post("/api/v1/accounts", json=body).status_code == 409
    assert first.post("/api/v1/accounts", json=body).json()["error"]["code"] == "rate_limited"


def test_guessing_an_imported_members_invitation_code_stops_after_five_tries_an_hour(
    ctx: ServiceContext, clock: FixedClock, plans: None
) -> None:
    from tests.factories import imported_member

    phone = "13900000077"
    code = imported_member(ctx, phone)
    client = TestClient(create_app(ctx))
    guesses = [
        client.post(
            "/api/v1/accounts",
            json={"phone": phone, "password": PASSWORD, "invitation": f"WRONG-{i}"},
        )
        for i in range(6)
    ]
    assert [g.status_code for g in guesses[:5]] == [403] * 5
    assert guesses[5].status_code == 429
    assert guesses[5].json()["error"]["code"] == "registration_rate_limited"
    assert guesses[5].json()["error"]["field"] == "phone"
    assert 0 < int(guesses[5].headers["Retry-After"]) <= 3600
    # Even the right code waits out the hour: the limit counts attempts, not failures.
    right = {"phone": phone, "password": PASSWORD, "invitation": code}
    assert client.post("/api/v1/accounts", json=right).status_code == 429
    clock.advance(timedelta(hours=1))
    assert client.post("/api/v1/accounts", json=right).status_code in (201, 403)


def test_one_address_registers_at_most_twenty_accounts_an_hour(ctx: ServiceContext) -> None:
    client = TestClient(create_app(ctx))
    answers = [
        client.post("/api/v1/accounts", json={"phone": next_phone(), "password": PASSWORD})
        for _ in range(21)
    ]
    assert [a.status_code for a in answers] == [201] * 20 + [429]
    assert answers[20].json()["error"]["code"] == "registration_rate_limited"


def test_expired_counters_are_pruned(ctx: ServiceContext, clock: FixedClock) -> None:
    from sqlalchemy import func, select, text

    from mutualaid.services.accounts.rate_limits import prune_rate_counters

    client = TestClient(create_app(ctx))
    client.post(
        "/api/v1/accounts",
        json={"phone": next_phone(), "password": PASSWORD, "send_code": False},
    )

    def counters() -> int:
        with ctx.reading() as session:
            return session.scalar(select(func.count()).select_from(text("rate_counters"))) or 0

    assert counters() == 3  # the request per address; the registration per phone and address
    assert prune_rate_counters(ctx) == 0
    clock.advance(timedelta(hours=3))
    assert prune_rate_counters(ctx) == 3
    assert counters() == 0
