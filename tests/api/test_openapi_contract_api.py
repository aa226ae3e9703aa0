"""What an integrator generates a client from: the OpenAPI document names every operation with a
stable id, shows every answer's shape, documents every refusal with the body the API really sends,
and declares `Idempotency-Key` on every mutation; a retried mutation with its key acts once.

(Every status an operation answers in the API tests is also held to its entry: tests/api/conftest.py.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select
from tests.api.calls import Api, Headers
from tests.factories import staff

from mutualaid.db.models import FraudAppeal, FraudRecord, PlanSponsorship, RiskSignalFeedback
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.juries import CERTIFICATION_QUIZ
from mutualaid.services.claims.review import decide_claim, start_review

MUTATIONS = frozenset({"post", "put", "patch", "delete"})
#: `<tag>-<verb>`: lowercase words joined by hyphens; FastAPI's default ids
#: (`close_api_v1_plans__plan_code__periods_post`) have underscores and fail it.
OPERATION_ID = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")
ERROR_BODY = "#/components/schemas/ErrorBody"


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_operation_has_an_explicit_unique_id(document: dict[str, Any]) -> None:
    ids = [operation.get("operationId", "") for _, _, operation in operations(document)]

    assert [i for i in ids if not OPERATION_ID.fullmatch(i)] == []
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    assert {"claims-decide", "memberships-join", "periods-close", "log-tile"} <= set(ids)


def test_every_operation_documents_the_shape_of_its_success(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(document):
        successes = {c: r for c, r in operation["responses"].items() if c.startswith("2")}
        if not successes:
            missing.append((method, path, "no 2xx"))
        for code, response in successes.items():
            if code == "204":
                assert "content" not in response, (method, path)
                continue
            content = response.get("content", {})
            if not content or any(not media.get("schema") for media in content.values()):
                missing.append((method, path, code))

    assert missing == []


def test_every_refusal_is_documented_with_the_error_body_the_api_sends(
    document: dict[str, Any],
) -> None:
    wrong = []
    for method, path, operation in operations(document):
        responses = operation["responses"]
        expected = {"422"}
        if operation.get("security"):
            expected.add("401")
        if method in MUTATIONS:
            expected |= {"413", "429"}
        wrong += [(method, path, code, "missing") for code in sorted(expected - set(responses))]
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                if schema.get("$ref") != ERROR_BODY:
                    wrong.append((method, path, code, schema))

    assert wrong == []
    assert "HTTPValidationError" not in document["components"]["schemas"]
    error = document["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message", "field"} <= set(error["required"])


def test_every_mutation_declares_the_idempotency_key_header(document: dict[str, Any]) -> None:
    without = [
        (method, path)
        for method, path, operation in operations(document)
        if method in MUTATIONS
        and not any(
            p["in"] == "header" and p["name"] == "Idempotency-Key"
            for p in operation.get("parameters", [])
        )
    ]

    assert without == []


# --- retries with the same key act once ---------------------------------------------------------


def count(api: Api, model: type[Any]) -> int:
    with api.ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def twice(api: Api, path: str, headers: Headers, body: dict[str, Any], key: str) -> Any:
    """POST the same request twice with one key: both answers are the same."""
    first = api.client.post(path, headers={**headers, "Idempotency-Key": key}, json=body)
    again = api.client.post(path, headers={**headers, "Idempotency-Key": key}, json=body)
    assert first.status_code < 300, first.text
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    return first.json()


def test_a_retried_sponsorship_is_recorded_once(api: Api, plans: None) -> None:
    operator = api.staff()
    path = "/api/v1/plans/xhb-main/sponsorships"
    body = {"kind": "period", "from_on": "2026-04-01", "to_on": "2026-06-30", "memo": "launch"}

    twice(api, path, operator, body, "sponsor-q2")

    assert count(api, PlanSponsorship) == 1
    # Without the key the same request is a second sponsorship: the key is what made it once.
    assert api.client.post(path, headers=operator, json=body).status_code == 201
    assert count(api, PlanSponsorship) == 2


def test_another_request_under_a_used_key_is_refused(api: Api, plans: None) -> None:
    operator = api.staff()
    path = "/api/v1/plans/xhb-main/sponsorships"
    body = {"kind": "period", "from_on": "2026-04-01", "to_on": "2026-06-30"}
    twice(api, path, operator, body, "k1")

    other = api.client.post(
        path, headers={**operator, "Idempotency-Key": "k1"}, json={**body, "to_on": "2026-09-30"}
    )

    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert count(api, PlanSponsorship) == 1


def fraud_rejected_claim(api: Api, member: Headers) -> str:
    membership = api.join(member)
    claim = api.client.post(
        "/api/v1/claims",
        headers=member,
        json={
            "membership_id": membership["id"],
            "illness_code": "CI02",
            "diagnosed_on": "2026-03-01",
            "hospital": "医院",
            "accident": True,
        },
    )
    assert claim.status_code == 201, claim.text
    ref = str(claim.json()["ref"])
    reviewer = staff(api.ctx, Role.REVIEWER)
    start_review(api.ctx, reviewer, ref)
    decide_claim(
        api.ctx, reviewer, ref, approve=False, reason_code=RejectionReason.FRAUD, note="forged"
    )
    return ref


def test_a_retried_fraud_record_appeal_and_decision_each_act_once(api: Api, plans: None) -> None:
    member, operator, other_operator = api.member(), api.staff(), api.staff()
    ref = fraud_rejected_claim(api, member)

    record = twice(
        api,
        f"/api/v1/claims/{ref}/fraud-record",
        operator,
        {"reason": "forged certificate confirmed by the hospital"},
        "flag-1",
    )
    appeal = twice(
        api,
        f"/api/v1/fraud-records/{record['id']}/appeal",
        member,
        {"reason": "the certificate is genuine, please check again"},
        "appeal-1",
    )
    decided = twice(
        api,
        f"/api/v1/fraud-appeals/{appeal['id']}/decision",
        other_operator,
        {"uphold": True, "note": "the hospital withdrew its statement"},
        "decide-1",
    )

    assert (count(api, FraudRecord), count(api, FraudAppeal)) == (1, 1)
    assert decided["id"] == appeal["id"]
    # Without a key the retry is refused: the first one was done.
    again = api.client.post(
        f"/api/v1/fraud-appeals/{appeal['id']}/decision",
        headers=other_operator,
        json={"uphold": True, "note": "the hospital withdrew its statement"},
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_decided")


def test_retried_feedback_and_certification_answer_the_first_answer(api: Api, plans: None) -> None:
    member = api.member()
    ref = fraud_rejected_claim(api, member)
    reviewer = api.staff(Role.REVIEWER)
    fired = api.client.get(f"/api/v1/claims/{ref}/risk", headers=reviewer).json()["signals"]
    body = {"signal": fired[0]["code"], "useful": False, "note": "explained by the hospital"}

    twice(api, f"/api/v1/claims/{ref}/risk/feedback", reviewer, body, "fb-1")
    answers = {q.code: q.answer for q in CERTIFICATION_QUIZ}
    certified = twice(api, "/api/v1/juror-certification", member, {"answers": answers}, "cert-1")

    assert count(api, RiskSignalFeedback) == 1
    assert certified == {"passed": True, "wrong": []}
