"""A small, real OpenID Connect provider for tests: discovery, JWKS (a generated RSA key),
an authorize endpoint that redirects back with a code, and a token endpoint that checks PKCE and
the client secret and issues a signed id_token. Served by uvicorn on a free localhost port."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from tests.live_servers import served

CLIENT_ID = "mutualaid-staff"
CLIENT_SECRET = "test-client-secret-not-for-logs"


@dataclass
class Provider:
    """What the next sign-in will claim; tests change it to play a misbehaving or hostile IdP."""

    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    signing_key: RSAKey | None = None  # another key: a forged token
    phone_number: str = "10000000401"
    nonce_override: str | None = None
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def discovery(_: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def jwks(_: Request) -> Response:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        async def authorize(request: Request) -> Response:
            q = request.query_params
            if q.get("code_challenge_method") != "S256" or q.get("client_id") != CLIENT_ID:
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"]}
            back = urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(f"{q['redirect_uri']}?{back}", status_code=302)

        async def token(request: Request) -> Response:
            form = await request.form()
            basic = request.headers.get("authorization", "")
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if basic != f"Basic {expected}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if grant is None or digest.rstrip(b"=").decode() != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "sub": "staff-401",
                "iat": now,
                "exp": now + 300,
                "nonce": self.nonce_override or grant["nonce"],
                "phone_number": self.phone_number,
                "amr": self.amr,
            }
            signer = self.signing_key or self.key
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, signer)
            return JSONResponse(
                {"access_token": "at", "token_type": "Bearer", "id_token": id_token}
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


@contextmanager
def running_provider() -> Iterator[Provider]:
    provider = Provider()
    with served(provider.app(), "the test OIDC provider") as app:
        provider.issuer = app.url
        yield provider
