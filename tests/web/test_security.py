"""CSRF on every form, secure session cookies, login rate limiting, role checks on every page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.factories import PASSWORD, account
from tests.web.conftest import Browser, csrf, phone_of

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import authenticate
from mutualaid.services.context import ServiceContext
from mutualaid.web import claims, juries, members, public, staff
from mutualaid.web.pages import PageRoute


def test_a_form_without_its_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/register")
    response = client.post(
        "/register", data={"phone": "13900001111", "password": PASSWORD, "password_again": PASSWORD}
    )
    assert response.status_code == 403
    assert "csrf" not in response.text.lower() or "表单已过期" in response.text


def test_a_csrf_token_from_another_browser_is_refused(ctx: ServiceContext, plans: None) -> None:
    app = create_app(ctx)
    with (
        TestClient(app, base_url="http://localhost") as mine,
        TestClient(app, base_url="http://localhost") as theirs,
    ):
        stolen = csrf(theirs.get("/register").text)
        mine.get("/register")
        response = mine.post(
            "/register",
            data={
                "csrf_token": stolen,
                "phone": "13900001111",
                "password": PASSWORD,
                "password_again": PASSWORD,
            },
        )
    assert response.status_code == 403


def test_the_csrf_header_is_accepted_for_script_requests(browser: Browser) -> None:
    token = csrf(browser.get("/login").text)
    response = browser.client.post(
        "/logout", headers={"X-CSRF-Token": token}, follow_redirects=False
    )
    assert response.status_code == 303


def test_every_unsafe_page_route_checks_the_csrf_token(client: TestClient) -> None:
    """No POST/PUT page route answers anything but 403 without a token (nothing is changed)."""
    client.get("/")
    routes = [r for r in page_routes() if r.methods & {"POST", "PUT", "PATCH", "DELETE"}]
    assert len(routes) > 20
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x", route.path).replace("/x/x", "/2026-07-07/x")
        for method in route.methods & {"POST", "PUT"}:
            response = client.request(method, path, data={"a": "b"}, follow_redirects=False)
            assert response.status_code == 403, (method, route.path, response.status_code)


def test_the_session_cookie_is_http_only_same_site_and_secure_off_localhost(
    ctx: ServiceContext, plans: None
) -> None:
    actor = account(ctx)
    app = create_app(ctx)
    with TestClient(app, base_url="https://mutualaid.example") as client:
        token = csrf(client.get("/login").text)
        response = client.post(
            "/login",
            data={
                "csrf_token": token,
                "phone": phone_of(ctx, actor.account_id),
                "password": PASSWORD,
            },
            follow_redirects=False,
        )
    assert response.status_code == 303
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("ma_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie


def test_logging_out_ends_the_session_everywhere(ctx: ServiceContext, browser: Browser) -> None:
    actor = account(ctx)
    browser.log_in(phone_of(ctx, actor.account_id))
    token = browser.client.cookies["ma_session"]
    assert authenticate(ctx, token).account_id == actor.account_id
    browser.submit("/me", "/logout", {})
    with pytest.raises(Exception, match="log in again"):
        authenticate(ctx, token)
    assert browser.get("/me", follow_redirects=False).headers["location"].startswith("/login")


def test_logins_are_refused_after_five_failures_for_a_phone_for_fifteen_minutes(
    ctx: ServiceContext, clock: FixedClock, browser: Browser
) -> None:
    phone = phone_of(ctx, account(ctx).account_id)
    for _ in range(5):
        wrong = browser.submit("/login", "/login", {"phone": phone, "password": "not it at all"})
        assert wrong.status_code == 422
        assert "手机号码或密码错误" in wrong.text
    refused = browser.submit("/login", "/login", {"phone": phone, "password": PASSWORD})
    assert refused.status_code == 429
    assert "登录失败次数过多" in refused.text
    # Another phone from the same address is not blocked by this phone's failures.
    other = phone_of(ctx, account(ctx).account_id)
    assert (
        browser.submit("/login", "/login", {"phone": other, "password": PASSWORD}).status_code
        == 303
    )
    clock.advance(timedelta(minutes=16))
    assert (
        browser.submit("/login", "/login", {"phone": phone, "password": PASSWORD}).status_code
        == 303
    )


def test_after_login_only_local_pages_are_followed(ctx: ServiceContext, browser: Browser) -> None:
    phone = phone_of(ctx, account(ctx).account_id)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = browser.submit(
            f"/login?next={target}",
            "/login",
            {"phone": phone, "password": PASSWORD, "next": target},
        )
        assert response.headers["location"].startswith("/me"), target


ANONYMOUS_ALLOWED = re.compile(r"^/($|plans/|notices|transparency|verify/|login|register|static)")


def page_routes() -> list[APIRoute]:
    routes = [
        r for module in (public, members, claims, juries, staff) for r in module.router.routes
    ]
    assert all(isinstance(r, PageRoute) for r in routes)
    return routes  # type: ignore[return-value]


def _sample_paths(client: TestClient) -> list[str]:
    paths = []
    for route in page_routes():
        if "GET" in route.methods:
            path = route.path.replace("{publicity_on}", "2026-07-07")
            paths.append(re.sub(r"\{[^}:]+(:path)?\}", "1", path))
    return paths


def test_pages_that_need_an_account_send_anonymous_visitors_to_log_in(client: TestClient) -> None:
    private = [p for p in _sample_paths(client) if not ANONYMOUS_ALLOWED.match(p)]
    assert len(private) > 15
    for path in private:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path


def test_members_are_refused_every_staff_page(client: TestClient, member_browser: Browser) -> None:
    staff_pages = [p for p in _sample_paths(client) if p.startswith("/staff")]
    assert len(staff_pages) > 8
    for path in staff_pages:
        response = member_browser.get(path, follow_redirects=False)
        assert response.status_code == 403, path
        assert "无权访问" in response.text


@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.REVIEWER])
def test_the_operators_desk_and_the_audit_log_are_refused_to_other_staff(
    ctx: ServiceContext, browser: Browser, role: Role
) -> None:
    browser.log_in(phone_of(ctx, account(ctx, role).account_id))
    for path in (
        "/staff/audit",
        "/staff/operations",
        "/staff/dashboard",
        "/staff/plans/xhb-main",
        "/staff/plans/xhb-main/periods",
    ):
        assert browser.get(path).status_code == 403, path
    assert browser.get("/staff").status_code == 200


def test_staff_pages_refuse_members_pages_meant_for_members(
    ctx: ServiceContext, browser: Browser
) -> None:
    browser.log_in(phone_of(ctx, account(ctx, Role.OPERATOR).account_id))
    for path in ("/claims/new", "/jury", "/plans/xhb-main/join"):
        assert browser.get(path).status_code == 403, path


def test_pages_carry_security_headers(client: TestClient) -> None:
    response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
