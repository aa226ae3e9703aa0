"""How the API tests talk to the app: logged-in callers and the usual requests, over real HTTP."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from tests.factories import (
    HEALTHY,
    PASSWORD,
    account,
    current_rules_sha256,
    demo_rules_sha256,
    resident_id,
    staff_code,
)

from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext

Headers = dict[str, str]

#: Where a member joins the demo main plan.
JOIN_PATH = "/api/v1/plans/xhb-main/memberships"

_phones = itertools.count(13700000000)


def next_phone() -> str:
    return str(next(_phones))


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def enrollment(
    birth_on: date = date(1990, 5, 1), plan: str = "xhb-main", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "full_name": "张三华",
        "id_number": resident_id(birth_on),
        "relation": "self",
        "health_answers": dict(HEALTHY),
        "rules_sha256": demo_rules_sha256(plan),
    }
    body.update(overrides)
    return body


class Api:
    """A TestClient plus the steps most tests need: register, log in, join."""

    def __init__(self, client: TestClient, ctx: ServiceContext) -> None:
        self.client = client
        self.ctx = ctx

    def log_in(self, phone: str, password: str = PASSWORD) -> Headers:
        # Staff need the authenticator code; a member's login ignores it.
        body = {"phone": phone, "password": password, "code": staff_code(self.ctx)}
        response = self.client.post("/api/v1/sessions", json=body)
        assert response.status_code == 201, response.text
        return bearer(response.json()["token"])

    def member(self) -> Headers:
        """A member who registered through the API, as a person on a phone would, logged in."""
        phone = next_phone()
        registered = self.client.post(
            "/api/v1/accounts", json={"phone": phone, "password": PASSWORD, "send_code": False}
        )
        assert registered.status_code == 201, registered.text
        return self.log_in(phone)

    def staff(self, role: Role = Role.OPERATOR) -> Headers:
        """Staff accounts are made on the server (the CLI); they log in through the API."""
        phone = next_phone()
        account(self.ctx, role, phone=phone)
        return self.log_in(phone)

    def join(
        self, headers: Headers, birth_on: date = date(1990, 5, 1), **overrides: Any
    ) -> dict[str, Any]:
        response = self.client.post(
            JOIN_PATH,
            headers=headers,
            # The rules as published in this test (a test may have changed the demo's).
            json=enrollment(
                birth_on, **{"rules_sha256": current_rules_sha256(self.ctx), **overrides}
            ),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def memberships(self, headers: Headers) -> list[dict[str, Any]]:
        response = self.client.get("/api/v1/memberships", headers=headers)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body
