"""The age-out move (issue 19): from 59 a member of the main plan opts in to move into the
elderly cancer plan when they age out at 60."""

from __future__ import annotations

from datetime import date

import pytest
from tests.api.calls import Api, enrollment

pytestmark = pytest.mark.usefixtures("plans")

TODAY = date(2026, 3, 1)  # the clock fixture's date in Shanghai


def _path(membership_id: int) -> str:
    return f"/api/v1/memberships/{membership_id}/age-out-move"


def test_a_member_of_59_opts_in_and_out_of_the_move_into_the_elderly_plan(api: Api) -> None:
    headers = api.member()
    membership = api.join(headers, date(1966, 9, 1))  # 59, ages out on 1 September 2026

    before = api.client.get(_path(membership["id"]), headers=headers)
    assert before.status_code == 200, before.text
    assert before.json() | {"opt_in_from_on": None} == {
        "membership_id": membership["id"],
        "to_plan_code": "xhb-elderly-cancer",
        "opted_in": False,
        "opt_in_from_on": None,
        "moves_on": "2026-09-01",
        "opted_in_at": None,
        "moved_to_membership_id": None,
        "moved_at": None,
    }
    assert before.json()["opt_in_from_on"] == "2025-09-01"

    chosen = api.client.put(_path(membership["id"]), headers=headers, json={"opted_in": True})
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["opted_in"] is True
    assert api.client.get(_path(membership["id"]), headers=headers).json()["opted_in"] is True

    undone = api.client.put(_path(membership["id"]), headers=headers, json={"opted_in": False})
    assert undone.json()["opted_in"] is False


def test_opting_in_before_59_is_refused(api: Api) -> None:
    headers = api.member()
    membership = api.join(headers, date(1990, 5, 1))

    response = api.client.put(_path(membership["id"]), headers=headers, json={"opted_in": True})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "move_opt_in_too_early"
    assert error["details"] == {"age": 59, "from_on": "2049-05-01"}


def test_a_plan_without_a_move_and_someone_elses_membership_are_refused(api: Api) -> None:
    headers = api.member()
    elderly = api.client.post(
        "/api/v1/plans/xhb-elderly-cancer/memberships",
        headers=headers,
        json=enrollment(
            date(1960, 1, 1),
            plan="xhb-elderly-cancer",
            health_answers={"tumour": False, "long_hospital_stay": False},
        ),
    )
    assert elderly.status_code == 201, elderly.text

    response = api.client.get(_path(elderly.json()["id"]), headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "no_age_out_move")

    stranger = api.client.get(_path(elderly.json()["id"]), headers=api.member())
    assert stranger.status_code == 404
