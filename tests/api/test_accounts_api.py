"""Registering, logging in and out, and what an unauthenticated caller gets."""

from __future__ import annotations

from datetime import timedelta

from tests.api.calls import Api, bearer, next_phone
from tests.factories import PASSWORD, imported_member, publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext


def test_a_registered_member_logs_in_and_sees_their_own_account(api: Api) -> None:
    phone = next_phone()
    registered = api.client.post(
        "/api/v1/accounts",
        json={"phone": phone, "password": PASSWORD, "display_name": "小华", "locale": "en"},
    )
    assert registered.status_code == 201, registered.text
    assert "password" not in registered.text and "hash" not in registered.text

    session = api.client.post("/api/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert session.status_code == 201, session.text
    assert session.json()["token_type"] == "bearer"

    me = api.client.get("/api/v1/me", headers=bearer(session.json()["token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": registered.json()["id"],
        "phone": phone,
        "role": "member",
        "display_name": "小华",
        "locale": "en",
        "phone_verified": False,  # until the SMS code is entered (issue 17)
    }


def test_self_registration_cannot_choose_a_staff_role(api: Api) -> None:
    phone = next_phone()
    registered = api.client.post(
        "/api/v1/accounts", json={"phone": phone, "password": PASSWORD, "role": "operator"}
    )
    assert registered.status_code == 201, registered.text
    assert api.client.get("/api/v1/me", headers=api.log_in(phone)).json()["role"] == "member"


def test_a_wrong_password_is_refused_with_a_json_error_naming_the_password(api: Api) -> None:
    phone = next_phone()
    api.client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD})

    response = api.client.post("/api/v1/sessions", json={"phone": phone, "password": "not the one"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "bad_credentials"
    assert error["field"] == "password"
    assert error["message"]


def test_an_unknown_phone_gets_the_same_answer_as_a_wrong_password(api: Api) -> None:
    phone = next_phone()
    api.client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD})

    wrong_password = api.client.post(
        "/api/v1/sessions", json={"phone": phone, "password": "x" * 10}
    )
    unknown_phone = api.client.post(
        "/api/v1/sessions", json={"phone": next_phone(), "password": PASSWORD}
    )

    assert unknown_phone.status_code == wrong_password.status_code == 401
    assert unknown_phone.json() == wrong_password.json()


def test_a_phone_number_registers_only_once(api: Api) -> None:
    phone = next_phone()
    assert (
        api.client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD}).status_code
        == 201
    )

    again = api.client.post(
        "/api/v1/accounts", json={"phone": phone, "password": "another password"}
    )

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "phone_taken"
    assert again.json()["error"]["field"] == "phone"


def test_a_malformed_phone_number_is_refused_naming_the_phone(api: Api) -> None:
    response = api.client.post("/api/v1/accounts", json={"phone": "call me", "password": PASSWORD})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_phone"
    assert response.json()["error"]["field"] == "phone"


def test_a_short_password_is_refused_naming_the_password(api: Api) -> None:
    response = api.client.post(
        "/api/v1/accounts", json={"phone": next_phone(), "password": "short"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"] == "password"


def test_an_unauthenticated_caller_gets_401_with_a_json_error(api: Api) -> None:
    response = api.client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"


def test_an_invented_token_is_refused(api: Api) -> None:
    response = api.client.get("/api/v1/me", headers=bearer("made-up-token"))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_a_token_stops_working_once_it_expires(
    api: Api, ctx: ServiceContext, clock: FixedClock
) -> None:
    headers = api.member()
    clock.advance(timedelta(hours=ctx.token_ttl_hours) - timedelta(seconds=1))
    assert api.client.get("/api/v1/me", headers=headers).status_code == 200

    clock.advance(timedelta(seconds=1))

    response = api.client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_after_logging_out_the_token_no_longer_works(api: Api) -> None:
    headers = api.member()
    other_session = api.log_in(api.client.get("/api/v1/me", headers=headers).json()["phone"])

    assert api.client.delete("/api/v1/sessions/current", headers=headers).status_code == 204

    assert api.client.get("/api/v1/me", headers=headers).status_code == 401
    assert api.client.get("/api/v1/me", headers=other_session).status_code == 200


def test_guessing_passwords_through_the_api_is_locked_out_like_the_web_form(api: Api) -> None:
    phone = next_phone()
    api.client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD})
    for _ in range(5):
        wrong = api.client.post("/api/v1/sessions", json={"phone": phone, "password": "guess" * 3})
        assert wrong.status_code == 401
    locked = api.client.post("/api/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"]["code"] == "too_many_attempts"
    assert locked.json()["error"]["field"] == "phone"


def test_a_locked_login_says_when_to_retry(api: Api) -> None:
    phone = next_phone()
    api.client.post("/api/v1/accounts", json={"phone": phone, "password": PASSWORD})
    for _ in range(5):
        api.client.post("/api/v1/sessions", json={"phone": phone, "password": "guess" * 3})
    locked = api.client.post("/api/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60


def test_an_imported_phone_is_bound_only_with_its_invitation(api: Api, ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)
    code = imported_member(ctx, "13900000002")
    taken = api.client.post("/api/v1/accounts", json={"phone": "13900000002", "password": PASSWORD})
    assert taken.status_code == 403
    assert taken.json()["error"]["code"] == "invitation_required"
    assert taken.json()["error"]["field"] == "invitation"
    bound = api.client.post(
        "/api/v1/accounts",
        json={"phone": "13900000002", "password": PASSWORD, "invitation": code},
    )
    assert bound.status_code == 201, bound.text
