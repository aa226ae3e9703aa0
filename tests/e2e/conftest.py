"""Browser tests: the real app served by uvicorn on 127.0.0.1 (a background thread, over the test's
database and its movable clock), driven by Debian's chromium through Playwright.

Screenshots go to test-artifacts/screenshots/<test>/ at a phone size (390×844) and a desktop size
(1280×800); the folder is kept after the run (git-ignored) for people to look at.

Every page a test's browser shows is audited by axe-core (tests/e2e/accessibility.py): a violation
fails that test once its body has run, naming the page, the rule and the elements.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect
from tests.e2e.accessibility import AxeWatch
from tests.factories import PASSWORD, STAFF_TOTP_SECRET, staff_code
from tests.live_servers import served

from mutualaid.api.app import create_app
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import register_account
from mutualaid.services.accounts.second_factors import enrol_with_secret
from mutualaid.services.context import ServiceContext

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    #: The app's services: its clock tells a staff member's authenticator code.
    ctx: ServiceContext


@pytest.fixture
def live_server(ctx: ServiceContext) -> Iterator[LiveServer]:
    # The flows move the clock by months; sessions must outlive that like a member's phone does.
    ctx.token_ttl_hours = 24 * 365
    with served(create_app(ctx), "the test server") as app:
        yield LiveServer(app.url, app.server, app.thread, ctx)


@pytest.fixture(scope="session")
def session_browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian's chromium is not installed: run `make browser` (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    # A loaded CI machine with two cores is slower than a laptop: wait a little longer.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class AuditedBrowser:
    """The session's browser as one test sees it: each context it opens is watched by axe."""

    def __init__(self, browser: Browser, watch: AxeWatch) -> None:
        self.browser, self.watch = browser, watch

    def new_context(self, **options: Any) -> BrowserContext:
        javascript = options.get("java_script_enabled", True)
        return self.watch.watch(self.browser.new_context(**options), javascript=javascript)


@pytest.fixture
def axe_watch() -> AxeWatch:
    return AxeWatch()


@pytest.fixture
def chromium(session_browser: Browser, axe_watch: AxeWatch) -> AuditedBrowser:
    return AuditedBrowser(session_browser, axe_watch)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test body passed: the pages its browser still shows are audited, and what axe found
    on any page it visited fails the test (a failure of this test, never a teardown error)."""
    result = yield
    watch = getattr(item, "funcargs", {}).get("axe_watch")
    if isinstance(watch, AxeWatch):
        watch.finish()
    return result


@dataclass
class Shots:
    """Screenshots of one test, numbered in the order they were taken."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: object, name: str) -> None:
        from playwright.sync_api import Page

        assert isinstance(page, Page)
        number = len(self.taken) // 2 + 1
        slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(size)
            path = self.folder / f"{number:02d}-{slug}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            self.taken.append(path)
        page.set_viewport_size(PHONE)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")
    folder = SCREENSHOTS / slug
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(folder)


class Person:
    """One person at one phone: their own browser context (cookies), language and screenshots."""

    def __init__(
        self,
        browser: Browser | AuditedBrowser,
        server: LiveServer,
        lang: str,
        shots: Shots,
        name: str,
    ) -> None:
        self.context: BrowserContext = browser.new_context(viewport=PHONE, locale="zh-CN")
        self.context.set_default_timeout(20_000)
        self.page: Page = self.context.new_page()
        self.server, self.lang, self.shots, self.name = server, lang, shots, name
        self.page.goto(f"{server.url}/?lang={lang}")

    def go(self, path: str) -> Page:
        self.page.goto(self.server.url + path)
        return self.page

    def shot(self, step: str) -> None:
        self.shots(self.page, f"{self.name}-{step}")

    def submit(self, form: str, button: str = "button[type=submit]") -> None:
        with self.page.expect_navigation():
            self.page.locator(f"{form} {button}").first.click()

    def log_in(self, phone: str) -> None:
        self.go("/login")
        self.page.fill("#f-phone", phone)
        self.page.fill("#f-password", PASSWORD)
        self.submit("form[action='/login']")
        if "/second-factor" in self.page.url:  # staff: the authenticator code
            self.page.fill("#f-code", staff_code(self.server.ctx))
            self.submit("form[action='/second-factor']")

    def close(self) -> None:
        self.context.close()


def staff_phone(ctx: ServiceContext, role: Role, phone: str) -> str:
    view = register_account(ctx, phone, PASSWORD, role=role, display_name=f"{role} {phone[-2:]}")
    enrol_with_secret(ctx, view.id, STAFF_TOTP_SECRET)
    return phone
