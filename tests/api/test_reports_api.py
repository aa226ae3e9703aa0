"""GET /api/v1/plans/{code}/reports: the operator's report as JSON, for operators and auditors."""

from __future__ import annotations

from tests.api.calls import Api
from tests.builders.reports import build_population

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.sharing import SharingRule

URL = "/api/v1/plans/xhb-main/reports"
WINDOW = {"from": "2026-01-01", "to": "2026-03-01"}


def test_an_auditor_reads_the_report_with_money_in_fen_and_rates_as_fractions(
    api: Api, clock: FixedClock, long_sessions: None
) -> None:
    build_population(api.ctx, clock)
    response = api.client.get(URL, params=WINDOW, headers=api.staff(Role.AUDITOR))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from_on"], body["to_on"], body["time_zone"]) == (
        "2026-01-01",
        "2026-03-01",
        "Asia/Shanghai",
    )
    assert [m["joined"] for m in body["membership"]] == [3, 2, 0]
    assert body["cases_by_province"][1] == {
        "key": "33",
        "name_zh": "浙江",
        "name_en": "Zhejiang",
        "cases": 2,
        "approved": 1,
        "payout_fen": 30_000_000,
    }
    assert body["decision_times"][-1] == {
        "month": "all",
        "decided": 4,
        "median_days": 5.0,
        "p90_days": 16.0,
    }
    assert body["objections"]["upheld_rate"] == 0.5
    fairness = body["fairness"]
    assert fairness["rules"] == [str(rule) for rule in SharingRule]
    assert fairness["rules"][:3] == ["uniform", "proportional", "conditional_mean"]
    assert all(b["ratio"]["proportional"] == 1.0 for b in fairness["bands"])


def test_sections_can_be_chosen_and_the_others_are_null(
    api: Api, clock: FixedClock, long_sessions: None
) -> None:
    build_population(api.ctx, clock)
    response = api.client.get(
        URL,
        params={**WINDOW, "section": ["juries", "investigations"]},
        headers=api.staff(Role.OPERATOR),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sections"] == ["juries", "investigations"]
    assert body["juries"]["overturned"] == 1 and body["investigations"]["cost_fen"] == 37_345
    assert body["membership"] is None and body["fairness"] is None


def test_members_reviewers_and_strangers_are_refused(api: Api, plans: None) -> None:
    assert api.client.get(URL).status_code == 401
    refused = api.client.get(URL, headers=api.staff(Role.REVIEWER))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert api.client.get(URL, headers=api.member()).status_code == 403
    bad = api.client.get(URL, params={"section": "everything"}, headers=api.staff())
    assert bad.status_code == 422
    backwards = api.client.get(
        URL, params={"from": "2026-03-02", "to": "2026-03-01"}, headers=api.staff()
    )
    error = backwards.json()["error"]
    assert backwards.status_code == 400
    assert (error["code"], error["field"]) == ("invalid_window", "from_on")


def test_the_report_is_documented_in_openapi(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/plans/{plan_code}/reports"]["get"]
    assert "overturn" in operation["description"]
    assert {p["name"] for p in operation["parameters"]} >= {"from", "to", "section"}
    assert "PlanReport" in spec["components"]["schemas"]
    assert "FairnessBand" in spec["components"]["schemas"]
