"""Staff sign-in through the operator's OpenID Connect provider: authorization code flow with
PKCE (S256), state and nonce, via Authlib's httpx client; the id_token checked with joserfc
against the provider's JWKS (signature, issuer, audience, expiry, nonce).

The provider only names a person; the mapping claim (phone_number by default) must match an
existing staff account. It counts as both factors only when the settings name an `amr`/`acr`
value that proves the IdP enforced MFA; otherwise the staff member still gives their TOTP code."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from mutualaid.db.models import Account
from mutualaid.domain.accounts import Role, normalise_phone
from mutualaid.domain.errors import DomainError, Unauthenticated
from mutualaid.domain.second_factors import needs_second_factor
from mutualaid.services.accounts.accounts import IssuedToken, issue_token
from mutualaid.services.accounts.second_factors import SecondFactorRequired, ticket_for
from mutualaid.services.context import OidcConfig, ServiceContext


@dataclass(frozen=True, slots=True)
class Pending:
    """What the browser keeps (in a signed, HttpOnly cookie) between leaving and coming back."""

    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True, slots=True)
class OidcSignIn:
    account_id: int
    #: The IdP proved MFA: no TOTP code is needed on top.
    both_factors: bool


def _refuse(code: str, message: str) -> Unauthenticated:
    return Unauthenticated(code, message, None)


def _discover(client: OAuth2Client, issuer: str) -> dict[str, Any]:
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    response = client.request("GET", url, withhold_token=True)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    if document.get("issuer") != issuer:
        raise _refuse("oidc_bad_issuer", "the identity provider names another issuer")
    return document


def _client(config: OidcConfig) -> OAuth2Client:
    return OAuth2Client(
        config.client_id,
        config.client_secret,
        redirect_uri=config.redirect_uri,
        scope="openid phone",
        code_challenge_method="S256",
    )


def begin(config: OidcConfig) -> tuple[str, Pending]:
    """The provider's authorize URL to send the browser to, and what to check on return."""
    pending = Pending(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
    )
    with _client(config) as client:
        document = _discover(client, config.issuer)
        url, _ = client.create_authorization_url(
            document["authorization_endpoint"],
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.code_verifier,
        )
    return str(url), pending


def complete(
    ctx: ServiceContext, config: OidcConfig, pending: Pending, state: str, code: str
) -> OidcSignIn:
    """Check the return (state), redeem the code (PKCE), verify the id_token, map the account."""
    if not secrets.compare_digest(state, pending.state):
        raise _refuse("oidc_state_mismatch", "sign in again: the sign-in did not start here")
    with _client(config) as client:
        document = _discover(client, config.issuer)
        token = client.fetch_token(
            document["token_endpoint"], code=code, code_verifier=pending.code_verifier
        )
        keys = KeySet.import_key_set(
            client.request("GET", document["jwks_uri"], withhold_token=True).json()
        )
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise _refuse("oidc_no_id_token", "the identity provider sent no id_token")
    try:
        decoded = jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.client_id},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError):
        raise _refuse("oidc_bad_token", "the identity provider's token failed its checks") from None
    claims = decoded.claims
    if not secrets.compare_digest(str(claims.get("nonce", "")), pending.nonce):
        raise _refuse("oidc_nonce_mismatch", "sign in again: the token was not issued for this")
    try:
        phone = normalise_phone(str(claims.get(config.claim, "")), config.claim)
    except DomainError:
        raise _refuse("oidc_unknown_subject", "no staff account matches this identity") from None
    with ctx.reading() as session:
        account = session.scalar(select(Account).where(Account.phone == phone))
        if account is None or not needs_second_factor(Role(account.role)):
            raise _refuse("oidc_unknown_subject", "no staff account matches this identity")
        account_id = account.id
    amr = claims.get("amr") or []
    proved = bool(config.mfa_value) and (
        config.mfa_value in amr or claims.get("acr") == config.mfa_value
    )
    return OidcSignIn(account_id=account_id, both_factors=proved)


def session_for(ctx: ServiceContext, signed_in: OidcSignIn) -> IssuedToken:
    """A session when the IdP proved MFA; otherwise the TOTP step (SecondFactorRequired)."""
    if signed_in.both_factors:
        return issue_token(ctx, signed_in.account_id)
    raise SecondFactorRequired(
        "second_factor_required",
        "enter the code from your authenticator app",
        ticket_for(ctx, signed_in.account_id),
    )
