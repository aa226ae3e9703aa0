"""API fixtures: the app over the test database (SQLite or PostgreSQL) and its demo plans."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.api.calls import Api
from tests.factories import publish_demo_plans

from mutualaid.api.app import create_app
from mutualaid.services.context import ServiceContext


@pytest.fixture
def client(ctx: ServiceContext) -> TestClient:
    return TestClient(create_app(ctx))


@pytest.fixture
def api(client: TestClient, ctx: ServiceContext) -> Api:
    return Api(client, ctx)


@pytest.fixture
def plans(ctx: ServiceContext) -> None:
    """The shipped demo plans (xhb-main, xhb-elderly-cancer), published as version 1."""
    publish_demo_plans(ctx)


@pytest.fixture
def long_sessions(ctx: ServiceContext) -> None:
    """Tokens that outlive the months a test moves the clock by (they normally last 30 days)."""
    ctx.token_ttl_hours = 24 * 365
