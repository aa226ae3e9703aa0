"""A short schemathesis run: generated requests for every operation of the OpenAPI document, each
answer checked against it (status documented, body of the documented shape, content type, no 500).
The answers also go through the status recorder of tests/api/conftest.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

#: What the document promises. (Not "valid data is accepted": a schema cannot say that a phone is
#: 6 to 15 digits or that a plan code exists, and the API refuses those with a documented 400/404.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("application/toml")  # type: ignore[untyped-decorator]
def _plan_file(_ctx: Any, value: Any) -> bytes:
    """A plan file is text: the generated string as it is (a malformed one is refused per key)."""
    return str(value).encode()


def test_generated_requests_get_documented_answers(client: TestClient, plans: None) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(operation.as_strategy())
        @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except (
            Exception,
            ExceptionGroup,
        ) as error:  # every operation is tried; all failures are reported
            failures.append(f"{operation.label}: {error}")

    assert failures == [], "\n\n".join(failures)
