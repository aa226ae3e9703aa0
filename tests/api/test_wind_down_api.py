"""Sponsored schemes and the end of a plan over HTTP, and the exports members and operators get."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from tests.api.calls import Api, enrollment
from tests.builders.schemes import COVID

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext

PLAN = "/api/v1/plans/xhb-main"


@pytest.fixture(autouse=True)
def _plans(plans: None, long_sessions: None) -> None:
    """The demo plans, and sessions that outlive the clock's moves."""


def test_an_operator_attaches_a_scheme_and_a_member_files_a_sponsored_claim(
    api: Api, client: TestClient, clock: FixedClock
) -> None:
    operator, member = api.staff(), api.member()
    assert (
        client.post(f"{PLAN}/schemes", headers=member, json={"source_toml": COVID}).status_code
        == 403
    )
    attached = client.post(f"{PLAN}/schemes", headers=operator, json={"source_toml": COVID})
    assert attached.status_code == 201, attached.text
    assert [s["code"] for s in client.get(f"{PLAN}/schemes").json()] == ["covid-19"]
    bad = client.post(
        f"{PLAN}/schemes",
        headers=operator,
        json={"source_toml": COVID.replace("starts_on", "start")},
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_scheme")

    now = clock.now()
    clock.set(datetime(2025, 6, 1, tzinfo=UTC))
    membership = api.join(member)["id"]
    clock.set(now)
    claim = client.post(
        "/api/v1/claims",
        headers=member,
        json={
            "membership_id": membership,
            "illness_code": "-",
            "diagnosed_on": "2026-02-25",
            "hospital": "武汉市金银潭医院",
            "scheme_code": "covid-19",
        },
    )
    assert claim.status_code == 201, claim.text
    assert (claim.json()["sponsored"], claim.json()["payout_fen"]) == (True, 10_000_000)


def test_after_an_announcement_joins_are_refused_and_everyone_sees_the_status(
    api: Api, client: TestClient
) -> None:
    operator, member = api.staff(), api.member()
    api.join(member)
    body = {"end_on": "2026-04-15", "reason": "the plan has too few members"}
    assert client.post(f"{PLAN}/wind-down", headers=member, json=body).status_code == 403
    announced = client.post(f"{PLAN}/wind-down", headers=operator, json=body)
    assert announced.status_code == 200, announced.text
    status = client.get(f"{PLAN}/wind-down").json()
    assert (status["status"], status["end_on"], status["run_off_until_on"]) == (
        "winding_down",
        "2026-04-15",
        "2026-10-11",
    )
    joining = client.post(f"{PLAN}/memberships", headers=api.member(), json=enrollment())
    assert (joining.status_code, joining.json()["error"]["code"]) == (400, "plan_winding_down")
    early = client.post(f"{PLAN}/wind-down/end-cover", headers=operator)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "end_not_reached")


def test_a_member_downloads_their_record_and_an_operator_streams_the_migration_file(
    api: Api, client: TestClient, ctx: ServiceContext
) -> None:
    operator, member = api.staff(), api.member()
    membership = api.join(member)["id"]
    record = client.get("/api/v1/me/record", headers=member)
    assert record.status_code == 200
    assert [m["id"] for m in record.json()["memberships"]] == [membership]
    assert record.json()["format"] == "mutualaid-member-record/v1"
    table = client.get("/api/v1/me/record.csv", headers=member)
    rows = list(csv.reader(io.StringIO(table.text)))
    assert rows[0][0] == "section" and rows[1][:2] == ["membership", str(membership)]

    assert client.get(f"{PLAN}/migration-export", headers=member).status_code == 403
    exported = client.get(f"{PLAN}/migration-export", headers=operator)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["membership_id"], r["name_masked"], r["covered_from_on"]) for r in lines] == [
        (str(membership), "张*华", record.json()["memberships"][0]["covered_from_on"])
    ]
    assert "id_number" not in lines[0]
    with_ids = client.get(
        f"{PLAN}/migration-export", headers=operator, params={"with_identity": "true"}
    )
    assert next(csv.DictReader(io.StringIO(with_ids.text)))["full_name"] == "张三华"
