"""The payment notification endpoint and the payout release over the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from structlog.testing import capture_logs
from tests.alipay_gateway import APP_ID, new_key, private_pem, public_pem
from tests.api.calls import Api
from tests.factories import account

from mutualaid.db.models import PaymentAgreement, ProviderNotification, ProviderPayment
from mutualaid.domain.accounts import Role
from mutualaid.services.context import AlipayConfig, ServiceContext
from mutualaid.services.payments.signatures import sign_notification

NOTIFY = "/api/v1/payments/alipay/notify"
GATEWAY_KEY = new_key()
APP_KEY = new_key()


@pytest.fixture(autouse=True)
def alipay(ctx: ServiceContext) -> None:
    ctx.alipay = AlipayConfig(
        app_id=APP_ID,
        private_key=private_pem(APP_KEY),
        gateway_public_key=public_pem(GATEWAY_KEY),
        gateway_url="http://127.0.0.1:9/gateway.do",  # never reached by these tests
        notify_url=f"http://testserver{NOTIFY}",
    )


def agreement(ctx: ServiceContext) -> str:
    holder = account(ctx)
    with ctx.sessions.begin() as session:
        session.add(
            PaymentAgreement(
                provider="alipay",
                account_id=holder.account_id,
                external_no="MAAG0001",
                status="pending",
                created_at=datetime(2026, 3, 1, tzinfo=UTC),
            )
        )
    return "MAAG0001"


def signed(params: dict[str, str], key: object = GATEWAY_KEY) -> dict[str, str]:
    return sign_notification({"app_id": APP_ID, "charset": "utf-8", **params}, key)  # type: ignore[arg-type]


def sign_notice(external_no: str, notify_id: str = "n-1") -> dict[str, str]:
    return {
        "notify_type": "dut_user_sign",
        "notify_id": notify_id,
        "external_agreement_no": external_no,
        "agreement_no": "20265314000000000001",
        "alipay_user_id": "2088000000000001",
        "status": "NORMAL",
    }


def test_a_signed_notification_is_taken_once_and_answered_success(
    client: TestClient, ctx: ServiceContext
) -> None:
    form = signed(sign_notice(agreement(ctx)))
    for _ in range(2):
        answer = client.post(NOTIFY, data=form)
        assert (answer.status_code, answer.text) == (200, "success")
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(ProviderNotification)) == 1
        assert session.scalar(select(PaymentAgreement.status)) == "active"


def test_a_bad_signature_is_refused_and_logged_without_the_body(
    client: TestClient, ctx: ServiceContext
) -> None:
    external_no = agreement(ctx)
    forged = signed(sign_notice(external_no), new_key())
    tampered = {**signed(sign_notice(external_no)), "alipay_user_id": "2088000000000666"}
    for form in (forged, tampered, {k: v for k, v in forged.items() if k != "sign"}):
        with capture_logs() as logs:
            answer = client.post(NOTIFY, data=form)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_signature"
        refusals = [e for e in logs if e["event"] == "payment_notification_refused"]
        assert len(refusals) == 1
        assert "2088000000000" not in repr(logs) and external_no not in repr(logs)
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(ProviderNotification)) == 0
        assert session.scalar(select(PaymentAgreement.status)) == "pending"


def test_an_unknown_provider_is_not_found(client: TestClient) -> None:
    answer = client.post("/api/v1/payments/paypal/notify", data={"a": "b"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_provider"


def test_a_held_payout_needs_two_different_operators(api: Api, ctx: ServiceContext) -> None:
    payee = account(ctx)
    with ctx.sessions.begin() as session:
        session.add(
            ProviderPayment(
                provider="alipay",
                kind="transfer",
                key="payout:claim-x",
                out_ref="MA" + "1" * 30,
                amount_fen=10_000_000,
                status="held",
                account_id=payee.account_id,
                created_at=datetime(2026, 3, 14, tzinfo=UTC),
            )
        )
    first, second = api.staff(Role.OPERATOR), api.staff(Role.OPERATOR)
    path = "/api/v1/payments/payouts/claim-x/release"
    assert api.client.post(path, headers=first).json()["status"] == "held"
    again = api.client.post(path, headers=first)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "second_release_needed")
    released = api.client.post(path, headers=second).json()
    assert (released["status"], released["releases"]) == ("ready", 2)
    late = api.client.post(path, headers=api.staff(Role.OPERATOR))
    assert late.json()["error"]["code"] == "payout_not_held"
    member = api.client.post("/api/v1/payments/payouts/claim-x/release", headers=api.member())
    assert member.status_code == 403


def test_a_release_retried_with_its_key_answers_the_first_release(
    api: Api, ctx: ServiceContext
) -> None:
    payee = account(ctx)
    with ctx.sessions.begin() as session:
        session.add(
            ProviderPayment(
                provider="alipay",
                kind="transfer",
                key="payout:claim-y",
                out_ref="MA" + "2" * 30,
                amount_fen=10_000_000,
                status="held",
                account_id=payee.account_id,
                created_at=datetime(2026, 3, 14, tzinfo=UTC),
            )
        )
    first = {**api.staff(Role.OPERATOR), "Idempotency-Key": "release-1"}
    path = "/api/v1/payments/payouts/claim-y/release"

    answers = [api.client.post(path, headers=first) for _ in range(2)]

    assert [(a.status_code, a.json()["releases"]) for a in answers] == [(200, 1), (200, 1)]
    released = api.client.post(path, headers=api.staff(Role.OPERATOR)).json()
    assert (released["status"], released["releases"]) == ("ready", 2)
