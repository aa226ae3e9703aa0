"""Risk over HTTP: link data on a claim, the explained signals and graph for staff only, feedback,
the weight report and operator figures, and proven fraud with the member's appeal."""

from __future__ import annotations

from datetime import date

import pytest
from tests.api.calls import Api, Headers
from tests.factories import staff

from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.services.claims.review import decide_claim, start_review

TODAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def _plans(plans: None) -> None:
    pass


def accident_claim(api: Api, member: Headers, payee: str) -> str:
    membership = api.join(member)
    response = api.client.post(
        "/api/v1/claims",
        headers=member,
        json={
            "membership_id": membership["id"],
            "illness_code": "CI02",
            "diagnosed_on": str(TODAY),
            "hospital": "医院",
            "accident": True,
            "links": {"payee_account": payee, "doctor": "王医生"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["ref"])


def test_staff_see_explained_signals_and_the_graph_and_members_do_not(api: Api) -> None:
    first_member, second_member = api.member(), api.member()
    first = accident_claim(api, first_member, "6222 0210")
    second = accident_claim(api, second_member, "62220210")
    reviewer = api.staff(Role.REVIEWER)
    risk = api.client.get(f"/api/v1/claims/{second}/risk", headers=reviewer).json()
    codes = {s["code"] for s in risk["signals"]}
    assert codes == {"shared_payee", "diagnosis_near_joining"}
    assert risk["score"] == 50 and risk["mode"] == "field" and risk["level"] == "high"
    graph = api.client.get(f"/api/v1/claims/{second}/risk/graph", headers=reviewer).json()
    assert graph["edges"] == [{"source": first, "target": second, "kinds": ["doctor", "payee"]}]
    assert api.client.get(f"/api/v1/claims/{second}/risk", headers=second_member).status_code == 403
    listed = api.client.get("/api/v1/risk/signals").json()
    assert {s["code"] for s in listed} >= {"shared_payee", "outlier_cell"}


def test_feedback_reaches_the_weight_report_and_bad_input_is_refused(api: Api) -> None:
    ref = accident_claim(api, api.member(), "1")
    accident_claim(api, api.member(), "1")
    reviewer = api.staff(Role.REVIEWER)
    ok = api.client.post(
        f"/api/v1/claims/{ref}/risk/feedback",
        headers=reviewer,
        json={"signal": "shared_payee", "useful": True},
    )
    assert ok.status_code == 200, ok.text
    unknown = api.client.post(
        f"/api/v1/claims/{ref}/risk/feedback",
        headers=reviewer,
        json={"signal": "astrology", "useful": True},
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"] == {
        "code": "unknown_signal",
        "message": "there is no signal astrology",
        "field": "signal",
    }
    report = api.client.get("/api/v1/risk/weights?plan=xhb-main", headers=api.staff()).json()
    payee = next(r for r in report if r["code"] == "shared_payee")
    assert payee["useful_rate"] == 1.0 and payee["suggested"] == payee["weight"] == 35
    figures = api.client.get("/api/v1/plans/xhb-main/risk/operations", headers=api.staff()).json()
    assert figures["flagged"] == 2
    assert (
        api.client.post("/api/v1/plans/xhb-main/risk/rescore", headers=api.staff()).json()["scored"]
        == 2
    )


def test_a_member_sees_their_fraud_record_and_appeals_it(api: Api) -> None:
    member = api.member()
    ref = accident_claim(api, member, "1")
    reviewer = staff(api.ctx, Role.REVIEWER)
    start_review(api.ctx, reviewer, ref)
    decide_claim(
        api.ctx, reviewer, ref, approve=False, reason_code=RejectionReason.FRAUD, note="forged"
    )
    operator = api.staff()
    flagged = api.client.post(
        f"/api/v1/claims/{ref}/fraud-record",
        headers=operator,
        json={"reason": "forged certificate confirmed by the hospital"},
    )
    assert flagged.status_code == 201, flagged.text
    mine = api.client.get("/api/v1/fraud-records/mine", headers=member).json()
    assert [r["claim_ref"] for r in mine] == [ref]
    appeal = api.client.post(
        f"/api/v1/fraud-records/{mine[0]['id']}/appeal",
        headers=member,
        json={"reason": "the certificate is genuine, please check again"},
    )
    assert appeal.status_code == 201
    waiting = api.client.get("/api/v1/fraud-appeals", headers=operator).json()
    assert [a["id"] for a in waiting] == [appeal.json()["id"]]
    refused = api.client.post(
        f"/api/v1/fraud-appeals/{appeal.json()['id']}/decision",
        headers=operator,
        json={"uphold": True, "note": "ok"},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "separated_duties"
