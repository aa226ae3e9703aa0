"""Staff second-factor pages: the code step after the password, and setting up an authenticator.

The password step leaves a signed ticket in a short-lived HttpOnly cookie (never the password);
these pages turn ticket + code into the session cookie."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any
from urllib.parse import quote

import segno
from cryptography.exceptions import InvalidTag
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mutualaid.domain.accounts import STAFF_ROLES
from mutualaid.domain.errors import DomainError, NotFound, Unauthenticated
from mutualaid.services.accounts.accounts import IssuedToken, log_out
from mutualaid.services.accounts.oidc import Pending, begin, complete, session_for
from mutualaid.services.accounts.second_factors import (
    TICKET_TTL_S,
    SecondFactorRequired,
    confirm_enrolment,
    start_enrolment,
    verify_code,
)
from mutualaid.services.context import OidcConfig
from mutualaid.web.pages import page_router, redirect, render, render_form
from mutualaid.web.sessions import Page, PageState, client_address, safe_next

TICKET_COOKIE = "ma_2fa"
router = page_router()


def second_step(page: PageState, step: SecondFactorRequired, target: str) -> Response:
    """After a right staff password: on to the code, or to setting up an authenticator."""
    page.set_cookie(TICKET_COOKIE, step.ticket, max_age=TICKET_TTL_S)
    if step.code == "second_factor_enrolment_required":
        return redirect(f"/second-factor/setup?next={quote(target)}")
    return redirect(f"/second-factor?next={quote(target)}")


def _ticket(page: PageState) -> str:
    ticket = page.request.cookies.get(TICKET_COOKIE)
    if not ticket:
        raise Unauthenticated("invalid_ticket", "sign in again: this step has expired", "code")
    return ticket


def _start(page: PageState, issued: IssuedToken) -> None:
    if page.session_token:
        log_out(page.ctx, page.session_token)
    page.delete_cookie(TICKET_COOKIE)
    page.start_session(issued.token, page.ctx.token_ttl_hours * 3600)


def _home(page: PageState, issued: IssuedToken, target: str) -> str:
    return target or ("/staff" if issued.account.role in STAFF_ROLES else "/me")


def _next(page: PageState) -> str:
    return safe_next(page.text("next") or page.request.query_params.get("next"), "")


@router.get("/second-factor")
def code_form(page: Page) -> HTMLResponse:
    return render(page, "second_factors/code.html", next=_next(page))


@router.post("/second-factor")
def code_submit(page: Page) -> Response:
    target = _next(page)
    try:
        issued = verify_code(page.ctx, _ticket(page), page.text("code"), client_address(page))
    except DomainError as error:
        return render_form(page, "second_factors/code.html", error, next=target)
    _start(page, issued)
    return redirect(_home(page, issued, target), ok="logged_in")


def _setup_page(page: PageState, error: DomainError | None = None) -> HTMLResponse:
    enrolment = start_enrolment(page.ctx, _ticket(page))
    qr_svg = segno.make(enrolment.uri, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    extra: dict[str, Any] = {
        "secret": enrolment.secret,
        "uri": enrolment.uri,
        "qr_svg": qr_svg,
        "next": _next(page),
    }
    if error is not None:
        return render_form(page, "second_factors/setup.html", error, **extra)
    return render(page, "second_factors/setup.html", **extra)


@router.get("/second-factor/setup")
def setup_form(page: Page) -> HTMLResponse:
    try:
        return _setup_page(page)
    except DomainError as error:
        return render_form(page, "second_factors/code.html", error, next=_next(page))


@router.post("/second-factor/setup")
def setup_submit(page: Page) -> Response:
    target = _next(page)
    try:
        confirmed = confirm_enrolment(
            page.ctx, _ticket(page), page.text("code"), client_address(page)
        )
    except DomainError as error:
        if error.code == "invalid_ticket":
            return render_form(page, "second_factors/code.html", error, next=target)
        return _setup_page(page, error)
    _start(page, confirmed.issued)
    # Shown once: only their hashes are kept.
    return render(
        page,
        "second_factors/recovery_codes.html",
        codes=confirmed.recovery_codes,
        next=_home(page, confirmed.issued, target),
    )


# --- sign-in through the operator's identity provider (OpenID Connect) -------------------------

OIDC_COOKIE = "ma_oidc"


def _oidc(page: PageState) -> OidcConfig:
    if page.ctx.oidc is None:
        raise NotFound("oidc_off", "sign-in through an identity provider is not set up")
    callback = str(page.request.url_for("oidc_callback"))
    return dataclasses.replace(page.ctx.oidc, redirect_uri=callback)


@router.get("/oidc/start")
def oidc_start(page: Page) -> Response:
    url, pending = begin(_oidc(page))
    # State, nonce and PKCE verifier ride in an encrypted HttpOnly cookie: nothing in memory.
    sealed = page.ctx.protector.encrypt(json.dumps(dataclasses.asdict(pending)))
    page.set_cookie(OIDC_COOKIE, base64.urlsafe_b64encode(sealed).decode(), max_age=TICKET_TTL_S)
    return RedirectResponse(url, status_code=303)


@router.get("/oidc/callback", name="oidc_callback")
def oidc_callback(page: Page) -> Response:
    config = _oidc(page)
    page.delete_cookie(OIDC_COOKIE)
    try:
        sealed = base64.urlsafe_b64decode(page.request.cookies.get(OIDC_COOKIE, ""))
        pending = Pending(**json.loads(page.ctx.protector.decrypt(sealed)))
    except (ValueError, TypeError, InvalidTag):
        error = Unauthenticated("oidc_state_mismatch", "sign in again: this step has expired")
        return render_form(page, "members/login.html", error, next="")
    params = page.request.query_params
    try:
        signed_in = complete(
            page.ctx, config, pending, params.get("state", ""), params.get("code", "")
        )
        issued = session_for(page.ctx, signed_in)
    except SecondFactorRequired as step:
        return second_step(page, step, "")
    except DomainError as error:
        return render_form(page, "members/login.html", error, next="")
    _start(page, issued)
    return redirect(_home(page, issued, ""), ok="logged_in")
