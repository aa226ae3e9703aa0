"""The text of an outbound message: one Jinja2 template per event and language.

Templates live with the project's catalogs, ``mutualaid/locales/<locale>/messages/<event>.txt``:
the first line is the subject (an SMS gets it as its first line), the rest the body. ``claim_*``
notices share ``claim.txt``; an event without a template of its own gets ``notice.txt``, which
points to the member's notices page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, TemplateNotFound

from mutualaid.domain.money import format_yuan

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locales"
LOCALES = ("zh_CN", "en")


@dataclass(frozen=True, slots=True)
class Text:
    subject: str
    body: str


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(LOCALE_DIR)),
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=False,
    )
    env.globals["yuan"] = lambda fen: format_yuan(int(fen or 0), symbol=True, grouping=True)
    return env


def _path_of(kind: str, payload: Mapping[str, Any]) -> str:
    """The page of the member's site a message points to."""
    if kind.startswith("claim_") and payload.get("ref"):
        return f"/claims/{payload['ref']}"
    if kind == "jury_vote_open":
        return "/jury"
    if kind in {"share_payment_failed", "prepaid_balance_low"}:
        return "/me/payments"  # the amount to pay, "pay now" and the top-up form
    if kind in {
        "account_registered",
        "membership_joined",
        "membership_removed",
        "membership_reinstated",
    }:
        # The member's page: memberships and cover.
        return "/me"
    return "/me/notifications"


def render(kind: str, payload: Mapping[str, Any], locale: str, public_url: str) -> Text:
    locale = locale if locale in LOCALES else LOCALES[0]
    values = dict(payload)
    values.setdefault("link", public_url.rstrip("/") + _path_of(kind, payload))
    if kind.startswith("claim_"):
        values["state"] = kind.removeprefix("claim_")
    env = _environment()
    names = ["claim"] if kind.startswith("claim_") else [kind]
    try:
        template = env.select_template([f"{locale}/messages/{name}.txt" for name in names])
    except TemplateNotFound:
        template = env.get_template(f"{locale}/messages/notice.txt")
    subject, _, body = template.render(values).strip().partition("\n")
    return Text(subject.strip(), body.strip())
