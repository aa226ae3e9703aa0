"""Staff sign-in through a real (local) OpenID Connect provider: the mapping and each refusal."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from tests.factories import account
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider

from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import Unauthenticated
from mutualaid.services.accounts.oidc import Pending, begin, complete, session_for
from mutualaid.services.accounts.second_factors import SecondFactorRequired
from mutualaid.services.context import OidcConfig, ServiceContext

REDIRECT = "http://127.0.0.1/oidc/callback"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


def _config(provider: Provider, mfa_value: str = "") -> OidcConfig:
    return OidcConfig(provider.issuer, CLIENT_ID, CLIENT_SECRET, REDIRECT, mfa_value=mfa_value)


def _round_trip(config: OidcConfig) -> tuple[Pending, str, str]:
    """Send the 'browser' to the authorize URL; read the code and state it is sent back with."""
    url, pending = begin(config)
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    back = parse_qs(urlsplit(response.headers["location"]).query)
    return pending, back["state"][0], back["code"][0]


def _refusal(ctx: ServiceContext, config: OidcConfig, state_tamper: bool = False) -> str:
    pending, state, code = _round_trip(config)
    with pytest.raises(Unauthenticated) as refused:
        complete(ctx, config, pending, state + "x" if state_tamper else state, code)
    return refused.value.code


def test_a_sign_in_maps_to_the_staff_account_and_still_asks_for_totp(
    ctx: ServiceContext, provider: Provider
) -> None:
    staff = account(ctx, Role.REVIEWER, phone=provider.phone_number)
    pending, state, code = _round_trip(_config(provider))
    signed_in = complete(ctx, _config(provider), pending, state, code)
    assert signed_in.account_id == staff.account_id
    assert not signed_in.both_factors
    with pytest.raises(SecondFactorRequired) as step:
        session_for(ctx, signed_in)
    assert step.value.code == "second_factor_required"


def test_an_idp_that_proves_mfa_counts_as_both_factors(
    ctx: ServiceContext, provider: Provider
) -> None:
    staff = account(ctx, Role.OPERATOR, phone=provider.phone_number)
    provider.amr = ["pwd", "mfa"]
    config = _config(provider, mfa_value="mfa")
    pending, state, code = _round_trip(config)
    issued = session_for(ctx, complete(ctx, config, pending, state, code))
    assert issued.account.id == staff.account_id


def test_a_wrong_state_is_refused(ctx: ServiceContext, provider: Provider) -> None:
    account(ctx, Role.REVIEWER, phone=provider.phone_number)
    assert _refusal(ctx, _config(provider), state_tamper=True) == "oidc_state_mismatch"


def test_a_wrong_nonce_is_refused(ctx: ServiceContext, provider: Provider) -> None:
    account(ctx, Role.REVIEWER, phone=provider.phone_number)
    provider.nonce_override = "replayed-from-another-sign-in"
    assert _refusal(ctx, _config(provider)) == "oidc_nonce_mismatch"


def test_a_token_signed_by_another_key_is_refused(ctx: ServiceContext, provider: Provider) -> None:
    account(ctx, Role.REVIEWER, phone=provider.phone_number)
    provider.signing_key = RSAKey.generate_key(2048, {"kid": "k1"})
    assert _refusal(ctx, _config(provider)) == "oidc_bad_token"


def test_an_unknown_subject_is_refused(ctx: ServiceContext, provider: Provider) -> None:
    account(ctx, Role.MEMBER, phone=provider.phone_number)  # a member, not staff
    assert _refusal(ctx, _config(provider)) == "oidc_unknown_subject"


def test_the_client_secret_is_not_in_the_config_repr(provider: Provider) -> None:
    assert CLIENT_SECRET not in repr(_config(provider))


def test_the_web_sign_in_goes_through_the_provider_then_asks_for_the_code(
    ctx: ServiceContext, provider: Provider
) -> None:
    from fastapi.testclient import TestClient
    from tests.factories import staff_code

    from mutualaid.api.app import create_app

    account(ctx, Role.REVIEWER, phone=provider.phone_number)
    ctx.oidc = OidcConfig(provider.issuer, CLIENT_ID, CLIENT_SECRET, "")
    with TestClient(create_app(ctx), base_url="http://localhost") as client:
        assert "/oidc/start" in client.get("/login").text
        start = client.get("/oidc/start", follow_redirects=False)
        assert start.status_code == 303
        at_idp = httpx.get(start.headers["location"], follow_redirects=False)
        back = urlsplit(at_idp.headers["location"])
        assert back.path == "/oidc/callback"
        callback = client.get(f"/oidc/callback?{back.query}", follow_redirects=False)
        assert callback.headers["location"].startswith("/second-factor?")
        page = client.get("/second-factor")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        done = client.post(
            "/second-factor",
            data={"csrf_token": token, "code": staff_code(ctx)},
            follow_redirects=False,
        )
        assert done.headers["location"] == "/staff?ok=logged_in"
