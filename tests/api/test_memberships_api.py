"""Joining a plan for oneself and one's family, retries, leaving and rejoining, waiting periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from tests.api.calls import JOIN_PATH, Api, enrollment
from tests.factories import HEALTHY, resident_id

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.identities import Sex

pytestmark = pytest.mark.usefixtures("plans")

JOIN = JOIN_PATH
TODAY = date(2026, 3, 1)  # the clock fixture's date in Shanghai


def _shanghai(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_a_member_enrolls_themself_and_starts_a_90_day_waiting_period(api: Api) -> None:
    headers = api.member()

    response = api.client.post(JOIN, headers=headers, json=enrollment(date(1990, 5, 1)))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["plan_code"] == "xhb-main"
    assert body["relation"] == "self"
    assert body["state"] == "waiting"
    assert body["name_masked"] == "张*华"
    assert body["joined_on"] == "2026-03-01"
    assert body["waiting_ends_on"] == "2026-05-30"
    assert body["covered_from_on"] == "2026-05-31"
    assert body["ages_out_on"] == "2050-05-01"
    assert "id_number" not in body and "张三华" not in response.text


def test_a_child_of_30_days_can_join(api: Api) -> None:
    headers = api.member()
    api.join(headers)

    child = api.join(headers, TODAY - timedelta(days=30), relation="child", full_name="张小雨")

    assert child["relation"] == "child"
    assert child["state"] == "waiting"


def test_a_child_of_29_days_is_too_young(api: Api) -> None:
    headers = api.member()

    response = api.client.post(
        JOIN,
        headers=headers,
        json=enrollment(TODAY - timedelta(days=29), relation="child", full_name="张小雨"),
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_young"
    assert error["field"] == "id_number"
    assert "2026-03-02" in error["message"]  # the day the child may join
    assert api.memberships(headers) == []


def test_a_member_enrolls_their_spouse_and_sees_both_memberships(api: Api) -> None:
    headers = api.member()
    own = api.join(headers)

    spouse = api.join(
        headers,
        id_number=resident_id(date(1991, 8, 8), Sex.FEMALE),
        relation="spouse",
        full_name="李芳",
    )

    assert spouse["relation"] == "spouse"
    assert spouse["name_masked"] == "李*"
    listed = api.memberships(headers)
    assert [(m["id"], m["relation"]) for m in listed] == [
        (own["id"], "self"),
        (spouse["id"], "spouse"),
    ]


def test_an_age_above_59_is_refused_as_too_old(api: Api) -> None:
    response = api.client.post(JOIN, headers=api.member(), json=enrollment(date(1966, 2, 28)))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_old"
    assert response.json()["error"]["field"] == "id_number"


def test_a_mistyped_id_number_is_refused_naming_the_id_number(api: Api) -> None:
    good = resident_id(date(1990, 5, 1))
    wrong_check_digit = good[:17] + ("0" if good[17] != "0" else "1")

    response = api.client.post(
        JOIN, headers=api.member(), json=enrollment(id_number=wrong_check_digit)
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_id_number"
    assert response.json()["error"]["field"] == "id_number"


def test_a_yes_in_the_health_declaration_refuses_with_the_question(api: Api) -> None:
    headers = api.member()

    response = api.client.post(
        JOIN, headers=headers, json=enrollment(health_answers=HEALTHY | {"tumour": True})
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "health_declaration"
    assert error["field"] == "health_answers.tumour"
    assert "tumour" in error["message"]
    assert api.memberships(headers) == []


def test_an_unanswered_health_question_is_refused_naming_it(api: Api) -> None:
    answers = {code: False for code in HEALTHY if code != "diabetes"}

    response = api.client.post(JOIN, headers=api.member(), json=enrollment(health_answers=answers))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "health_answer_missing"
    assert response.json()["error"]["field"] == "health_answers.diabetes"


def test_a_person_already_in_the_plan_cannot_join_twice(api: Api) -> None:
    headers = api.member()
    body = enrollment()
    assert api.client.post(JOIN, headers=headers, json=body).status_code == 201

    again = api.client.post(JOIN, headers=headers, json=body)

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_member"
    assert again.json()["error"]["field"] == "id_number"
    assert len(api.memberships(headers)) == 1


def test_a_person_enrolled_by_one_family_cannot_be_enrolled_by_another(api: Api) -> None:
    body = enrollment()
    api.join(api.member(), id_number=body["id_number"])
    stranger = api.member()

    response = api.client.post(JOIN, headers=stranger, json=body)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "identity_unavailable"
    assert api.memberships(stranger) == []


def test_a_retry_with_the_same_idempotency_key_returns_the_same_membership_once(api: Api) -> None:
    headers = api.member()
    body = enrollment()

    first = api.client.post(JOIN, headers=headers | {"Idempotency-Key": "join-1"}, json=body)
    retry = api.client.post(JOIN, headers=headers | {"Idempotency-Key": "join-1"}, json=body)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert [m["id"] for m in api.memberships(headers)] == [first.json()["id"]]


def test_one_idempotency_key_for_a_different_request_is_refused(api: Api) -> None:
    headers = api.member() | {"Idempotency-Key": "join-1"}
    assert api.client.post(JOIN, headers=headers, json=enrollment()).status_code == 201

    other = api.client.post(
        JOIN,
        headers=headers,
        json=enrollment(date(1992, 1, 1), relation="spouse", full_name="李芳"),
    )

    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert len(api.memberships(headers)) == 1


def test_two_members_may_use_the_same_idempotency_key(api: Api) -> None:
    first, second = api.member(), api.member()

    a = api.client.post(JOIN, headers=first | {"Idempotency-Key": "k"}, json=enrollment())
    b = api.client.post(JOIN, headers=second | {"Idempotency-Key": "k"}, json=enrollment())

    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


def test_a_missing_full_name_is_a_422_naming_the_field(api: Api) -> None:
    body = enrollment()
    del body["full_name"]

    response = api.client.post(JOIN, headers=api.member(), json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == "full_name"
    assert error["problems"] == [{"field": "full_name", "message": "Field required"}]


def test_an_unknown_relation_is_a_422_naming_the_relation(api: Api) -> None:
    response = api.client.post(JOIN, headers=api.member(), json=enrollment(relation="cousin"))

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "relation"


def test_a_health_answer_that_is_not_yes_or_no_is_a_422_naming_the_question(api: Api) -> None:
    response = api.client.post(
        JOIN, headers=api.member(), json=enrollment(health_answers=HEALTHY | {"tumour": "maybe"})
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "health_answers.tumour"


def test_joining_an_unknown_plan_is_404(api: Api) -> None:
    response = api.client.post(
        "/api/v1/plans/no-such-plan/memberships", headers=api.member(), json=enrollment()
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "plan_not_found"


def test_joining_needs_a_login(api: Api) -> None:
    response = api.client.post(JOIN, json=enrollment())

    assert response.status_code == 401


@pytest.mark.parametrize(
    "body", [enrollment(), enrollment(id_number="110101199003070018"), enrollment(full_name=" ")]
)
def test_an_unknown_token_is_refused_before_anything_else_is_looked_at(
    api: Api, body: dict[str, object]
) -> None:
    # The join checks its caller's token inside its first read; a bad token must still be a 401,
    # whatever else is wrong with the request, and must create nothing.
    response = api.client.post(JOIN, headers={"Authorization": "Bearer made-up"}, json=body)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_token"
    unknown_plan = api.client.post(
        "/api/v1/plans/no-such-plan/memberships",
        headers={"Authorization": "Bearer made-up"},
        json=body,
    )
    assert unknown_plan.status_code == 401


def test_an_expired_token_cannot_join(api: Api, ctx: object, clock: FixedClock) -> None:
    headers = api.member()
    clock.advance(timedelta(days=31))  # past the 30-day token lifetime
    response = api.client.post(JOIN, headers=headers, json=enrollment())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_a_member_leaves_and_rejoining_later_starts_a_new_waiting_period(
    api: Api, clock: FixedClock
) -> None:
    headers = api.member()
    body = enrollment()
    first = api.client.post(JOIN, headers=headers, json=body).json()

    left = api.client.post(
        f"/api/v1/memberships/{first['id']}/leave",
        headers=headers,
        json={"reason": "too expensive"},
    )
    assert left.status_code == 200, left.text
    assert left.json()["state"] == "left"
    assert left.json()["end_reason"] == "left"

    clock.advance(timedelta(days=10))
    rejoined = api.client.post(JOIN, headers=headers, json=body)

    assert rejoined.status_code == 201, rejoined.text
    again = rejoined.json()
    assert again["id"] != first["id"]
    assert again["state"] == "waiting"
    assert again["joined_on"] == "2026-03-11"
    assert again["covered_from_on"] == "2026-06-10"
    states = {m["id"]: m["state"] for m in api.memberships(headers)}
    assert states == {first["id"]: "left", again["id"]: "waiting"}


def test_a_membership_that_has_been_left_cannot_be_left_again(api: Api) -> None:
    headers = api.member()
    membership = api.join(headers)
    api.client.post(f"/api/v1/memberships/{membership['id']}/leave", headers=headers)

    again = api.client.post(f"/api/v1/memberships/{membership['id']}/leave", headers=headers)

    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_transition"


def test_a_member_cannot_see_another_familys_membership(api: Api) -> None:
    owner, stranger = api.member(), api.member()
    membership = api.join(owner)

    seen = api.client.get(f"/api/v1/memberships/{membership['id']}", headers=stranger)

    assert seen.status_code == 404
    assert seen.json()["error"]["code"] == "membership_not_found"
    assert (
        api.client.get(f"/api/v1/memberships/{membership['id']}", headers=owner).status_code == 200
    )
    assert api.memberships(stranger) == []


def test_a_member_cannot_make_another_family_leave(api: Api) -> None:
    owner, stranger = api.member(), api.member()
    membership = api.join(owner)

    response = api.client.post(f"/api/v1/memberships/{membership['id']}/leave", headers=stranger)

    assert response.status_code == 404
    mine = api.client.get(f"/api/v1/memberships/{membership['id']}", headers=owner)
    assert mine.json()["state"] == "waiting"


def test_a_member_cannot_suspend_their_own_membership(api: Api) -> None:
    headers = api.member()
    membership = api.join(headers)

    response = api.client.post(
        f"/api/v1/memberships/{membership['id']}/events/suspend", headers=headers
    )

    assert response.status_code == 403
    assert (
        api.client.get(f"/api/v1/memberships/{membership['id']}", headers=headers).json()["state"]
        == "waiting"
    )


@pytest.mark.usefixtures("long_sessions")
def test_an_operator_suspends_and_reinstates_a_covered_membership(
    api: Api, clock: FixedClock
) -> None:
    holder, operator = api.member(), api.staff(Role.OPERATOR)
    membership = api.join(holder)
    clock.advance(timedelta(days=91))
    url = f"/api/v1/memberships/{membership['id']}"

    suspended = api.client.post(
        f"{url}/events/suspend", headers=operator, json={"reason": "unpaid"}
    )
    assert suspended.status_code == 200, suspended.text
    assert api.client.get(url, headers=holder).json()["state"] == "suspended"

    reinstated = api.client.post(f"{url}/events/reinstate", headers=operator)
    assert reinstated.status_code == 200, reinstated.text
    assert api.client.get(url, headers=holder).json()["state"] == "covered"


def test_reinstating_a_member_suspended_during_the_waiting_period_does_not_skip_the_wait(
    api: Api,
) -> None:
    holder, operator = api.member(), api.staff(Role.OPERATOR)
    membership = api.join(holder)
    url = f"/api/v1/memberships/{membership['id']}"

    api.client.post(f"{url}/events/suspend", headers=operator, json={"reason": "unpaid"})
    reinstated = api.client.post(f"{url}/events/reinstate", headers=operator)

    assert reinstated.status_code == 200, reinstated.text
    shown = api.client.get(url, headers=holder).json()
    assert shown["state"] == "waiting"
    assert shown["covered_from_on"] == "2026-05-31"


@pytest.mark.usefixtures("long_sessions")
def test_on_day_90_of_the_waiting_period_the_member_is_still_waiting_and_on_day_91_covered(
    api: Api, clock: FixedClock
) -> None:
    headers = api.member()
    membership = api.join(headers)
    url = f"/api/v1/memberships/{membership['id']}"
    joined_on = date.fromisoformat(membership["joined_on"])

    clock.set(_shanghai(joined_on + timedelta(days=90), 23, 59))
    assert api.client.get(url, headers=headers).json()["state"] == "waiting"

    clock.set(_shanghai(joined_on + timedelta(days=91), 0, 0))
    assert api.client.get(url, headers=headers).json()["state"] == "covered"


@pytest.mark.usefixtures("long_sessions")
def test_the_daily_job_run_by_an_operator_covers_members_whose_wait_is_over(
    api: Api, clock: FixedClock
) -> None:
    early, late, operator = api.member(), api.member(), api.staff(Role.OPERATOR)
    first = api.join(early)
    clock.advance(timedelta(days=1))
    second = api.join(late)
    clock.advance(timedelta(days=90))  # 91 days after the first joined, 90 after the second

    response = api.client.post("/api/v1/plans/xhb-main/advance", headers=operator)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "plan_code": "xhb-main",
        "on": "2026-05-31",
        "now_covered": 1,
        "aged_out": 0,
        "moved": 0,
    }
    members = api.client.get("/api/v1/plans/xhb-main/members", headers=operator).json()["items"]
    assert {m["membership_id"]: m["state"] for m in members} == {
        first["id"]: "covered",
        second["id"]: "waiting",
    }


def test_a_member_cannot_run_the_daily_job(api: Api) -> None:
    response = api.client.post("/api/v1/plans/xhb-main/advance", headers=api.member())

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_a_member_cannot_page_through_a_plans_members(api: Api) -> None:
    headers = api.member()
    api.join(headers)

    response = api.client.get("/api/v1/plans/xhb-main/members", headers=headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_an_operator_pages_through_members_by_keyset_masked(api: Api) -> None:
    family = api.member()
    ids = [
        api.join(family)["id"],
        api.join(
            family,
            id_number=resident_id(date(1991, 8, 8), Sex.FEMALE),
            relation="spouse",
            full_name="李芳",
        )["id"],
        api.join(family, date(2020, 6, 1), relation="child", full_name="张小雨")["id"],
    ]
    operator = api.staff(Role.OPERATOR)
    url = "/api/v1/plans/xhb-main/members"

    first = api.client.get(url, headers=operator, params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["total"] == 3
    assert [m["membership_id"] for m in page["items"]] == ids[:2]
    assert page["next_after_id"] == ids[1]

    rest = api.client.get(
        url, headers=operator, params={"limit": 2, "after_id": page["next_after_id"]}
    ).json()
    assert [m["membership_id"] for m in rest["items"]] == ids[2:]
    assert rest["next_after_id"] is None

    assert [m["name_masked"] for m in page["items"] + rest["items"]] == ["张*华", "李*", "张*雨"]
    assert "李芳" not in first.text and "id_number" not in first.text


def test_the_member_list_filters_by_state(api: Api) -> None:
    headers = api.member()
    staying = api.join(headers)
    leaving = api.join(headers, date(2020, 6, 1), relation="child", full_name="张小雨")
    api.client.post(f"/api/v1/memberships/{leaving['id']}/leave", headers=headers)

    page = api.client.get(
        "/api/v1/plans/xhb-main/members",
        headers=api.staff(Role.REVIEWER),
        params={"state": "waiting"},
    ).json()

    assert page["total"] == 1
    assert [m["membership_id"] for m in page["items"]] == [staying["id"]]


@pytest.mark.parametrize("limit", [0, 501])
def test_a_page_size_out_of_range_is_a_422_naming_limit(api: Api, limit: int) -> None:
    response = api.client.get(
        "/api/v1/plans/xhb-main/members", headers=api.staff(Role.OPERATOR), params={"limit": limit}
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "limit"


def test_a_refusal_lists_every_reason_not_only_the_first(api: Api) -> None:
    response = api.client.post(
        JOIN,
        headers=api.member(),
        json=enrollment(
            TODAY - timedelta(days=10),
            relation="child",
            health_answers=HEALTHY | {"heart_disease": True, "diabetes": True},
        ),
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_young"
    assert [(r["code"], r["field"]) for r in error["details"]["refusals"]] == [
        ("too_young", "id_number"),
        ("health_declaration", "health_answers.heart_disease"),
        ("health_declaration", "health_answers.diabetes"),
    ]


def test_each_plan_applies_its_own_entry_ages(api: Api) -> None:
    headers = api.member()
    elderly = "/api/v1/plans/xhb-elderly-cancer/memberships"
    answers = {"tumour": False, "long_hospital_stay": False}

    too_young = api.client.post(
        elderly,
        headers=headers,
        json=enrollment(date(1990, 5, 1), "xhb-elderly-cancer", health_answers=answers),
    )
    assert too_young.status_code == 400
    assert too_young.json()["error"]["code"] == "too_young"

    joined = api.client.post(
        elderly,
        headers=headers,
        json=enrollment(
            date(1961, 5, 1),
            "xhb-elderly-cancer",
            relation="parent",
            full_name="张老",
            health_answers=answers,
        ),
    )
    assert joined.status_code == 201, joined.text
    assert joined.json()["plan_code"] == "xhb-elderly-cancer"
    assert joined.json()["ages_out_on"] == "2042-05-01"  # the 81st birthday


def test_a_repeated_leave_with_the_same_key_answers_as_the_first_time(api: Api) -> None:
    headers = api.member()
    membership = api.join(headers)
    url = f"/api/v1/memberships/{membership['id']}/leave"

    first = api.client.post(url, headers=headers | {"Idempotency-Key": "leave-1"})
    retry = api.client.post(url, headers=headers | {"Idempotency-Key": "leave-1"})

    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.json()["state"] == "left"


def test_an_overlong_idempotency_key_is_a_422_naming_the_header(api: Api) -> None:
    response = api.client.post(
        JOIN, headers=api.member() | {"Idempotency-Key": "k" * 201}, json=enrollment()
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Idempotency-Key"
