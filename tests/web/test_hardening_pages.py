"""Issue #13 finding 8 on the pages: integers beyond 64 bits, NUL in multipart text fields and a form
field over 1 MB are refused with a 4xx, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.factories import covered_member
from tests.web.conftest import Browser, csrf, phone_of

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext

HUGE = "99999999999999999999"


@pytest.fixture
def covered(ctx: ServiceContext, clock: FixedClock, client: TestClient) -> tuple[Browser, int]:
    holder, membership = covered_member(ctx, clock)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, holder.account_id))
    return browser, membership.id


@pytest.mark.parametrize(
    "path",
    [
        f"/jury/cases/{HUGE}",
        f"/me/memberships/{HUGE}/leave",
        f"/me/statement/{HUGE}/2026-03-07",
    ],
)
def test_an_id_beyond_64_bits_in_a_page_address_is_no_such_page(
    member_browser: Browser, path: str
) -> None:
    answer = member_browser.get(path)
    assert answer.status_code == 404
    assert "未找到" in answer.text


def test_a_member_id_beyond_64_bits_in_the_claim_form_is_a_form_error(
    covered: tuple[Browser, int], clock: FixedClock
) -> None:
    browser, _ = covered
    answer = browser.submit(
        "/claims/new",
        "/claims/new",
        {
            "membership_id": HUGE,
            "illness_code": "CI01",
            "diagnosed_on": (clock.now().date() - timedelta(days=2)).isoformat(),
            "hospital": "医院",
        },
    )
    assert answer.status_code == 422
    assert "请选择患病的成员" in answer.text


def test_a_nul_in_a_multipart_text_field_is_refused(
    covered: tuple[Browser, int], clock: FixedClock
) -> None:
    browser, membership_id = covered
    page = browser.get("/claims/new")
    answer = browser.client.post(
        "/claims/new",
        data={
            "csrf_token": csrf(page.text),
            "membership_id": str(membership_id),
            "illness_code": "CI01",
            "diagnosed_on": (clock.now().date() - timedelta(days=2)).isoformat(),
            "hospital": "医\x00院",
        },
        files={"file": ("a.txt", b"hello", "text/plain")},
        follow_redirects=False,
    )
    assert answer.status_code == 422
    assert "空字符" in answer.text


def test_a_form_field_over_one_megabyte_is_refused_before_it_is_read(browser: Browser) -> None:
    answer = browser.client.post(
        "/login",
        data={"phone": "1" * (1024 * 1024 + 10), "password": "x"},
        follow_redirects=False,
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"
