"""Issue #16: one structured line per request, a request id that follows the request into the
services' log lines, and no personal data or secret in any line of a whole claim's flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from tests.api.calls import PASSWORD, Api, bearer, enrollment, next_phone
from tests.factories import staff_code

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.logging import configure_logging
from mutualaid.services.context import ServiceContext


@pytest.fixture
def json_logs() -> Iterator[None]:
    """The production logging, undone afterwards. Configured by the test itself (`configure`):
    stderr is the test's captured stream only once the test runs, and closes with it."""
    yield
    structlog.reset_defaults()


def configure() -> None:
    configure_logging("INFO", json=True)


def logged_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    captured = capsys.readouterr()
    return [
        json.loads(line)
        for line in (captured.err + captured.out).splitlines()
        if line.startswith("{")
    ]


def test_each_request_logs_one_line_with_its_route_status_and_request_id(
    ctx: ServiceContext, plans: None, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure()
    app = create_app(ctx)

    @app.get("/api/v1/test-service-log/{ref}")
    def service_log(ref: str) -> dict[str, str]:
        # As a service would, in the worker thread the route runs in.
        structlog.get_logger().info("service_step", step="looked up")
        return {"ref": ref}

    @app.get("/api/v1/test-failure")
    def fail() -> None:
        raise RuntimeError("a bug")

    client = TestClient(app, raise_server_exceptions=False)
    logged_lines(capsys)
    own = client.get("/api/v1/test-service-log/C-123", headers={"X-Request-ID": "req-0123456789"})
    fresh = client.get("/api/v1/plans/xhb-main")
    insane = client.get("/api/v1/plans/xhb-main", headers={"X-Request-ID": "a b\tc" * 50})
    refused = client.post("/api/v1/accounts", content=b"x" * (2 * 1024 * 1024))
    failed = client.get("/api/v1/test-failure", headers={"X-Request-ID": "req-failing-1"})
    nul = client.get("/api/v1/plans/xhb%00main")
    unknown = client.get("/api/v1/no-such-thing/123")

    assert own.headers["X-Request-ID"] == "req-0123456789"
    assert len(fresh.headers["X-Request-ID"]) == 32
    assert insane.headers["X-Request-ID"] not in ("a b\tc" * 50, fresh.headers["X-Request-ID"])
    assert refused.status_code == 413 and refused.headers["X-Request-ID"]
    assert failed.status_code == 500 and failed.headers["X-Request-ID"] == "req-failing-1"
    assert nul.status_code == 422 and unknown.status_code == 404
    lines = logged_lines(capsys)
    requests = [line for line in lines if line["event"] == "request"]
    assert [
        (line["method"], line["route"], line["status"], line["request_id"], line["level"])
        for line in requests
    ] == [
        ("GET", "/api/v1/test-service-log/{ref}", 200, "req-0123456789", "info"),
        ("GET", "/api/v1/plans/{plan_code}", 200, fresh.headers["X-Request-ID"], "info"),
        ("GET", "/api/v1/plans/{plan_code}", 200, insane.headers["X-Request-ID"], "info"),
        # Refused before routing: labelled with the route the request was meant for.
        ("POST", "/api/v1/accounts", 413, refused.headers["X-Request-ID"], "info"),
        ("GET", "/api/v1/test-failure", 500, "req-failing-1", "info"),
        ("GET", "/api/v1/plans/{plan_code}", 422, nul.headers["X-Request-ID"], "info"),
        # No route matches: one label for every unknown path (never the raw path).
        ("GET", "unrouted", 404, unknown.headers["X-Request-ID"], "info"),
    ]
    assert all(isinstance(line["duration_ms"], float) for line in requests)
    (step,) = [line for line in lines if line["event"] == "service_step"]
    assert step["request_id"] == "req-0123456789"
    (error,) = [line for line in lines if line["event"] == "unhandled_error"]
    assert error["request_id"] == "req-failing-1"


def test_a_whole_claim_flow_logs_no_phone_id_number_password_token_or_evidence(
    ctx: ServiceContext,
    plans: None,
    clock: FixedClock,
    json_logs: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure()
    ctx.token_ttl_hours = 24 * 365
    client = TestClient(create_app(ctx))
    api = Api(client, ctx)
    phone, password = next_phone(), "Zq8-unique-pa55word-for-logs"
    body = enrollment(date(1987, 3, 4), full_name="欧阳明月")
    evidence = b"%PDF-1.7\nEVIDENCE-CONTENT-7f3a9c " * 200

    assert (
        client.post("/api/v1/accounts", json={"phone": phone, "password": password}).status_code
        == 201
    )
    wrong = client.post("/api/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert wrong.status_code == 401
    session = client.post("/api/v1/sessions", json={"phone": phone, "password": password})
    token = session.json()["token"]
    member = bearer(token)
    joined = client.post("/api/v1/plans/xhb-main/memberships", headers=member, json=body)
    assert joined.status_code == 201, joined.text
    clock.advance(timedelta(days=120))
    filed = client.post(
        "/api/v1/claims",
        headers=member | {"Idempotency-Key": "claim-1"},
        json={
            "membership_id": joined.json()["id"],
            "illness_code": "CI01",
            "diagnosed_on": "2026-06-20",
            "hospital": "浙江省肿瘤医院",
        },
    )
    assert filed.status_code == 201, filed.text
    ref = filed.json()["ref"]
    uploaded = client.post(
        f"/api/v1/claims/{ref}/evidence",
        headers=member,
        files={"file": ("diagnosis.pdf", evidence, "application/pdf")},
        data={"label": "diagnosis certificate"},
    )
    assert uploaded.status_code == 201, uploaded.text
    reviewer = api.staff(Role.REVIEWER)
    assert client.post(f"/api/v1/claims/{ref}/review", headers=reviewer).status_code == 200
    opened = client.get(f"/api/v1/claims/{ref}/evidence/{uploaded.json()['id']}", headers=reviewer)
    assert opened.status_code == 200 and opened.content == evidence
    assert client.get("/api/v1/me", headers=member).json()["phone"].endswith(phone[-4:])
    assert client.delete("/api/v1/sessions/current", headers=member).status_code == 204

    captured = capsys.readouterr()
    logged = captured.err + captured.out + caplog.text
    assert logged.count('"event": "request"') >= 10  # the flow was logged, line by line
    for secret in (
        phone,
        body["id_number"],
        body["full_name"],
        password,
        PASSWORD,
        token,
        staff_code(ctx),
        "EVIDENCE-CONTENT-7f3a9c",
    ):
        assert secret not in logged, secret
