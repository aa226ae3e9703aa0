"""Issue #13: what a hostile or careless client sends is refused with a 4xx, never a 500; refusals
come before any work; no secret reaches the log; every response carries the security headers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import structlog
from fastapi.testclient import TestClient
from tests.api.calls import PASSWORD, Api, enrollment, next_phone

from mutualaid.api.app import create_app
from mutualaid.logging import configure_logging
from mutualaid.services.context import ServiceContext

TOO_BIG = 2**63  # one past the largest 64-bit integer
SECRET_PASSWORD = "Sup3r-secret-pa55word"


@pytest.fixture
def plain(ctx: ServiceContext) -> TestClient:
    """A client that sees the 500 a server would answer instead of the exception."""
    return TestClient(create_app(ctx), raise_server_exceptions=False)


@pytest.fixture
def server_logging() -> Iterator[None]:
    """The server's logging, writing to this test's captured stderr, undone afterwards (the
    captured stream closes with the test)."""
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("json_mode", [False, True], ids=["console", "json"])
def test_no_password_or_id_number_reaches_the_log(
    ctx: ServiceContext,
    plans: None,
    capsys: pytest.CaptureFixture[str],
    server_logging: None,
    json_mode: bool,
) -> None:
    configure_logging("INFO", json=json_mode)
    app = create_app(ctx)

    @app.post("/api/v1/test-failure")
    def fail() -> None:
        password = SECRET_PASSWORD  # a local of a failing frame, as in the register path
        raise RuntimeError(f"failed after hashing {len(password)} characters")

    client = TestClient(app, raise_server_exceptions=False)
    api = Api(client, ctx)
    id_number = enrollment()["id_number"]

    answers = [
        client.post(
            "/api/v1/accounts",
            json={"phone": next_phone(), "password": SECRET_PASSWORD, "display_name": "a\x00b"},
        ),
        client.post(
            "/api/v1/plans/xhb-main/memberships",
            headers=api.member(),
            json=enrollment(full_name="张\x00三", id_number=id_number),
        ),
        client.post("/api/v1/test-failure"),
    ]

    assert [answer.status_code for answer in answers] == [422, 422, 500]
    assert answers[0].json()["error"]["code"] == "invalid_request"
    logged = capsys.readouterr().err
    # The exception and where it happened are still there, in both modes; only values are not.
    assert "unhandled_error" in logged and "RuntimeError" in logged
    assert "test_hardening_api.py" in logged
    for secret in (SECRET_PASSWORD, id_number, PASSWORD):
        assert secret not in logged


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", f"/api/v1/memberships/{TOO_BIG}", None),
        ("get", f"/api/v1/juries/{TOO_BIG}/case-file", None),
        ("post", f"/api/v1/juries/{TOO_BIG}/votes", {"vote": "approve", "reason": "x" * 20}),
        ("post", f"/api/v1/fraud-records/{TOO_BIG}/appeal", {"reason": "x" * 20}),
        ("post", f"/api/v1/fraud-appeals/{TOO_BIG}/decision", {"uphold": True, "reason": "x"}),
        ("get", f"/api/v1/notifications?after_id={TOO_BIG}", None),
        ("post", f"/api/v1/notifications/read?up_to_id={TOO_BIG}", None),
        ("post", "/api/v1/claims", {"membership_id": TOO_BIG}),
        ("get", f"/api/v1/log/leaves?start={10**20}", None),
        ("get", "/api/v1/plans/xhb-%00main", None),
    ],
)
def test_out_of_range_integers_and_nul_bytes_are_refused_not_500(
    plain: TestClient, ctx: ServiceContext, plans: None, method: str, path: str, body: object
) -> None:
    headers = Api(plain, ctx).staff()

    response = plain.request(method, path, headers=headers, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_an_inclusion_proof_on_an_empty_log_is_refused(plain: TestClient) -> None:
    response = plain.get("/api/v1/log/proofs/inclusion?index=0&size=1")

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "size_beyond_log"


def test_a_deeply_nested_plan_is_refused_quickly(api: Api, plans: None) -> None:
    nested = "x = " + "[" * 100_000 + "]" * 100_000 + "\n"
    started = time.monotonic()

    response = api.client.post(
        "/api/v1/plans",
        headers={**api.staff(), "Content-Type": "application/toml"},
        content=nested.encode(),
    )

    assert time.monotonic() - started < 2
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_plan"


def _chunks(total: int) -> Iterator[bytes]:
    block = b"x" * (1024 * 1024)
    for _ in range(total // len(block)):
        yield block


@pytest.mark.parametrize(
    ("path", "megabytes"),
    [("/api/v1/claims/X/evidence", 30), ("/login", 5), ("/api/v1/sessions", 5)],
)
def test_an_oversized_body_is_refused_before_it_is_read(
    api: Api, path: str, megabytes: int
) -> None:
    declared = api.client.post(
        path, content=b"x" * (megabytes * 1024 * 1024), headers={"Content-Type": "text/plain"}
    )
    streamed = api.client.post(
        path, content=_chunks(megabytes * 1024 * 1024), headers={"Content-Type": "text/plain"}
    )

    assert declared.status_code == 413, declared.text
    assert declared.json()["error"]["code"] == "body_too_large"
    # Without a declared length the route refuses before reading (no token, no CSRF token), or
    # the stream is cut off at the limit.
    assert streamed.status_code in (401, 403, 413)


def test_a_json_body_streamed_past_the_limit_is_cut_off(api: Api) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"phone": "1", "password": "'
        yield from _chunks(3 * 1024 * 1024)
        yield b'"}'

    response = api.client.post(
        "/api/v1/sessions", content=body(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/plans",
        "/static/app.js",
        "/docs",
        "/openapi.json",
        "/api/v1/log/checkpoint",
        "/api/v1/no-such-thing",
    ],
)
def test_every_response_carries_the_security_headers(api: Api, path: str) -> None:
    response = api.client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_is_sent_over_tls(ctx: ServiceContext) -> None:
    client = TestClient(create_app(ctx), base_url="https://aid.example")

    response = client.get("/api/v1/plans")

    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_the_docs_load_swagger_ui_from_our_own_origin(api: Api) -> None:
    page = api.client.get("/docs").text

    assert "cdn" not in page.lower() and "https://" not in page
    script = api.client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.headers["X-Content-Type-Options"] == "nosniff"
