"""axe-core finds nothing on the main pages of each role (public, member, juror, reviewer,
operator, auditor) on a plan that has lived: on a phone (390×844) in Chinese and on a desktop
(1280×800) in English, with a screenshot of each page in test-artifacts/screenshots/. And the
check itself fails when a page breaks a rule.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import Browser
from tests.builders.lived_in import LivedIn, lived_in
from tests.e2e.accessibility import AXE, AxeWatch, report, violations
from tests.e2e.conftest import DESKTOP, PHONE, AuditedBrowser, LiveServer, Person, Shots
from tests.factories import publish_demo_plans
from tests.web.conftest import phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.juries.juries import jury_rounds

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: A page with no language, no landmark and an image without a text.
BAD = "<html><body><img src='/x.png'></body></html>"


def _pages(world: LivedIn, jury_id: int) -> dict[str, tuple[Role | None, list[str]]]:
    closed = world.closed_on.isoformat()
    return {
        "public": (
            None,
            [
                "/",
                "/plans/xhb-main",
                "/plans/xhb-main/notices",
                f"/plans/xhb-main/periods/{closed}",
                "/notices",
                "/transparency",
                f"/verify/claim/{world.publicity_ref}",
                "/verify/charge",
                "/login",
                "/register",
                "/no-such-page",
            ],
        ),
        "member": (
            Role.MEMBER,
            [
                "/me",
                f"/claims/{world.paid_ref}",
                "/claims/new",
                "/me/statement",
                f"/me/statement/{world.member_membership_id}/{closed}",
                "/me/notifications",
                "/plans/xhb-main/join",
            ],
        ),
        "juror": (Role.MEMBER, ["/jury", f"/jury/cases/{jury_id}", "/jury/certification"]),
        "reviewer": (
            Role.REVIEWER,
            [
                "/staff",
                f"/staff/claims/{world.rejected_ref}",
                f"/staff/claims/{world.publicity_ref}",
                "/staff/objections",
                "/staff/risk",
            ],
        ),
        "operator": (
            Role.OPERATOR,
            ["/staff/dashboard", "/staff/plans/xhb-main/periods", "/staff/audit"],
        ),
        "auditor": (Role.AUDITOR, ["/staff/reports"]),
    }


@pytest.mark.parametrize(
    ("lang", "size"), [("zh_CN", PHONE), ("en", DESKTOP)], ids=["phone-zh", "desktop-en"]
)
def test_the_main_pages_of_every_role_pass_axe(
    chromium: AuditedBrowser,
    live_server: LiveServer,
    clock: FixedClock,
    shots: Shots,
    lang: str,
    size: dict[str, int],
) -> None:
    ctx = live_server.ctx
    publish_demo_plans(ctx)
    world = lived_in(ctx, clock)
    jury_id = jury_rounds(ctx, world.rejected_ref)[0].id
    label = f"{'phone' if size == PHONE else 'desktop'}-{lang}"
    found = []
    read = 0
    for who, (role, paths) in _pages(world, jury_id).items():
        person = Person(chromium, live_server, lang, shots, who)
        person.page.set_viewport_size(size)
        if role is not None:
            person.log_in(phone_of(ctx, world.accounts[role].account_id))
        for path in paths:
            page = person.go(path)
            found += violations(page)
            read += 1
            slug = re.sub(r"[^a-z0-9]+", "-", f"{who} {path}".lower()).strip("-")[:60]
            page.screenshot(
                path=str(shots.folder / f"{read:02d}-{slug}-{label}.png"), full_page=True
            )
        person.close()
    assert read == 30
    assert not found, report(found)


def test_a_page_that_breaks_a_rule_fails_the_check(
    session_browser: Browser, live_server: LiveServer
) -> None:
    # The watch of this test's own pages stays clean: a watch of its own sees the bad page.
    watch = AxeWatch()
    context = watch.watch(session_browser.new_context(viewport=PHONE))
    page = context.new_page()
    page.goto(f"{live_server.url}/?lang=zh_CN")
    assert violations(page) == []
    # An image without a text, and a field without a label, put into the page after it loaded.
    page.evaluate(
        """() => document.querySelector('main').insertAdjacentHTML('beforeend',
        '<img id="bad-image" src="/static/favicon.ico"><input id="bad-field" type="text">')"""
    )
    rules = {(v.rule, v.targets) for v in violations(page)}
    assert ("image-alt", ("#bad-image",)) in rules
    assert ("label", ("#bad-field",)) in rules
    # A bad page the browser loads fails the test that visited it, with the page and the rule.
    page.route(
        "**/bad-page",
        lambda route: route.fulfill(content_type="text/html", body=BAD),
    )
    page.goto(f"{live_server.url}/bad-page")
    page.goto(f"{live_server.url}/?lang=zh_CN")
    context.close()
    with pytest.raises(AssertionError) as failed:
        watch.finish()
    message = str(failed.value)
    assert f"{live_server.url}/bad-page: [image-alt, critical]" in message
    assert "html-has-lang" in message
    assert "/?lang=zh_CN" not in message


def test_a_bad_page_served_without_javascript_fails_the_check_too(
    session_browser: Browser, live_server: LiveServer
) -> None:
    watch = AxeWatch()
    context = session_browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = watch.watch(context, javascript=False).new_page()
    page.route("**/bad-page", lambda route: route.fulfill(content_type="text/html", body=BAD))
    page.goto(f"{live_server.url}/?lang=zh_CN")
    page.goto(f"{live_server.url}/bad-page")
    context.close()
    with pytest.raises(AssertionError) as failed:
        watch.finish()
    assert f"{live_server.url}/bad-page: [image-alt, critical]" in str(failed.value)
    assert "/?lang=zh_CN" not in str(failed.value)


def test_the_vendored_axe_is_the_release_its_readme_names() -> None:
    readme = (AXE.parent / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(AXE.read_bytes()).hexdigest()
    assert digest in readme
    assert "axe-core 4.14.1" in readme
    assert AXE.read_text(encoding="utf-8").startswith("/*! axe v4.14.1\n")
