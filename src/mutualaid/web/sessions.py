"""Cookie sessions, CSRF protection and the per-request page state.

- The session cookie holds the bearer token `services.accounts.log_in` issued (stored hashed in
  api_tokens, so logging out anywhere ends it): HttpOnly, SameSite=Lax, Secure except on
  http://127.0.0.1 and http://localhost (development and the browser tests).
- CSRF: every unsafe request carries a token (form field ``csrf_token`` or header ``X-CSRF-Token``)
  equal to HMAC(key, nonce cookie | session cookie). The key derives from the deployment secret, so
  every worker agrees; the token changes when the session does (a login form's token cannot be
  replayed into a session).
- Logins are rate limited in the database (services.accounts.login_throttle).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from mutualaid import adapters
from mutualaid.adapters import Context
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import DomainError, Forbidden, Unauthenticated
from mutualaid.services.accounts.accounts import AccountView, Actor, authenticate, get_account
from mutualaid.services.context import ServiceContext
from mutualaid.web.i18n import Lang, pick_locale

SESSION_COOKIE = "ma_session"
CSRF_COOKIE = "ma_csrf"
LANG_COOKIE = "ma_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PAGE_KEY = "mutualaid.page"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginRequired(Exception):
    """Raised by a page that needs a logged-in account; answered with a redirect to /login."""


def csrf_key(ctx: ServiceContext) -> bytes:
    # A keyed hash of a fixed label: a key derived from the deployment secret, same in every worker.
    return bytes.fromhex(ctx.protector.identity_hash("mutualaid web csrf key v1"))


def csrf_token_for(ctx: ServiceContext, nonce: str, session: str | None) -> str:
    message = f"{nonce}|{hashlib.sha256((session or '').encode()).hexdigest()}".encode()
    return hmac.new(csrf_key(ctx), message, hashlib.sha256).hexdigest()


def is_secure_origin(request: Request) -> bool:
    return request.url.scheme == "https" or request.url.hostname not in LOCAL_HOSTS


@dataclass
class PageState:
    """What every page needs: the reader's language, who is logged in, the CSRF token, the form."""

    request: Request
    ctx: ServiceContext
    lang: Lang
    actor: Actor | None
    account: AccountView | None
    csrf_token: str
    session_token: str | None
    form: FormData | None = None
    cookies: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    # --- who -----------------------------------------------------------------------------------

    def need(self, *roles: Role) -> Actor:
        """The logged-in actor, refused unless their role is one of `roles` (any role if none)."""
        if self.actor is None:
            raise LoginRequired()
        if roles and self.actor.role not in roles:
            raise Forbidden(
                "forbidden",
                f"this needs the role {', '.join(sorted(roles))}; you are {self.actor.role}",
                details={"variant": "role", "role": str(self.actor.role)},
            )
        return self.actor

    @property
    def role(self) -> Role | None:
        return self.actor.role if self.actor else None

    # --- forms ---------------------------------------------------------------------------------

    def text(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return self.raw(name).strip() if isinstance(value, str) else default

    def raw(self, name: str) -> str:
        """A field exactly as typed (passwords are not trimmed).

        Multipart forms pass the NUL middleware (their files are binary): their text fields are
        refused here, as every other text is there."""
        value = self.form.get(name) if self.form is not None else None
        if not isinstance(value, str):
            return ""
        if "\x00" in value:
            raise DomainError(
                "invalid_request",
                "text may not contain the NUL character",
                name,
                details={"variant": "nul"},
            )
        return value

    def file(self, name: str) -> UploadFile | None:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, UploadFile) and value.filename else None

    def values(self) -> dict[str, str]:
        if self.form is None:
            return {}
        return {k: v for k, v in self.form.items() if isinstance(v, str) and k != CSRF_FIELD}

    # --- cookies -------------------------------------------------------------------------------

    def set_cookie(
        self, name: str, value: str, *, max_age: int | None = None, http_only: bool = True
    ) -> None:
        self.cookies.append((name, value, {"max_age": max_age, "httponly": http_only}))

    def delete_cookie(self, name: str) -> None:
        self.cookies.append((name, None, {}))

    def start_session(self, token: str, max_age: int) -> None:
        self.set_cookie(SESSION_COOKIE, token, max_age=max_age)

    def end_session(self) -> None:
        self.delete_cookie(SESSION_COOKIE)

    def apply_cookies(self, response: Response) -> None:
        secure = is_secure_origin(self.request)
        for name, value, options in self.cookies:
            if value is None:
                response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
            else:
                response.set_cookie(
                    name,
                    value,
                    max_age=options["max_age"],
                    path="/",
                    secure=secure,
                    httponly=options["httponly"],
                    samesite="lax",
                )


def page_state(request: Request, ctx: Context) -> PageState:
    existing: PageState | None = request.scope.get(PAGE_KEY)
    if existing is not None:
        return existing
    pending: list[tuple[str, str | None, dict[str, Any]]] = []
    asked = request.query_params.get("lang")
    # The switch (?lang=), then the cookie it set, then the default (zh_CN) — not Accept-Language:
    # most members' phones say what the shop set up, and the demo plan is Chinese first.
    lang = Lang.of(pick_locale(asked, request.cookies.get(LANG_COOKIE)))
    if asked and pick_locale(asked) != request.cookies.get(LANG_COOKIE):
        pending.append((LANG_COOKIE, lang.code, {"max_age": 365 * 24 * 3600, "httponly": True}))
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(24)
        pending.append((CSRF_COOKIE, nonce, {"max_age": None, "httponly": True}))
    session_token = request.cookies.get(SESSION_COOKIE)
    actor: Actor | None = None
    account: AccountView | None = None
    if session_token:
        try:
            actor = authenticate(ctx, session_token)
            account = get_account(ctx, actor.account_id)
        except Unauthenticated:
            actor, account = None, None
            pending.append((SESSION_COOKIE, None, {}))
    state = PageState(
        request=request,
        ctx=ctx,
        lang=lang,
        actor=actor,
        account=account,
        csrf_token=csrf_token_for(ctx, nonce, session_token if actor else None),
        session_token=session_token if actor else None,
        cookies=pending,
    )
    # The CSRF check compares with the cookies as they came in (a fresh nonce never matches).
    state.request.scope["mutualaid.csrf_expected"] = (
        csrf_token_for(ctx, request.cookies[CSRF_COOKIE], session_token if actor else None)
        if request.cookies.get(CSRF_COOKIE)
        else None
    )
    request.scope[PAGE_KEY] = state
    return state


Page = Annotated[PageState, Depends(page_state)]


async def csrf_protect(request: Request, page: Page) -> None:
    """Every unsafe request must carry the CSRF token (router-wide dependency of the web app)."""
    if request.method not in UNSAFE_METHODS:
        return
    submitted = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        page.form = await request.form(max_files=20, max_fields=200)
        field_value = page.form.get(CSRF_FIELD)
        if isinstance(field_value, str):
            submitted = submitted or field_value
    expected = request.scope.get("mutualaid.csrf_expected")
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise Forbidden(
            "csrf_failed",
            "this form has expired: go back, reload the page and try again",
            "csrf_token",
        )


def client_address(page: PageState) -> str:
    """The client's address (the X-Forwarded-For client behind a trusted proxy)."""
    return adapters.client_address(page.request)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: never redirect to another site after login."""
    if not target:
        return default
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return default
    return target
