"""A real PostgreSQL streaming replica behind the public pages, reports and statements, and each
caller still reading their own writes (`make test-replica` starts the replica).

Replay on the replica is paused where a test must tell the two databases apart: what the
replica has not replayed is then missing from every answer it serves.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from tests.api.calls import Api
from tests.factories import account, publish_demo_plans

from mutualaid.api.app import create_app
from mutualaid.api.read_your_writes import SEEN_LSN_COOKIE
from mutualaid.clock import FixedClock
from mutualaid.db.engines import make_engine
from mutualaid.db.replica import current_wal_lsn
from mutualaid.domain.accounts import Role
from mutualaid.plan_files import read_plan_file
from mutualaid.services.context import ServiceContext, build_context
from mutualaid.services.plans.plans import list_plans
from mutualaid.settings import Settings

REPLICA_URL = os.environ.get("MUTUALAID_TEST_REPLICA_URL")
TOML_HEADERS = {"Content-Type": "application/toml"}
SECRET = secrets.token_urlsafe(48)

pytestmark = [
    pytest.mark.replica,
    pytest.mark.skipif(
        not REPLICA_URL, reason="MUTUALAID_TEST_REPLICA_URL names no replica (make test-replica)"
    ),
]


@pytest.fixture
def replica_server() -> Iterator[Engine]:
    """The replica's maintenance database, to pause and resume replay and to watch it."""
    assert REPLICA_URL
    server = create_engine(
        make_url(REPLICA_URL).set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        yield server
    finally:
        with server.connect() as connection:  # never leave a shared replica paused
            connection.execute(text("SELECT pg_wal_replay_resume()"))
        server.dispose()


def replayed(ctx: ServiceContext, replica_server: Engine, timeout_s: float = 20) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    lsn = current_wal_lsn(ctx.engine)
    deadline = time.monotonic() + timeout_s
    with replica_server.connect() as connection:
        while not connection.execute(
            text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"), {"lsn": lsn}
        ).scalar():
            assert time.monotonic() < deadline, f"the replica did not replay up to {lsn}"
            time.sleep(0.05)


@contextmanager
def replay_paused(replica_server: Engine) -> Iterator[None]:
    with replica_server.connect() as connection:
        connection.execute(text("SELECT pg_wal_replay_pause()"))
        while (
            connection.execute(text("SELECT pg_get_wal_replay_pause_state()")).scalar() != "paused"
        ):
            time.sleep(0.02)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_wal_replay_resume()"))


@pytest.fixture
def replica(ctx: ServiceContext, database_url: str, replica_server: Engine) -> Iterator[Engine]:
    """The test database as the replica serves it, set as the context's read replica."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the replica tests need MUTUALAID_TEST_DATABASE_URL (PostgreSQL)")
    assert REPLICA_URL
    replayed(ctx, replica_server)  # the test database exists there too
    engine = make_engine(
        make_url(REPLICA_URL).set(database=make_url(database_url).database).render_as_string(False)
    )
    ctx.replica = engine
    try:
        yield engine
    finally:
        ctx.replica = None
        engine.dispose()


def active_members(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.get("/api/v1/plans", headers=headers or {})
    assert response.status_code == 200, response.text
    return {p["plan"]["code"]: p["active_members"] for p in response.json()}


@pytest.mark.usefixtures("plans", "long_sessions")
def test_public_pages_and_reports_come_from_the_replica_once_it_has_replayed(
    ctx: ServiceContext, clock: FixedClock, replica: Engine, replica_server: Engine
) -> None:
    app = create_app(ctx)
    api = Api(TestClient(app), ctx)
    staff = Api(TestClient(app), ctx).staff(Role.OPERATOR)
    api.join(api.member())
    clock.advance(timedelta(days=1))
    replayed(ctx, replica_server)
    public = TestClient(app)
    staff_client = TestClient(app)
    report_before = staff_client.get("/api/v1/plans/xhb-main/reports", headers=staff).json()
    assert active_members(public)["xhb-main"] == 1

    with replay_paused(replica_server):
        api.join(api.member(), date(1985, 3, 1))
        # Read from the replica, which has not replayed the join: the public list, the public
        # plan page and the staff report (the staff did not write it) still show one member.
        assert active_members(public)["xhb-main"] == 1
        assert staff_client.get("/api/v1/plans/xhb-main/reports", headers=staff).json() == (
            report_before
        )
        # ...while the primary has it: the joining member's own reads go there (next test).
        primary_only = dataclasses.replace(ctx, replica=None)
        assert {p.plan.code: p.active_members for p in list_plans(primary_only)}["xhb-main"] == 2

    replayed(ctx, replica_server)
    assert active_members(public)["xhb-main"] == 2
    page = public.get("/plans/xhb-main")
    assert page.status_code == 200
    report_after = staff_client.get("/api/v1/plans/xhb-main/reports", headers=staff).json()
    assert report_after != report_before


@pytest.mark.usefixtures("plans", "long_sessions")
def test_a_caller_reads_their_own_write_while_the_replica_lags(
    ctx: ServiceContext, clock: FixedClock, replica: Engine, replica_server: Engine
) -> None:
    app = create_app(ctx)
    member_client, public = TestClient(app), TestClient(app)
    api = Api(member_client, ctx)
    member = api.member()
    membership = api.join(member)["id"]
    operator = Api(TestClient(app), ctx)
    operator_headers = operator.staff(Role.OPERATOR)
    clock.advance(timedelta(days=120))
    replayed(ctx, replica_server)

    with replay_paused(replica_server):
        filed = member_client.post(
            "/api/v1/claims",
            headers=member | {"Idempotency-Key": "replica-1"},
            json={
                "membership_id": membership,
                "illness_code": "CI01",
                "diagnosed_on": "2026-06-20",
                "hospital": "浙江省肿瘤医院",
            },
        )
        assert filed.status_code == 201, filed.text
        assert SEEN_LSN_COOKIE in filed.cookies
        # The member sees their claim at once.
        ref = filed.json()["ref"]
        seen = member_client.get(f"/api/v1/claims/{ref}", headers=member)
        assert seen.status_code == 200 and seen.json()["ref"] == ref

        # They join for a second person: that membership's statement (a replica read) is there
        # for them at once, though the replica has not replayed the join.
        second = api.join(member, date(1992, 2, 1), relation="spouse")["id"]
        statement = member_client.get(f"/api/v1/memberships/{second}/statement", headers=member)
        assert statement.status_code == 200, statement.text
        assert statement.json()["membership_id"] == second
        # A client without the cookie (the same member on another device) reads the replica.
        other_device = TestClient(app)
        assert (
            other_device.get(f"/api/v1/memberships/{second}/statement", headers=member).status_code
            == 404
        )

        # An operator publishes a new plan: they see it listed (their cookie names a position
        # the replica has not reached, so their reads go to the primary); the public does not
        # yet (the replica answers them).
        source = read_plan_file("xhb-main.toml").replace('code = "xhb-main"', 'code = "xhb-new"')
        published = operator.client.post(
            "/api/v1/plans", headers=operator_headers | TOML_HEADERS, content=source.encode()
        )
        assert published.status_code == 201, published.text
        assert "xhb-new" in active_members(operator.client)
        assert "xhb-new" not in active_members(public)

    replayed(ctx, replica_server)
    assert "xhb-new" in active_members(public)
    # Once replayed, the operator's reads go back to the replica (and still see their plan).
    assert "xhb-new" in active_members(operator.client)


def test_without_a_replica_setting_every_read_goes_to_the_primary(database_url: str) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET)
    assert build_context(settings).replica is None


def test_a_command_reads_from_the_primary_after_its_own_commit(
    ctx: ServiceContext, database_url: str, replica: Engine, replica_server: Engine
) -> None:
    """Outside a request (the CLI, the worker) a context that has committed reads the primary."""
    settings = Settings(
        database_url=database_url,
        read_database_url=replica.url.render_as_string(hide_password=False),
        secret_key=SECRET,
    )
    command_ctx = build_context(settings, ctx.clock)

    def command() -> tuple[set[str], set[str]]:
        publish_demo_plans(ctx)  # another context's write: this one has not written
        before = {p.plan.code for p in list_plans(command_ctx)}
        account(command_ctx)  # this context commits
        return before, {p.plan.code for p in list_plans(command_ctx)}

    try:
        with replay_paused(replica_server):
            # A context of its own, as a command's process starts with.
            before, after = contextvars.Context().run(command)
        assert before == set()  # from the replica, which has not replayed the plans
        assert after == {"xhb-main", "xhb-elderly-cancer"}  # from the primary
    finally:
        command_ctx.engine.dispose()
        assert command_ctx.replica is not None
        command_ctx.replica.dispose()
