"""Staff sign in with password + TOTP code: replay, recovery codes, throttle, reset, and the gate."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.calls import next_phone
from tests.factories import PASSWORD, STAFF_TOTP_SECRET, account, staff_code

from mutualaid.clock import FixedClock
from mutualaid.db.models import AuditEvent, StaffSecondFactor
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import register_account
from mutualaid.services.accounts.second_factors import current_code, reset_factor
from mutualaid.services.context import ServiceContext


def _phone(ctx: ServiceContext, role: Role = Role.REVIEWER) -> str:
    phone = next_phone()
    account(ctx, role, phone=phone)
    return phone


def _post(client: TestClient, phone: str, code: str | None = None, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    body = {"phone": phone, "password": password}
    if code is not None:
        body["code"] = code
    return client.post("/api/v1/sessions", json=body)


def test_staff_password_alone_gets_no_session_and_with_the_code_does(
    client: TestClient, ctx: ServiceContext
) -> None:
    phone = _phone(ctx)
    alone = _post(client, phone)
    assert alone.status_code == 401
    assert alone.json()["error"]["code"] == "second_factor_required"
    assert "token" not in alone.json()
    with_code = _post(client, phone, staff_code(ctx))
    assert with_code.status_code == 201, with_code.text
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {with_code.json()['token']}"})
    assert me.json()["role"] == "reviewer"


def test_a_wrong_code_is_refused_and_counts_against_the_login_throttle(
    client: TestClient, ctx: ServiceContext
) -> None:
    phone = _phone(ctx)
    for _ in range(5):
        wrong = _post(client, phone, "000000")
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "bad_code"
    locked = _post(client, phone, staff_code(ctx))
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"


def test_the_same_code_is_refused_the_second_time_within_its_step(
    client: TestClient, ctx: ServiceContext, clock: FixedClock
) -> None:
    phone = _phone(ctx)
    code = staff_code(ctx)
    assert _post(client, phone, code).status_code == 201
    again = _post(client, phone, code)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "code_replayed"
    clock.advance(timedelta(seconds=30))
    assert _post(client, phone, staff_code(ctx)).status_code == 201


def test_a_recovery_code_signs_in_once(client: TestClient, ctx: ServiceContext) -> None:
    phone = next_phone()
    view = register_account(ctx, phone, PASSWORD, role=Role.OPERATOR)
    from mutualaid.services.accounts.second_factors import enrol_with_secret

    codes = enrol_with_secret(ctx, view.id, STAFF_TOTP_SECRET)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert _post(client, phone, codes[0].upper()).status_code == 201
    spent = _post(client, phone, codes[0])
    assert spent.status_code == 401
    assert spent.json()["error"]["code"] == "bad_code"
    with ctx.reading() as session:
        row = session.get(StaffSecondFactor, view.id)
        assert row is not None and len(row.recovery_hashes) == 9
        # Stored only as hashes, the secret only encrypted.
        assert codes[1] not in str(row.recovery_hashes)
        assert STAFF_TOTP_SECRET.encode() not in row.secret_ciphertext


def test_staff_without_a_factor_get_no_session_until_they_enrol(
    client: TestClient, ctx: ServiceContext
) -> None:
    phone = next_phone()
    register_account(ctx, phone, PASSWORD, role=Role.INVESTIGATOR)
    refused = _post(client, phone, "123456")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "second_factor_enrolment_required"


def test_members_sign_in_with_a_password_alone(client: TestClient, ctx: ServiceContext) -> None:
    phone = next_phone()
    account(ctx, Role.MEMBER, phone=phone)
    assert _post(client, phone).status_code == 201


def test_an_operator_reset_ends_sessions_and_asks_to_enrol_again(
    client: TestClient, ctx: ServiceContext
) -> None:
    phone = _phone(ctx, Role.AUDITOR)
    token = _post(client, phone, staff_code(ctx)).json()["token"]
    reset_factor(ctx, phone, None)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    again = _post(client, phone, current_code(STAFF_TOTP_SECRET, ctx.clock.now().timestamp()))
    assert again.json()["error"]["code"] == "second_factor_enrolment_required"
    with ctx.reading() as session:
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "second_factor_reset" in actions
