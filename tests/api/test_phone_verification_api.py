"""Issue #17: a phone is proved with a one-time SMS code, at registration and on a change of phone."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.api.calls import Api, Headers, next_phone
from tests.factories import PASSWORD
from tests.mailboxes import Mailbox

from mutualaid.clock import FixedClock
from mutualaid.services.context import MessageChannels, ServiceContext

SMS = "sms-{to}@sms.example.org"


@pytest.fixture
def by_sms(ctx: ServiceContext, smtp: Mailbox) -> Mailbox:
    """An e-mail-to-SMS gateway on localhost: each SMS arrives as an e-mail to sms-<phone>@…"""
    ctx.messages = MessageChannels(sms_url=smtp.url(SMS), public_url="https://plan.example.org")
    return smtp


def registered(api: Api) -> tuple[str, Headers]:
    phone = next_phone()
    body = {"phone": phone, "password": PASSWORD, "send_code": False}  # each test asks itself
    answer = api.client.post("/api/v1/accounts", json=body)
    assert answer.status_code == 201 and answer.json()["phone_verified"] is False
    return phone, api.log_in(phone)


def code_sent_to(smtp: Mailbox, phone: str) -> str:
    texts = smtp.to(SMS.format(to=phone))
    assert texts, f"no SMS to {phone}"
    found = re.search(r"\b(\d{6})\b", texts[-1].body)
    assert found
    return found.group(1)


def error_of(answer: object) -> str:
    code: str = answer.json()["error"]["code"]  # type: ignore[attr-defined]
    return code


def test_a_new_member_proves_the_phone_with_the_code_sent_by_sms(api: Api, by_sms: Mailbox) -> None:
    phone, headers = registered(api)
    sent = api.client.post("/api/v1/me/phone/code", json={}, headers=headers)
    assert sent.status_code == 202, sent.text
    assert sent.json()["channel"] == "sms" and sent.json()["phone_masked"] == (
        phone[:3] + "****" + phone[-4:]
    )
    code = code_sent_to(by_sms, phone)
    assert "10 分钟内有效" in by_sms.to(SMS.format(to=phone))[0].body  # the member's language
    wrong = "000000" if code != "000000" else "111111"
    refused = api.client.post("/api/v1/me/phone/verify", json={"code": wrong}, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "phone_code_wrong"
    assert refused.json()["error"]["details"]["tries_left"] == 4
    confirmed = api.client.post("/api/v1/me/phone/verify", json={"code": code}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    assert api.client.get("/api/v1/me", headers=headers).json()["phone_verified"] is True
    again = api.client.post("/api/v1/me/phone/code", json={}, headers=headers)
    assert (again.status_code, error_of(again)) == (409, "phone_already_verified")
    used = api.client.post("/api/v1/me/phone/verify", json={"code": code}, headers=headers)
    assert (used.status_code, error_of(used)) == (400, "phone_code_missing")


def test_a_code_expires_after_ten_minutes(api: Api, by_sms: Mailbox, clock: FixedClock) -> None:
    phone, headers = registered(api)
    api.client.post("/api/v1/me/phone/code", json={}, headers=headers)
    code = code_sent_to(by_sms, phone)
    clock.advance(timedelta(minutes=10))
    late = api.client.post("/api/v1/me/phone/verify", json={"code": code}, headers=headers)
    assert (late.status_code, error_of(late)) == (400, "phone_code_expired")


def test_five_wrong_codes_void_the_code(api: Api, by_sms: Mailbox) -> None:
    phone, headers = registered(api)
    api.client.post("/api/v1/me/phone/code", json={}, headers=headers)
    code = code_sent_to(by_sms, phone)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        answer = api.client.post("/api/v1/me/phone/verify", json={"code": wrong}, headers=headers)
        assert error_of(answer) == "phone_code_wrong"
    void = api.client.post("/api/v1/me/phone/verify", json={"code": code}, headers=headers)
    assert (void.status_code, error_of(void)) == (400, "phone_code_exhausted")


def test_codes_are_throttled_per_minute_and_per_hour(
    api: Api, by_sms: Mailbox, clock: FixedClock
) -> None:
    phone, headers = registered(api)
    assert api.client.post("/api/v1/me/phone/code", json={}, headers=headers).status_code == 202
    soon = api.client.post("/api/v1/me/phone/code", json={}, headers=headers)
    assert (soon.status_code, error_of(soon)) == (429, "phone_code_too_soon")
    assert 0 < int(soon.headers["Retry-After"]) <= 60
    answers = []
    for _ in range(5):
        clock.advance(timedelta(seconds=61))
        answers.append(api.client.post("/api/v1/me/phone/code", json={}, headers=headers))
    assert [a.status_code for a in answers] == [202, 202, 202, 202, 429]
    assert error_of(answers[-1]) == "phone_code_rate_limited"
    assert len(by_sms.to(SMS.format(to=phone))) == 5


def test_a_new_phone_takes_effect_only_once_its_code_is_entered(api: Api, by_sms: Mailbox) -> None:
    old_phone, headers = registered(api)
    new_phone = next_phone()
    taken_phone, _ = registered(api)
    taken = api.client.post("/api/v1/me/phone/code", json={"phone": taken_phone}, headers=headers)
    assert (taken.status_code, error_of(taken)) == (409, "phone_taken")
    sent = api.client.post("/api/v1/me/phone/code", json={"phone": new_phone}, headers=headers)
    assert sent.status_code == 202
    assert by_sms.to(SMS.format(to=old_phone)) == []
    code = code_sent_to(by_sms, new_phone)
    assert api.client.get("/api/v1/me", headers=headers).json()["phone"] == old_phone
    done = api.client.post("/api/v1/me/phone/verify", json={"code": code}, headers=headers)
    assert done.json() == {"phone": new_phone, "verified_at": done.json()["verified_at"]}
    assert api.log_in(new_phone)
    old = api.client.post("/api/v1/sessions", json={"phone": old_phone, "password": PASSWORD})
    assert old.status_code == 401


def test_a_code_never_reaches_a_log_line(
    api: Api,
    ctx: ServiceContext,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no SMS gateway set the code goes to the log channel, which logs its kind only."""
    monkeypatch.setattr("secrets.randbelow", lambda _: 482_915)
    caplog.set_level(logging.DEBUG)
    _, headers = registered(api)
    sent = api.client.post("/api/v1/me/phone/code", json={}, headers=headers)
    assert sent.json()["channel"] == "log"
    api.client.post("/api/v1/me/phone/verify", json={"code": "482916"}, headers=headers)
    assert (
        api.client.post(
            "/api/v1/me/phone/verify", json={"code": "482915"}, headers=headers
        ).status_code
        == 200
    )
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "phone_code" in logs  # the log channel did log the message
    assert "482915" not in logs and "482916" not in logs


def test_the_sms_gateway_refusing_the_code_is_told_as_503(
    ctx: ServiceContext, client: TestClient
) -> None:
    ctx.messages = MessageChannels(sms_url=Mailbox(port=1).url(SMS))
    api = Api(client, ctx)
    _, headers = registered(api)
    answer = api.client.post("/api/v1/me/phone/code", json={}, headers=headers)
    assert (answer.status_code, error_of(answer)) == (503, "phone_code_not_sent")


def test_registering_sends_the_code_that_proves_the_phone(api: Api, by_sms: Mailbox) -> None:
    phone = next_phone()
    answer = api.client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    headers = api.log_in(phone)
    code = code_sent_to(by_sms, phone)
    verified = api.client.post("/api/v1/me/phone/verify", json={"code": code}, headers=headers)
    assert verified.status_code == 200, verified.text
    assert api.client.get("/api/v1/me", headers=headers).json()["phone_verified"] is True
