"""What every client can rely on: OpenAPI docs, and JSON errors without internals."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.api.calls import Api

from mutualaid.api.app import create_app
from mutualaid.services.context import ServiceContext


def test_the_openapi_description_lists_the_endpoints(api: Api) -> None:
    response = api.client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/accounts",
        "/api/v1/sessions",
        "/api/v1/me",
        "/api/v1/plans",
        "/api/v1/plans/{plan_code}/memberships",
        "/api/v1/memberships/{membership_id}/leave",
    ):
        assert path in paths
    assert "Idempotency-Key" in {
        p["name"] for p in paths["/api/v1/plans/{plan_code}/memberships"]["post"]["parameters"]
    }


def test_the_interactive_docs_are_served(api: Api) -> None:
    response = api.client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


def test_an_unknown_path_is_a_json_404(api: Api) -> None:
    response = api.client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_wrong_method_is_a_json_405(api: Api) -> None:
    response = api.client.delete("/api/v1/plans")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_malformed_json_body_is_a_422_json_error(api: Api) -> None:
    response = api.client.post(
        "/api/v1/sessions", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_an_unexpected_failure_answers_json_without_a_traceback(ctx: ServiceContext) -> None:
    app = create_app(ctx)

    @app.get("/api/v1/test-failure")
    def fail() -> None:
        raise RuntimeError("database password is hunter2")

    client = TestClient(app, raise_server_exceptions=False)

    response = client.get("/api/v1/test-failure")

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "something went wrong on our side; nothing was changed",
            "field": None,
        }
    }
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
