"""Issue #16: behind a reverse proxy. The client address (rate limits, registration limits, the
login throttle and its audit rows, on the API and the pages) is the X-Forwarded-For client when,
and only when, the direct peer is a trusted proxy (MUTUALAID_FORWARDED_ALLOW_IPS)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from tests.api.calls import PASSWORD, next_phone
from tests.conftest import TEST_SECRET

from mutualaid.adapters import TrustedProxies
from mutualaid.api.app import create_app
from mutualaid.db.models import AuditEvent
from mutualaid.services.accounts.login_throttle import ACTION
from mutualaid.services.context import ServiceContext
from mutualaid.settings import Settings

PROXY = "10.0.0.2"
OUTSIDER = "198.51.100.9"
CLIENT = "203.0.113.7"


def settings(forwarded_allow_ips: str) -> Settings:
    return Settings(secret_key=TEST_SECRET, demo=True, forwarded_allow_ips=forwarded_allow_ips)


def client_from(ctx: ServiceContext, peer: str, trusted: str | None) -> TestClient:
    app = create_app(ctx, settings(trusted) if trusted is not None else None)
    return TestClient(app, client=(peer, 40000), base_url="http://localhost")


def failed_login_addresses(ctx: ServiceContext) -> list[str]:
    with ctx.reading() as session:
        return [
            details["address"]
            for details in session.scalars(
                select(AuditEvent.details).where(AuditEvent.action == ACTION)
            )
        ]


def test_the_forwarded_client_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies("10.0.0.0/8, 192.168.1.1, fd00::/8")
    assert proxies.client(PROXY, CLIENT) == CLIENT
    # Read from the right: what the client itself wrote further left is never believed.
    assert proxies.client(PROXY, f"6.6.6.6, {CLIENT}, 10.0.0.9") == CLIENT
    assert proxies.client(OUTSIDER, CLIENT) == OUTSIDER
    assert proxies.client(PROXY, None) == PROXY
    assert proxies.client(PROXY, "10.0.0.7, 10.0.0.8") == "10.0.0.7"  # all ours: the farthest
    assert proxies.client(PROXY, f"{CLIENT}, not-an-address") == PROXY
    assert proxies.client("fd00::1", "2001:db8::5") == "2001:db8::5"
    assert proxies.client(None, CLIENT) == "unknown"
    assert TrustedProxies("").client(PROXY, CLIENT) == PROXY
    assert TrustedProxies("*").client(OUTSIDER, CLIENT) == CLIENT
    assert not TrustedProxies("") and TrustedProxies("*")


def test_a_proxy_that_adds_its_own_header_line_is_read_after_the_clients(
    ctx: ServiceContext,
) -> None:
    client = client_from(ctx, PROXY, "10.0.0.0/8")
    phone = next_phone()
    client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD})
    lines = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", CLIENT)]
    wrong = {"phone": phone, "password": "not-the-password"}
    assert client.post("/api/v1/sessions", json=wrong, headers=lines).status_code == 401
    assert failed_login_addresses(ctx) == [CLIENT]


def test_a_typo_in_the_trusted_addresses_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        settings("10.0.0.0/8, 10.0.0.300")


@pytest.mark.parametrize(
    ("peer", "trusted", "recorded"),
    [
        (PROXY, "10.0.0.0/8", CLIENT),  # the proxy says who it forwards for
        (PROXY, None, PROXY),  # no setting: the peer, whatever the header says
        (OUTSIDER, "10.0.0.0/8", OUTSIDER),  # a client spoofing the header is ignored
    ],
    ids=["trusted-proxy", "no-setting", "spoofed-by-untrusted-peer"],
)
def test_the_login_throttle_and_its_audit_rows_use_the_client_address(
    ctx: ServiceContext, peer: str, trusted: str | None, recorded: str
) -> None:
    client = client_from(ctx, peer, trusted)
    phone = next_phone()
    assert client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD}).is_success
    wrong = {"phone": phone, "password": "not-the-password"}
    api = client.post("/api/v1/sessions", json=wrong, headers={"X-Forwarded-For": CLIENT})
    assert api.status_code == 401

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token, page.text
    form = client.post(
        "/login",
        data={"csrf_token": token.group(1), **wrong},
        headers={"X-Forwarded-For": CLIENT},
    )
    assert form.status_code == 422  # the form again, with its error

    assert failed_login_addresses(ctx) == [recorded, recorded]


def test_rate_limits_count_each_client_behind_the_proxy_but_not_a_spoofed_header(
    ctx: ServiceContext,
) -> None:
    ctx.rate_limits = replace(ctx.rate_limits, per_address=2, registrations_per_address=100)

    def register(client: TestClient, forwarded_for: str) -> int:
        body = {"phone": next_phone(), "password": PASSWORD}
        headers = {"X-Forwarded-For": forwarded_for}
        return client.post("/api/v1/accounts", json=body, headers=headers).status_code

    behind_proxy = client_from(ctx, PROXY, "10.0.0.0/8")
    # Three clients behind one proxy: each has its own budget.
    assert [register(behind_proxy, f"203.0.113.{n}") for n in (1, 2, 3)] == [201, 201, 201]
    assert [register(behind_proxy, "203.0.113.1") for _ in range(2)] == [201, 429]

    spoofer = client_from(ctx, OUTSIDER, "10.0.0.0/8")
    # A peer that is not a proxy cannot buy itself budget by inventing addresses.
    assert [register(spoofer, f"192.0.2.{n}") for n in (1, 2, 3)] == [201, 201, 429]


def test_the_scheme_a_trusted_proxy_received_is_the_requests(ctx: ServiceContext) -> None:
    https = {"X-Forwarded-Proto": "https"}
    trusted = client_from(ctx, PROXY, "10.0.0.0/8").get("/healthz", headers=https)
    assert "Strict-Transport-Security" in trusted.headers
    spoofed = client_from(ctx, OUTSIDER, "10.0.0.0/8").get("/healthz", headers=https)
    assert "Strict-Transport-Security" not in spoofed.headers
