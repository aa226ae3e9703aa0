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
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
from fastapi.testclient import TestClient
from tests.builders.lived_in import LivedIn, lived_in
from tests.factories import PASSWORD
from tests.web.conftest import Browser, csrf, phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import register_account
from mutualaid.services.accounts.second_factors import current_code
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
    "FreeOTP",
    "English",
    "ICD",
    "RFC",
    "TNM",
}
#: Values a page shows as they are: claim refs, period refs, hashes, keys, ids, dates in ISO.
ALLOWED_PATTERNS = [
    re.compile(r"\bC\d{4}-[0-9A-Z]{4,8}\b"),  # claim reference (as typed, too)
    re.compile(r"\b[0-9a-f]{16,}\b", re.I),  # hashes
    re.compile(r"[A-Za-z0-9+/=]{32,}"),  # base64 keys and signatures
    re.compile(r"\b[a-z]+(-[a-z]+)*/\d{4}-\d{2}-\d{2}\b"),  # period refs (plan/date)
    re.compile(r"\bm-\d+\b"),  # membership subject refs
    re.compile(r"\b[a-z.]+\.example/log(\+[0-9a-f]{8})?"),  # the log's origin and key name
    re.compile(r"\bmutualaid [a-z-]+"),  # a command to type
    re.compile(r"\b[A-Z]{1,3}\d{2}(\.\d+)?\b"),  # illness and ICD codes
    re.compile(r"\bv\d+(\.\d+)*\b"),  # versions
    re.compile(r"\b\d+(\.\d+)?\s?[KMG]?B\b"),  # sizes
]
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]")
#: Not prose: code, and what people typed or pasted (a plan file in its editor).
SKIPPED_TAGS = {"script", "style", "code", "pre", "kbd", "samp", "svg", "template", "textarea"}
SHOWN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt", "label")
#: Pages not to follow: downloads, language switches, the API's own docs, logging out.
NOT_FOLLOWED = re.compile(
    r"(\.json|\.csv|/file|/bundle\.json|/docs|/redoc|/openapi|/static/|/api/|lang=|/logout|/oidc/)"
)
MAX_PAGES = 60
TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "mutualaid" / "web" / "templates"
#: How a template pulls in another (a layout, macros, a partial): rendered with the page.
REFERENCE = re.compile(r"""{%-?\s*(?:extends|include|import|from)\s+["']([^"']+)["']""")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.links: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in SKIPPED_TAGS or ("translate" in values and values["translate"] == "no"):
            self._skipping.append(tag)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        if not self._skipping:
            self.texts.extend(v for k, v in attrs if k in SHOWN_ATTRIBUTES and v)
            if (
                tag == "input"
                and values.get("type") in ("submit", "button")
                and values.get("value")
            ):
                self.texts.append(values["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.texts.append(" ".join(data.split()))


#: A person shown as a bare number ("#3").
BARE_NUMBER = re.compile(r"(?<![&\w])#\d+")


def english_in(text: str) -> list[str]:
    """English words (and bare "#3" numbers) in a text a reader sees."""
    bare = BARE_NUMBER.findall(text)
    for pattern in ALLOWED_PATTERNS:
        text = pattern.sub(" ", text)
    return bare + [w for w in LATIN_WORD.findall(text) if w not in ALLOWED_WORDS]


def english_on(html: str) -> tuple[list[str], list[str]]:
    """The texts of a page that hold English words, and the page's links."""
    parser = _Text()
    parser.feed(html)
    return [text for text in dict.fromkeys(parser.texts) if english_in(text)], parser.links


def crawl(browser: Browser, starts: list[str]) -> tuple[dict[str, list[str]], set[str], set[str]]:
    """English words on each page reachable from `starts` (GET, same site), by page; the pages
    read and the templates that rendered them."""
    seen: set[str] = set()
    queue = deque(starts)
    found: dict[str, list[str]] = {}
    read: set[str] = set()
    templates: set[str] = set()
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
        read.add(url)
        template = getattr(response, "template", None)
        if template is not None:
            templates.add(template.name)
        texts, links = english_on(response.text)
        if texts:
            found[url] = texts[:12]
        for href in links:
            link, _ = urldefrag(href)
            if link.startswith("/") and not link.startswith("//") and not NOT_FOLLOWED.search(link):
                queue.append(link)
    return found, read, templates


@pytest.fixture
def world(ctx: ServiceContext, clock: FixedClock, client: TestClient) -> LivedIn:
    return lived_in(ctx, clock)


#: At least this many pages are read per role (a crawl that stops early proves nothing).
MIN_PAGES = {
    None: 10,
    Role.MEMBER: 8,
    Role.REVIEWER: 8,
    Role.INVESTIGATOR: 4,
    Role.OPERATOR: 12,
    Role.AUDITOR: 6,
}
START_PAGES = {
    None: ["/", "/notices", "/transparency", "/verify/charge", "/login", "/register"],
    Role.MEMBER: ["/me", "/me/statement", "/me/notifications", "/jury", "/jury/certification"],
    Role.REVIEWER: ["/staff", "/staff/objections", "/staff/risk", "/me"],
    Role.INVESTIGATOR: ["/staff"],
    Role.OPERATOR: [
        "/staff",
        "/staff/dashboard",
        "/staff/plans/xhb-main/periods",
        "/staff/audit",
        "/staff/notifications",
    ],
    Role.AUDITOR: ["/staff/reports", "/staff/audit"],
}


def _starts(world: LivedIn, role: Role | None) -> list[str]:
    starts = list(START_PAGES[role])
    if role is None:
        starts += [
            "/plans/xhb-main",
            "/plans/xhb-main/notices",
            f"/plans/xhb-main/periods/{world.closed_on}",
            f"/verify/claim/{world.publicity_ref}",
            "/no-such-page",
        ]
    if role is Role.MEMBER:
        starts += [
            f"/claims/{world.paid_ref}",
            f"/me/statement/{world.member_membership_id}/{world.closed_on}",
            "/claims/C0000-NOPE",
            "/claims/new",
        ]
    if role in (Role.REVIEWER, Role.OPERATOR):
        starts += [f"/staff/claims/{world.rejected_ref}", f"/staff/claims/{world.publicity_ref}"]
    if role is Role.OPERATOR:
        starts += [
            "/staff/simulate?plan=xhb-main&scenarios=5&periods=3&run=1",
            f"/staff/payouts/{world.paid_ref}/release",  # paid already: nothing to release
        ]
    return starts


def test_every_page_reads_in_chinese_as_every_role(
    ctx: ServiceContext, client: TestClient, world: LivedIn
) -> None:
    rendered: set[str] = set()
    problems: list[str] = []
    for role in START_PAGES:
        browser = Browser(client)
        client.cookies.clear()
        if role is not None:
            browser.log_in(phone_of(ctx, world.accounts[role].account_id))
        found, read, templates = crawl(browser, _starts(world, role))
        rendered |= templates
        assert len(read) >= MIN_PAGES[role], (role, sorted(read))
        problems += [f"{role or 'public'} {url}: {texts}" for url, texts in found.items()]
    found, templates = second_factor_pages(ctx, client)
    rendered |= templates
    problems += [f"staff {url}: {texts}" for url, texts in found.items()]
    assert not problems, "\n".join(problems)
    every = {str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")}
    missed = sorted(every - with_included(rendered))
    assert not missed, f"no page read here rendered these templates: {missed}"


def second_factor_pages(
    ctx: ServiceContext, client: TestClient
) -> tuple[dict[str, list[str]], set[str]]:
    """A new reviewer's way in: setting up the authenticator, the recovery codes (shown once,
    after the POST), then the code step at the next sign-in. English on each page, and its
    templates."""
    phone = "10000000399"
    register_account(ctx, phone, PASSWORD, role=Role.REVIEWER, display_name="新审核员")
    client.cookies.clear()
    browser = Browser(client)
    found: dict[str, list[str]] = {}
    templates: set[str] = set()

    def read(url: str, response: Any) -> None:
        assert response.status_code == 200, (url, response.text[:500])
        templates.add(response.template.name)
        texts, _ = english_on(response.text)
        if texts:
            found[url] = texts[:12]

    login = browser.submit("/login", "/login", {"phone": phone, "password": PASSWORD})
    setup_url = login.headers["location"]
    assert setup_url.startswith("/second-factor/setup"), setup_url
    setup = browser.get(setup_url)
    read(setup_url, setup)
    secret = re.search(r"data-secret[^>]*>([A-Z2-7]+)<", setup.text)
    assert secret, "the setup page shows no secret key"
    code = current_code(secret.group(1), ctx.clock.now().timestamp())
    codes = client.post(
        setup_url,
        data={"csrf_token": csrf(setup.text), "code": code},
        follow_redirects=False,
    )
    read(setup_url + " (recovery codes)", codes)
    client.cookies.clear()
    login = browser.submit("/login", "/login", {"phone": phone, "password": PASSWORD})
    code_url = login.headers["location"]
    assert code_url.startswith("/second-factor?"), code_url
    read(code_url, browser.get(code_url))
    return found, templates


def with_included(rendered: set[str]) -> set[str]:
    """The templates rendered, with every template they extend, import or include."""
    done: set[str] = set()
    todo = list(rendered)
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        todo += REFERENCE.findall((TEMPLATES / name).read_text(encoding="utf-8"))
    return done
