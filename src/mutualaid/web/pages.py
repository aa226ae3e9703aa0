"""What every page shares: the templates, the route class that turns refusals into pages, and
rendering with the reader's language. Page handlers hold no rule: they call services and show the
result or the refusal (next to the field it names)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from mutualaid import __version__
from mutualaid.domain.accounts import STAFF_ROLES, Role
from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.domain.plans import PlanRules
from mutualaid.services.claims.casework import StaffMember, staff_members
from mutualaid.services.notifications import unread_count
from mutualaid.services.plans.plans import PlanSummary, plan_names
from mutualaid.web import i18n
from mutualaid.web.sessions import (
    CSRF_FIELD,
    PAGE_KEY,
    LoginRequired,
    PageState,
    csrf_protect,
    page_state,
)

log = structlog.get_logger()

WEB_DIR = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=WEB_DIR / "templates")
templates.env.globals["version"] = __version__
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")

#: One-word confirmations after a form (POST → redirect → GET ?ok=<code>): no free text in URLs.
CONFIRMATIONS = {
    "registered": i18n.N_("Welcome! Your account is ready. Now join a plan."),
    "logged_in": i18n.N_("You are logged in."),
    "logged_out": i18n.N_("You are logged out."),
    "enrolled": i18n.N_("Joined. The waiting period has started."),
    "left": i18n.N_("You have left the plan. Your cover has ended."),
    "age_out_move": i18n.N_("Your choice of the move at the exit age is saved."),
    "claim_reported": i18n.N_("Your claim is reported. Add photos of your documents below."),
    "evidence_added": i18n.N_("The document was added to your claim."),
    "documents_provided": i18n.N_("Thank you. The investigator has been told."),
    "disputed": i18n.N_("Your dispute was sent to a member jury."),
    "objected": i18n.N_("Your objection was filed. A reviewer will look at it."),
    "appealed": i18n.N_("Your appeal was filed. An operator who did not make the record decides."),
    "certified": i18n.N_("You passed: you are a certified juror."),
    "voted": i18n.N_("Your vote was recorded. Thank you."),
    "recused": i18n.N_("You recused yourself from this case."),
    "done": i18n.N_("Done."),
    "plan_published": i18n.N_("The new plan version is published."),
    "plan_unchanged": i18n.N_("The rules are unchanged: no new version."),
    "period_closed": i18n.N_("The period is closed: shares are computed and committed."),
    "code_sent": i18n.N_("We sent you a code by text message. It is valid for 10 minutes."),
    "phone_verified": i18n.N_("Your phone number is verified."),
    "settings_saved": i18n.N_("Your message settings are saved."),
    "payout_released": i18n.N_("The payout is released: it can be sent now."),
    "payout_held": i18n.N_("Your release is recorded. A second operator must release it too."),
    "transfer_sent": i18n.N_("The transfer was sent. The provider's notice settles it."),
    "transfer_settled": i18n.N_("The transfer was sent and settled: the claim is paid."),
    "transfer_failed": i18n.N_("The provider refused the transfer. Check the payee, then resend."),
    "share_paid": i18n.N_("Thank you: the share is paid."),
    "topped_up": i18n.N_("Your balance is topped up."),
    "agreement_active": i18n.N_("Your debit agreement is already signed."),
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _plan_namer(page: PageState) -> Callable[[str | None], str]:
    """A plan's name in the reader's language by its code (the plans are read once, if asked)."""
    names: dict[str, tuple[str, str]] = {}

    def plan_name(code: str | None) -> str:
        if not code:
            return ""
        if not names:
            names.update(plan_names(page.ctx))
        if code not in names:
            return code
        return page.lang.pick(*names[code])

    return plan_name


def _staff_namer(page: PageState) -> Callable[[int | None], str]:
    """A staff member as staff pages name them: their display name, else their role and number
    (never a bare "#3"). Read once, if asked, and only for staff."""
    members: dict[int, StaffMember] = {}

    def staff_name(account_id: int | None) -> str:
        if account_id is None:
            return ""
        actor = page.actor
        if not members and actor is not None and actor.role is not Role.MEMBER:
            members.update({s.id: s for s in staff_members(page.ctx, actor, tuple(STAFF_ROLES))})
        member = members.get(account_id)
        if member is None:
            return page.lang.gettext(i18n.N_("staff member no. {n}"), n=account_id)
        if member.display_name:
            return member.display_name
        return page.lang.gettext(
            i18n.N_("{role} no. {n}"),
            role=page.lang.gettext(i18n.ROLE_NAMES.get(str(member.role), str(member.role))),
            n=account_id,
        )

    return staff_name


def context_for(page: PageState, extra: dict[str, Any]) -> dict[str, Any]:
    lang = page.lang
    zone: ZoneInfo = extra.get("zone") or DEFAULT_ZONE
    ok = page.request.query_params.get("ok")
    return {
        "page": page,
        "lang": lang,
        "viewer": page.account,
        "role": str(page.role) if page.role else None,
        "_": lang.gettext,
        "ngettext": lang.ngettext,
        "pick": lang.pick,
        "money": lang.money,
        "date": lang.date,
        "dt": lambda value, z=None: lang.datetime(value, z or zone),
        "number": lang.number,
        "size": lang.size,
        "tier_name": lambda tier: (
            lang.gettext("severe") if tier == "severe" else lang.gettext("mild")
        ),
        "state_name": i18n.named(lang, i18n.STATE_NAMES),
        "relation_name": i18n.named(lang, i18n.RELATION_NAMES),
        "role_name": i18n.named(lang, i18n.ROLE_NAMES),
        "reason_name": i18n.named(lang, i18n.REASON_NAMES),
        "end_reason_name": i18n.named(lang, i18n.END_REASON_NAMES),
        "choice_name": i18n.named(lang, i18n.CHOICE_NAMES),
        "sex_name": i18n.named(lang, i18n.SEX_NAMES),
        "event_name": i18n.named(lang, i18n.EVENT_NAMES),
        "notification_name": i18n.named(lang, i18n.NOTIFICATION_NAMES),
        "payment_name": i18n.named(lang, i18n.PAYMENT_NAMES),
        # "X (Y)": full-width brackets in Chinese, no space before them.
        "paren": lambda value: f"（{value}）" if lang.is_zh else f" ({value})",
        "plan_name": _plan_namer(page),
        "media_name": lambda media_type: i18n.MEDIA_NAMES.get(media_type, media_type),
        "signal_label": lambda code: i18n.signal_label(lang, str(code)),
        "staff_name": _staff_namer(page),
        "period_state_name": i18n.named(lang, i18n.PERIOD_STATE_NAMES),
        "plan_status_name": i18n.named(lang, i18n.PLAN_STATUS_NAMES),
        "subject_name": i18n.named(lang, i18n.SUBJECT_NAMES),
        "verify_check": lambda check: i18n.verify_check(lang, check),
        "leaf_name": i18n.named(lang, i18n.LEAF_NAMES),
        "leaf_field_name": i18n.named(lang, i18n.LEAF_FIELD_NAMES),
        "leaf_word": lambda value: i18n.leaf_value(lang, str(value)),
        "check_expression": lambda name, expression: i18n.check_expression(lang, name, expression),
        "zone_name": lambda z=None: lang.zone_name(z or zone),
        "say": lambda message: lang.note(message, zone) if message else "",
        "csrf_field": CSRF_FIELD,
        "csrf_token": page.csrf_token,
        "form_key": lambda: secrets.token_urlsafe(16),
        "confirmation": lang.gettext(CONFIRMATIONS[ok]) if ok in CONFIRMATIONS else None,
        "locales": i18n.LOCALE_NAMES,
        "here": page.request.url.path
        + (f"?{page.request.url.query}" if page.request.url.query else ""),
        "switch_lang": lambda code: _switch_url(page, code),
        "zone": zone,
        "unread": unread_count(page.ctx, page.actor.account_id) if page.actor else 0,
        **extra,
    }


def _switch_url(page: PageState, code: str) -> str:
    params = [(k, v) for k, v in page.request.query_params.multi_items() if k not in ("lang", "ok")]
    params.append(("lang", code))
    return f"{page.request.url.path}?{urlencode(params)}"


def render(page: PageState, template: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        page.request, template, context_for(page, extra), status_code=status_code
    )


def render_form(
    page: PageState,
    template: str,
    error: DomainError,
    *,
    rules: PlanRules | None = None,
    **extra: Any,
) -> HTMLResponse:
    """Show a form again with the refusal next to the field it names, and what was typed."""
    problems = page.lang.problems(error, rules, rules.zone if rules else None)
    by_field: dict[str, list[str]] = {}
    for problem in problems:
        by_field.setdefault(problem.field or "", []).append(problem.message)
    status = 429 if error.status == 429 else 422
    if rules is not None:
        extra["rules"] = rules
    response = render(
        page,
        template,
        status_code=status,
        problems=problems,
        errors=by_field,
        values=page.values(),
        **extra,
    )
    if status == 429 and "retry_after_s" in error.details:
        response.headers["Retry-After"] = str(error.details["retry_after_s"])
    return response


def chosen_plan(page: PageState, plans: Sequence[PlanSummary]) -> str:
    """The plan a console page shows: the one asked for (?plan=), else the one with most members."""
    asked = page.request.query_params.get("plan")
    if asked:
        return asked
    return max(plans, key=lambda p: p.active_members).plan.code if plans else ""


def redirect(url: str, ok: str | None = None) -> RedirectResponse:
    if ok:
        url += ("&" if "?" in url else "?") + f"ok={ok}"
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, error: DomainError) -> Response:
    page: PageState | None = request.scope.get(PAGE_KEY)
    if page is None:
        return HTMLResponse(
            f"<!doctype html><title>{error.status}</title><p>{error.code}</p>",
            status_code=error.status,
        )
    lang = page.lang
    titles = {
        401: i18n.N_("Please log in"),
        403: i18n.N_("Not allowed"),
        404: i18n.N_("Not found"),
        429: i18n.N_("Too many attempts"),
    }
    fallback = i18n.N_("That did not work")
    title = lang.gettext(titles.get(error.status, fallback))
    return render(
        page,
        "error.html",
        status_code=error.status,
        title=title,
        message=lang.explain_error(error),
        error_code=error.code,
    )


class PageRoute(APIRoute):
    """Refusals become pages: not logged in → the login page; a DomainError → a page in the reader's
    language with its status; anything else → a plain apology (logged, no stack trace shown)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            except DomainError as error:
                response = await run_in_threadpool(error_page, request, error)
            except RequestValidationError:
                response = await run_in_threadpool(
                    error_page, request, NotFound("not_found", "there is no such page")
                )
            except Exception:
                log.exception("page_error", path=request.url.path)
                response = await run_in_threadpool(
                    error_page,
                    request,
                    DomainError(
                        "internal_error", "something went wrong on our side; nothing was changed"
                    ),
                )
                response.status_code = 500
            finally:
                page: PageState | None = request.scope.get(PAGE_KEY)
                if page is not None and page.form is not None:
                    await page.form.close()
            if page is not None:
                page.apply_cookies(response)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page_handler


def page_router() -> APIRouter:
    """A router for web pages: HTML errors, CSRF on every unsafe request, not in the API docs."""
    return APIRouter(
        route_class=PageRoute,
        include_in_schema=False,
        dependencies=[Depends(page_state), Depends(csrf_protect)],
        default_response_class=HTMLResponse,
    )
