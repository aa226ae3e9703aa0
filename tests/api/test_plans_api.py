"""Reading plans (public), publishing a new version (operators only), refusing malformed files."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.api.calls import Api, enrollment

from mutualaid.domain.accounts import Role
from mutualaid.plan_files import read_plan_file

MAIN_TOML = read_plan_file("xhb-main.toml")
TOML = {"Content-Type": "application/toml"}


def _publish(api: Api, headers: dict[str, str], source: str) -> object:
    return api.client.post("/api/v1/plans", headers=headers | TOML, content=source.encode())


@pytest.mark.usefixtures("plans")
def test_anyone_can_list_the_plans_with_their_version_and_active_members(api: Api) -> None:
    api.join(api.member())

    response = api.client.get("/api/v1/plans")

    assert response.status_code == 200
    listed = {
        p["plan"]["code"]: (p["plan"]["version"], p["active_members"]) for p in response.json()
    }
    assert listed == {"xhb-elderly-cancer": (1, 0), "xhb-main": (1, 1)}


@pytest.mark.usefixtures("plans")
def test_anyone_can_read_a_plans_rules(api: Api) -> None:
    response = api.client.get("/api/v1/plans/xhb-main")

    assert response.status_code == 200
    body = response.json()
    assert body["plan"]["code"] == "xhb-main"
    assert body["plan"]["status"] == "open"
    assert body["rules"]["waiting_period"]["days"] == 90
    assert body["rules"]["entry"]["min_age_days"] == 30
    assert body["rules"]["entry"]["max_age_years"] == 59
    assert [q["code"] for q in body["rules"]["health_questions"]] == [
        "long_medication",
        "long_hospital_stay",
        "tumour",
        "heart_disease",
        "diabetes",
    ]


@pytest.mark.usefixtures("plans")
def test_anyone_can_read_the_plan_file_it_was_published_from(api: Api) -> None:
    response = api.client.get("/api/v1/plans/xhb-main/source")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == MAIN_TOML


@pytest.mark.parametrize(
    "path", ["/api/v1/plans/no-such-plan", "/api/v1/plans/no-such-plan/source"]
)
def test_an_unknown_plan_is_a_json_404(api: Api, path: str) -> None:
    response = api.client.get(path)

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "plan_not_found",
            "message": "there is no plan 'no-such-plan'",
            "field": "plan_code",
        }
    }


@pytest.mark.usefixtures("plans")
def test_an_unknown_version_of_a_plan_file_is_a_json_404(api: Api) -> None:
    client = TestClient(api.client.app, raise_server_exceptions=False)

    response = client.get("/api/v1/plans/xhb-main/source", params={"version": 99})

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "version"


@pytest.mark.usefixtures("plans")
def test_an_operator_publishes_a_new_version_that_applies_to_new_members_only(api: Api) -> None:
    operator = api.staff(Role.OPERATOR)
    earlier = api.join(api.member())
    shorter_wait = MAIN_TOML.replace("days = 90 ", "days = 60 ", 1)

    response = _publish(api, operator, shorter_wait)

    assert response.status_code == 201, response.text
    assert response.json()["created_version"] is True
    assert response.json()["plan"]["version"] == 2
    assert api.client.get("/api/v1/plans/xhb-main").json()["rules"]["waiting_period"]["days"] == 60
    assert api.client.get("/api/v1/plans/xhb-main/source").text == shorter_wait
    assert api.client.get("/api/v1/plans/xhb-main/source", params={"version": 1}).text == MAIN_TOML
    later = api.join(api.member(), rules_sha256=response.json()["plan"]["rules_sha256"])
    assert later["covered_from_on"] == "2026-05-01"
    assert earlier["covered_from_on"] == "2026-05-31"


@pytest.mark.usefixtures("plans")
def test_publishing_unchanged_rules_creates_no_new_version(api: Api) -> None:
    response = _publish(api, api.staff(Role.OPERATOR), MAIN_TOML)

    assert response.status_code in (200, 201)
    assert response.json()["created_version"] is False
    assert response.json()["plan"]["version"] == 1


def test_an_operator_creates_a_new_plan_by_publishing_its_file(api: Api) -> None:
    source = MAIN_TOML.replace('code = "xhb-main"', 'code = "county-main"', 1)

    response = _publish(api, api.staff(Role.OPERATOR), source)

    assert response.status_code == 201, response.text
    assert response.json()["plan"]["code"] == "county-main"
    assert response.json()["plan"]["version"] == 1
    assert [p["plan"]["code"] for p in api.client.get("/api/v1/plans").json()] == ["county-main"]
    member = api.member()
    joined = api.client.post(
        "/api/v1/plans/county-main/memberships",
        headers=member,
        json=enrollment(rules_sha256=response.json()["plan"]["rules_sha256"]),
    )
    assert joined.status_code == 201, joined.text


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("days = 90 ", 'days = "ninety" ', "waiting_period.days"),
        ("max_age_years = 59", "max_age_yaers = 59", "entry.max_age_yaers"),
        ("amount_fen = 10_000_000", "amount_fen = -1", "payout_bands[1].amount_fen"),
        ("debit_days = [14, 28]", "debit_days = [14, 31]", "periods.debit_days[1]"),
        ('time_zone = "Asia/Shanghai"', 'time_zone = "Mars/Olympus"', "time_zone"),
        ('code = "xhb-main"', 'code = "xhb-main', "(file)"),
    ],
)
@pytest.mark.usefixtures("plans")
def test_a_malformed_plan_file_is_refused_naming_the_exact_key(
    api: Api, old: str, new: str, field: str
) -> None:
    assert old in MAIN_TOML
    response = _publish(api, api.staff(Role.OPERATOR), MAIN_TOML.replace(old, new, 1))

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_plan"
    assert error["field"] == field
    assert api.client.get("/api/v1/plans/xhb-main").json()["plan"]["version"] == 1


@pytest.mark.usefixtures("plans")
def test_a_member_cannot_publish_a_plan(api: Api) -> None:
    response = _publish(api, api.member(), MAIN_TOML.replace("days = 90 ", "days = 1 ", 1))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert api.client.get("/api/v1/plans/xhb-main").json()["rules"]["waiting_period"]["days"] == 90


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.AUDITOR])
def test_staff_other_than_operators_cannot_publish_a_plan(api: Api, role: Role) -> None:
    response = _publish(api, api.staff(role), MAIN_TOML)

    assert response.status_code == 403
    assert api.client.get("/api/v1/plans").json() == []


def test_publishing_needs_a_login(api: Api) -> None:
    response = api.client.post("/api/v1/plans", headers=TOML, content=MAIN_TOML.encode())

    assert response.status_code == 401
    assert api.client.get("/api/v1/plans").json() == []
