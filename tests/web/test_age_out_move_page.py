"""The member page's toggle for the age-out move into the elderly plan (issue 19)."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from tests.factories import account, enroll
from tests.web.conftest import Browser, phone_of

from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.age_out_moves import age_out_move

pytestmark = pytest.mark.usefixtures("plans")


def test_a_member_of_59_chooses_the_move_on_her_page_and_changes_her_mind(
    ctx: ServiceContext, client: TestClient
) -> None:
    member = account(ctx, Role.MEMBER)
    older = enroll(ctx, member, date(1966, 9, 1))  # 59: ages out on 1 September 2026
    young = enroll(ctx, member, date(1995, 1, 1), relation="child", name="张小华")  # type: ignore[arg-type]
    browser = Browser(client)
    browser.log_in(phone_of(ctx, member.account_id))

    page = browser.get("/me").text
    assert f"/me/memberships/{older.id}/age-out-move" in page
    assert f"/me/memberships/{young.id}/age-out-move" not in page  # not 59 yet
    action = f"/me/memberships/{older.id}/age-out-move"

    chosen = browser.submit("/me", action, {"opted_in": "yes"})
    assert chosen.headers["location"] == "/me?ok=age_out_move"
    assert age_out_move(ctx, member, older.id).opted_in
    assert "转入计划xhb-elderly-cancer" in browser.get("/me").text

    undone = browser.submit("/me", action, {"opted_in": "no"})
    assert undone.headers["location"] == "/me?ok=age_out_move"
    assert not age_out_move(ctx, member, older.id).opted_in
