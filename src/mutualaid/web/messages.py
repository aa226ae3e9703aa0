"""Message pages: proving my phone with an SMS code, my message settings, and the operator's
dead letters."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse, Response

from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import DomainError
from mutualaid.domain.notifications import MEMBER_CHANNELS
from mutualaid.services.accounts.phone_codes import (
    confirm_phone_code,
    send_first_code,
    send_phone_code,
)
from mutualaid.services.notifications import (
    dispatch_notifications,
    get_preferences,
    list_dead_letters,
    retry_dead_letters,
    set_preferences,
)
from mutualaid.web.i18n import N_
from mutualaid.web.pages import page_router, redirect, render, render_form
from mutualaid.web.sessions import Page, PageState, client_address

router = page_router()

CHANNEL_NAMES = {"sms": N_("Text message (SMS)"), "email": N_("E-mail"), "app": N_("App message")}


def send_code_after_registering(page: PageState, account_id: int) -> None:
    """Registration sends the first code itself; a refusal (throttled, gateway down) leaves the
    member to ask again from the phone page."""
    send_first_code(page.ctx, account_id, client_address(page))


# --- my phone -----------------------------------------------------------------------------------


@router.get("/me/phone")
def phone_page(page: Page) -> HTMLResponse:
    page.need()
    return render(page, "members/phone.html")


@router.post("/me/phone/code")
def phone_code(page: Page) -> Response:
    actor = page.need()
    try:
        send_phone_code(
            page.ctx,
            actor.account_id,
            new_phone=page.text("phone") or None,
            address=client_address(page),
        )
    except DomainError as error:
        return render_form(page, "members/phone.html", error)
    return redirect("/me/phone", ok="code_sent")


@router.post("/me/phone/verify")
def phone_verify(page: Page) -> Response:
    actor = page.need()
    try:
        confirm_phone_code(page.ctx, actor.account_id, page.text("code"))
    except DomainError as error:
        return render_form(page, "members/phone.html", error)
    return redirect("/me", ok="phone_verified")


# --- my message settings ------------------------------------------------------------------------


@router.get("/me/settings")
def settings_page(page: Page) -> HTMLResponse:
    actor = page.need()
    return render(page, "members/settings.html", **_settings(page, actor.account_id))


def _settings(page: PageState, account_id: int) -> dict[str, Any]:
    return {
        "preferences": get_preferences(page.ctx, account_id),
        "channels": [(str(c), CHANNEL_NAMES[c]) for c in MEMBER_CHANNELS],
    }


@router.post("/me/settings")
def save_settings(page: Page) -> Response:
    actor = page.need()
    try:
        set_preferences(
            page.ctx,
            actor.account_id,
            locale=page.text("locale") or None,
            channel=page.text("channel") or None,
            email=page.text("email"),
            optional=page.text("optional") == "yes",
        )
    except DomainError as error:
        return render_form(
            page, "members/settings.html", error, **_settings(page, actor.account_id)
        )
    return redirect("/me/settings", ok="settings_saved")


# --- the operator's dead letters ----------------------------------------------------------------


@router.get("/staff/notifications")
def dead_letters(page: Page) -> HTMLResponse:
    page.need(Role.OPERATOR, Role.AUDITOR)
    return render(page, "staff/dead_letters.html", letters=list_dead_letters(page.ctx))


@router.post("/staff/notifications/retry")
def retry(page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    chosen = page.text("id")
    retry_dead_letters(page.ctx, actor.account_id, [int(chosen)] if chosen.isdigit() else None)
    dispatch_notifications(page.ctx)
    return redirect("/staff/notifications", ok="done")
