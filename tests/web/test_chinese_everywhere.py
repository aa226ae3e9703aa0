"""Every page a person can reach reads in Chinese: a crawl of the app in zh_CN as each role, over a
plan that has lived (tests/builders/lived_in.py), fails on English words a reader would see.

What a page may show in Latin letters is listed here: codes and hashes people copy, amounts and
units, brand and format names. Everything else is prose that needs a translation (or a value that
should be shown by its name: a plan's name rather than its code, a role's name rather than its key).
"""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.builders.lived_in import LivedIn, lived_in
from tests.web.conftest import Browser, phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext

#: Words that are the same in Chinese copy: brands, formats, units, standards.
ALLOWED_WORDS = {
    "mutualaid",
    "API",
    "PDF",
    "JPEG",
    "PNG",
    "WEBP",
    "HEIC",
    "CSV",
    "JSON",
    "TOML",
    "UTF",
    "SHA",
    "UTC",
    "MB",
    "KB",
    "GB",
    "ID",
    "Merkle",
    "Ed25519",
    "TOTP",
    "OIDC",
    "HTTPS",
    "URL",
    "htmx",
    "axe",
    "Chrome",
    "Google",
    "Authenticator",
    "Microsoft",
    "English",
    "ICD",
}
#: Values a page shows as they are: claim refs, period refs, hashes, keys, ids, dates in ISO.
ALLOWED_PATTERNS = [
    re.compile(r"\bC\d{4}-[0-9A-F]{8}\b"),  # claim reference
    re.compile(r"\b[0-9a-f]{16,}\b", re.I),  # hashes
    re.compile(r"[A-Za-z0-9+/=]{32,}"),  # base64 keys and signatures
    re.compile(r"\bxhb-[a-z]+(/\d{4}-\d{2}-\d{2})?\b"),  # plan codes inside period refs
    re.compile(r"\bm-\d+\b"),  # membership subject refs
    re.compile(r"\bmutualaid\.example/log\b"),  # the log's origin
    re.compile(r"\b[A-Z]{1,3}\d{2}(\.\d+)?\b"),  # illness and ICD codes
    re.compile(r"\bv\d+(\.\d+)*\b"),  # versions
    re.compile(r"\b\d+(\.\d+)?\s?[KMG]?B\b"),  # sizes
]
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")
SKIPPED_TAGS = {"script", "style", "code", "pre", "kbd", "samp", "svg", "template"}
SHOWN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")
#: Pages not to follow: downloads, language switches, the API's own docs, logging out.
NOT_FOLLOWED = re.compile(
    r"(\.json|\.csv|/file|/bundle\.json|/docs|/redoc|/openapi|/static/|/api/|lang=|/logout|/oidc/)"
)
MAX_PAGES = 60


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.links: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in SKIPPED_TAGS or "translate" in values and values["translate"] == "no":
            self._skipping.append(tag)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        if not self._skipping:
            self.texts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)
            if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
                self.texts.append(values["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.texts.append(" ".join(data.split()))


def english_in(text: str) -> list[str]:
    for pattern in ALLOWED_PATTERNS:
        text = pattern.sub(" ", text)
    return [w for w in LATIN_WORD.findall(text) if w not in ALLOWED_WORDS]


def crawl(browser: Browser, starts: list[str]) -> dict[str, list[str]]:
    """English words on each page reachable from `starts` (GET, same site), by page."""
    seen: set[str] = set()
    queue = deque(starts)
    found: dict[str, list[str]] = {}
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        path = urlsplit(url).path
        # One page per route shape is enough (every claim page is the same template).
        shape = re.sub(r"\d{4}-\d{2}-\d{2}|C\d{4}-[0-9A-F]{8}|\d+", "N", path)
        if shape in seen:
            continue
        seen.add(shape)
        response = browser.get(url)
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        parser = _Text()
        parser.feed(response.text)
        words = sorted({word for text in parser.texts for word in english_in(text)})
        if words:
            found[url] = [
                text for text in dict.fromkeys(parser.texts) if english_in(text)
            ][:12]
        for href in parser.links:
            link, _ = urldefrag(href)
            if link.startswith("/") and not link.startswith("//") and not NOT_FOLLOWED.search(link):
                queue.append(link)
    return found


@pytest.fixture
def world(ctx: ServiceContext, clock: FixedClock, client: TestClient) -> LivedIn:
    return lived_in(ctx, clock)


START_PAGES = {
    None: ["/", "/notices", "/transparency", "/verify/charge", "/login", "/register"],
    Role.MEMBER: ["/me", "/me/statement", "/me/notifications", "/jury", "/claims/new"],
    Role.REVIEWER: ["/staff", "/staff/objections", "/staff/risk"],
    Role.INVESTIGATOR: ["/staff"],
    Role.OPERATOR: ["/staff", "/staff/dashboard", "/staff/plans/xhb-main/periods", "/staff/audit"],
    Role.AUDITOR: ["/staff/reports", "/staff/audit"],
}


@pytest.mark.parametrize("role", list(START_PAGES), ids=lambda r: str(r or "public"))
def test_every_page_reads_in_chinese(
    ctx: ServiceContext, client: TestClient, world: LivedIn, role: Role | None
) -> None:
    browser = Browser(client)
    starts = list(START_PAGES[role])
    if role is not None:
        browser.log_in(phone_of(ctx, world.accounts[role].account_id))
    if role is None:
        starts += [
            "/plans/xhb-main",
            "/plans/xhb-main/notices",
            f"/plans/xhb-main/periods/{world.closed_on}",
            f"/verify/claim/{world.publicity_ref}",
        ]
    if role is Role.MEMBER:
        starts += [f"/claims/{world.paid_ref}", f"/me/statement/{world.member_membership_id}/"
                   f"{world.closed_on}"]
    if role in (Role.REVIEWER, Role.OPERATOR):
        starts += [f"/staff/claims/{world.rejected_ref}", f"/staff/claims/{world.publicity_ref}"]
    found = crawl(browser, starts)
    assert not found, "\n".join(f"{url}: {texts}" for url, texts in found.items())
