"""A claim's whole life over HTTP: member, reviewer, investigator, approver, objector, juror."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from tests.factories import (
    HEALTHY,
    PASSWORD,
    account,
    publish_demo_plans,
    resident_id,
    staff_code,
)

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.juries import CERTIFICATION_QUIZ
from mutualaid.services.context import ServiceContext


def login(client: TestClient, ctx: ServiceContext, role: Role = Role.MEMBER) -> dict[str, str]:
    from mutualaid.db.models import Account

    actor = account(ctx, role)
    with ctx.reading() as session:
        phone = session.get(Account, actor.account_id).phone  # type: ignore[union-attr]
    response = client.post(
        "/api/v1/sessions", json={"phone": phone, "password": PASSWORD, "code": staff_code(ctx)}
    )
    assert response.status_code == 201, response.text
    return {
        "Authorization": f"Bearer {response.json()['token']}",
        "X-Account": str(actor.account_id),
    }


def join(client: TestClient, headers: dict[str, str], birth_on: date) -> int:
    response = client.post(
        "/api/v1/plans/xhb-main/memberships",
        headers=headers,
        json={
            "full_name": "张三华",
            "id_number": resident_id(birth_on),
            "health_answers": HEALTHY,
            # What the member read: the plan's current rules, as the API shows them.
            "rules_sha256": client.get("/api/v1/plans/xhb-main").json()["plan"]["rules_sha256"],
        },
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_a_claim_goes_from_report_to_approval_and_the_public_sees_it_masked(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    ctx.token_ttl_hours = 24 * 365  # the test moves the clock by months
    client = TestClient(create_app(ctx))
    member = login(client, ctx)
    objector = login(client, ctx)
    membership = join(client, member, date(1990, 5, 1))
    join(client, objector, date(1988, 5, 1))
    clock.advance(timedelta(days=120))

    filed = client.post(
        "/api/v1/claims",
        headers=member | {"Idempotency-Key": "c1"},
        json={
            "membership_id": membership,
            "illness_code": "CI01",
            "diagnosed_on": "2026-06-20",
            "hospital": "浙江省肿瘤医院",
        },
    )
    assert filed.status_code == 201, filed.text
    ref = filed.json()["ref"]
    assert filed.json()["payout_fen"] == 30_000_000
    again = client.post(
        "/api/v1/claims",
        headers=member | {"Idempotency-Key": "c1"},
        json={
            "membership_id": membership,
            "illness_code": "CI01",
            "diagnosed_on": "2026-06-20",
            "hospital": "浙江省肿瘤医院",
        },
    )
    assert again.json()["ref"] == ref

    reviewer, approver = login(client, ctx, Role.REVIEWER), login(client, ctx, Role.REVIEWER)
    investigator = login(client, ctx, Role.INVESTIGATOR)
    assert client.post(f"/api/v1/claims/{ref}/review", headers=member).status_code == 403
    assert client.post(f"/api/v1/claims/{ref}/review", headers=reviewer).status_code == 200
    assigned = client.post(
        f"/api/v1/claims/{ref}/investigation",
        headers=reviewer,
        json={"investigator_id": int(investigator["X-Account"])},
    )
    assert assigned.json()["state"] == "investigating"
    asked = client.post(
        f"/api/v1/claims/{ref}/document-requests",
        headers=investigator,
        json={"message": "please upload the pathology report"},
    )
    assert asked.json()["state"] == "awaiting_documents"
    assert (
        client.post(
            f"/api/v1/claims/{ref}/documents-provided", headers=member, json={"note": "uploaded"}
        ).json()["state"]
        == "investigating"
    )
    client.post(
        f"/api/v1/claims/{ref}/investigation-report",
        headers=investigator,
        json={
            "findings": "confirmed at the hospital",
            "recommendation": "approve",
            "cost_fen": 50_000,
        },
    )
    refused = client.post(
        f"/api/v1/claims/{ref}/decision", headers=investigator, json={"approve": True}
    )
    assert refused.status_code == 403
    bad = client.post(
        f"/api/v1/claims/{ref}/decision",
        headers=approver,
        json={"approve": False, "reason_code": "made_up"},
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "reason_code"
    decided = client.post(
        f"/api/v1/claims/{ref}/decision", headers=approver, json={"approve": True}
    )
    assert decided.json()["state"] == "approval_proposed", decided.text

    operator = login(client, ctx, Role.OPERATOR)
    clock.set(
        datetime.fromisoformat(decided.json()["publicity_on"] + "T00:30:00+08:00").astimezone(UTC)
    )
    assert (
        client.post("/api/v1/plans/xhb-main/publicity/run", headers=operator).json()["published"]
        == 1
    )
    notice = client.get("/api/v1/plans/xhb-main/publicity").json()
    assert [(c["ref"], c["name_masked"], c["province_en"]) for c in notice] == [
        (ref, "张*华", "Zhejiang")
    ]
    assert "浙江省肿瘤医院" not in str(notice)

    objection = client.post(
        f"/api/v1/claims/{ref}/objections",
        headers=objector,
        json={"reason": "I think this illness started before joining"},
    )
    assert objection.status_code == 201, objection.text
    twice = client.post(
        f"/api/v1/claims/{ref}/objections",
        headers=objector,
        json={"reason": "I think this illness started before joining"},
    )
    assert twice.status_code == 409
    client.post(
        f"/api/v1/objections/{objection.json()['id']}/review",
        headers=reviewer,
        json={"uphold": False, "note": "diagnosis is after joining"},
    )
    clock.advance(timedelta(days=3))
    assert (
        client.post("/api/v1/plans/xhb-main/publicity/run", headers=operator).json()["approved"]
        == 1
    )
    assert client.get(f"/api/v1/claims/{ref}", headers=member).json()["state"] == "approved"
    events = [
        t["event"] for t in client.get(f"/api/v1/claims/{ref}/timeline", headers=member).json()
    ]
    assert events[0] == "report" and events[-1] == "close_publicity"
    inbox = client.get("/api/v1/notifications", headers=member).json()
    assert inbox["unread"] >= 5


def test_a_rejected_claim_is_disputed_and_a_juror_votes(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    from mutualaid.plan_files import read_plan_file
    from mutualaid.services.plans.plans import publish_plan

    publish_demo_plans(ctx)
    publish_plan(ctx, None, read_plan_file("xhb-main.toml") + "\n[jury]\nmin_votes = 1\n")
    ctx.token_ttl_hours = 24 * 365
    client = TestClient(create_app(ctx))
    member, juror = login(client, ctx), login(client, ctx)
    membership = join(client, member, date(1990, 5, 1))
    join(client, juror, date(1980, 5, 1))
    clock.advance(timedelta(days=120))
    quiz = client.get("/api/v1/juror-certification").json()
    assert {q["code"] for q in quiz} == {q.code for q in CERTIFICATION_QUIZ}
    certified = client.post(
        "/api/v1/juror-certification",
        headers=juror,
        json={"answers": {q.code: q.answer for q in CERTIFICATION_QUIZ}},
    )
    assert certified.json()["passed"] is True
    ref = client.post(
        "/api/v1/claims",
        headers=member,
        json={
            "membership_id": membership,
            "illness_code": "CI02",
            "diagnosed_on": "2026-06-25",
            "hospital": "医院",
        },
    ).json()["ref"]
    reviewer = login(client, ctx, Role.REVIEWER)
    client.post(f"/api/v1/claims/{ref}/review", headers=reviewer)
    rejected = client.post(
        f"/api/v1/claims/{ref}/decision",
        headers=reviewer,
        json={
            "approve": False,
            "reason_code": "insufficient_evidence",
            "note": "no ECG was provided",
        },
    )
    assert rejected.json()["state"] == "rejected"
    jury = client.post(
        f"/api/v1/claims/{ref}/dispute",
        headers=member,
        json={"reason": "the ECG was attached on page 3"},
    )
    assert jury.status_code == 201, jury.text
    [vote_open] = client.get("/api/v1/plans/xhb-main/open-votes", headers=juror).json()
    case_file = client.get(f"/api/v1/juries/{vote_open['id']}/case-file", headers=juror).json()
    assert case_file["case"]["name_masked"] == "张*华"
    answers = {
        "illness": case_file["case"]["illness_code"],
        "age_band": f"{case_file['case']['age'] // 10 * 10}-{case_file['case']['age'] // 10 * 10 + 9}",
    }
    cast = client.post(
        f"/api/v1/juries/{vote_open['id']}/votes",
        headers=juror,
        json={"choice": "approve", "quiz_answers": answers},
    )
    assert cast.status_code == 201, cast.text
    assert client.get(f"/api/v1/claims/{ref}/juries").json()[0]["approve_votes"] is None
    clock.advance(timedelta(hours=72))
    operator = login(client, ctx, Role.OPERATOR)
    assert client.post("/api/v1/juries/close-due", headers=operator).json()["approved"] == 1
    assert client.get(f"/api/v1/claims/{ref}/juries").json()[0]["approve_votes"] == 1
    assert client.get(f"/api/v1/claims/{ref}", headers=member).json()["state"] == "approved"


def test_the_openapi_document_describes_the_claim_endpoints(ctx: ServiceContext) -> None:
    schema = TestClient(create_app(ctx)).get("/openapi.json").json()
    assert "/api/v1/claims/{ref}/decision" in schema["paths"]
    assert "/api/v1/juries/{jury_case_id}/votes" in schema["paths"]


def test_evidence_is_uploaded_hashed_and_only_staff_can_open_it(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    import hashlib

    from sqlalchemy import select

    from mutualaid.db.models import AuditEvent, LogEntry

    publish_demo_plans(ctx)
    ctx.token_ttl_hours = 24 * 365
    client = TestClient(create_app(ctx))
    member = login(client, ctx)
    membership = join(client, member, date(1990, 5, 1))
    clock.advance(timedelta(days=120))
    ref = client.post(
        "/api/v1/claims",
        headers=member,
        json={
            "membership_id": membership,
            "illness_code": "CI01",
            "diagnosed_on": "2026-06-20",
            "hospital": "医院",
        },
    ).json()["ref"]
    content = b"%PDF-1.7\n" + b"diagnosis certificate " * 5000
    uploaded = client.post(
        f"/api/v1/claims/{ref}/evidence",
        headers=member,
        files={"file": ("diagnosis.pdf", content, "application/pdf")},
        data={"label": "diagnosis certificate"},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["sha256"] == hashlib.sha256(content).hexdigest()
    lying = client.post(
        f"/api/v1/claims/{ref}/evidence",
        headers=member,
        files={"file": ("x.jpg", content, "image/jpeg")},
    )
    assert lying.status_code == 400 and lying.json()["error"]["code"] == "media_type_mismatch"
    evidence_id = uploaded.json()["id"]
    assert (
        client.get(f"/api/v1/claims/{ref}/evidence/{evidence_id}", headers=member).status_code
        == 403
    )
    reviewer = login(client, ctx, Role.REVIEWER)
    opened = client.get(f"/api/v1/claims/{ref}/evidence/{evidence_id}", headers=reviewer)
    assert opened.status_code == 200 and opened.content == content
    with ctx.reading() as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "evidence_viewed"))
        leaf = session.scalars(
            select(LogEntry.leaf_data).where(LogEntry.leaf_type == "evidence")
        ).one()
    assert hashlib.sha256(content).hexdigest().encode() in leaf and b"diagnosis" not in leaf
