"""API fixtures: the app over the test database (SQLite or PostgreSQL) and its demo plans."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.api.answered_statuses import AnsweredStatuses, RecordStatuses
from tests.api.calls import Api
from tests.factories import publish_demo_plans

from mutualaid.api.app import create_app
from mutualaid.services.context import ServiceContext


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    """The app, holding every answer it gives to its OpenAPI document: a status an operation
    answered in the test but does not document fails the test."""
    app = create_app(ctx)
    record = AnsweredStatuses()
    app.add_middleware(RecordStatuses, fastapi=app, record=record)
    app.openapi()  # built (and cached) now, not inside the test's first (maybe timed) request
    yield TestClient(app)
    undocumented = record.undocumented(app)
    assert not undocumented, f"answered but not in the OpenAPI document: {undocumented}"


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
