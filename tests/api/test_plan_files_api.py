"""Issue 14: a plan file is served by the SHA-256 its plan_version leaf names, byte for byte."""

from __future__ import annotations

import hashlib

import pytest
from tests.api.calls import Api

from mutualaid.plan_files import read_plan_file


@pytest.mark.usefixtures("plans")
def test_a_plan_file_is_served_by_its_hash_exactly_and_immutably(api: Api) -> None:
    source = read_plan_file("xhb-main.toml").encode()
    digest = hashlib.sha256(source).hexdigest()

    response = api.client.get(f"/api/v1/plan-files/{digest}")

    assert response.status_code == 200
    assert response.content == source
    assert response.headers["content-type"] == "application/toml"
    assert "immutable" in response.headers["cache-control"]


@pytest.mark.usefixtures("plans")
def test_an_unknown_hash_is_not_found(api: Api) -> None:
    for wanted in ("0" * 64, "not-a-hash"):
        response = api.client.get(f"/api/v1/plan-files/{wanted}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "plan_file_not_found"
