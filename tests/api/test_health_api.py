"""Issue #16: /healthz, /readyz and /metrics, what a load balancer and Prometheus ask."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from tests.api.calls import Api
from tests.builders.wind_down import LOG_KEY, ORIGIN
from tests.conftest import TEST_SECRET, _postgres_database
from typer.testing import CliRunner

from mutualaid.api.app import create_app
from mutualaid.cli.app import app as cli
from mutualaid.clock import FixedClock
from mutualaid.metrics import record_job, timed_job
from mutualaid.services.context import ServiceContext, build_context
from mutualaid.services.transparency.checkpoints import (
    LogConfig,
    publish_checkpoint,
    write_key_file,
)
from mutualaid.settings import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape by (name, sorted labels); parsing fails on malformed text."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(scraped: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in scraped.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own that nothing has migrated (SQLite, or PostgreSQL like the run's)."""
    server_url = os.environ.get("MUTUALAID_TEST_DATABASE_URL")
    if server_url:
        yield from _postgres_database(server_url)
    else:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"


def server_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    key_file = tmp_path / "log.key"
    if not key_file.exists():
        write_key_file(key_file, LOG_KEY)
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "data_dir": tmp_path,
        "log_key_file": key_file,
        "log_origin": ORIGIN,
    }
    return Settings.model_validate(values | overrides)


def test_healthz_answers_while_the_process_is_up(ctx: ServiceContext) -> None:
    answer = TestClient(create_app(ctx)).get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_readyz_is_503_before_db_upgrade_and_200_after(
    tmp_path: Path, empty_database_url: str
) -> None:
    settings = server_settings(tmp_path, empty_database_url)
    ctx = build_context(settings)
    try:
        client = TestClient(create_app(ctx, settings))
        before = client.get("/readyz")
        assert before.status_code == 503
        assert before.json()["ready"] is False
        assert list(before.json()["missing"]) == ["migrations"]
        assert "mutualaid db upgrade" in before.json()["missing"]["migrations"]
        assert client.get("/healthz").status_code == 200

        upgraded = CliRunner().invoke(
            cli,
            ["db", "upgrade"],
            env={"MUTUALAID_DATABASE_URL": empty_database_url, "MUTUALAID_SECRET_KEY": TEST_SECRET},
        )
        assert upgraded.exit_code == 0, upgraded.output

        after = client.get("/readyz")
        assert after.status_code == 200, after.text
        assert after.json() == {"ready": True, "missing": {}}
    finally:
        ctx.engine.dispose()


def test_readyz_names_a_missing_log_key_and_an_unreachable_database(
    tmp_path: Path, database_url: str, engine: object
) -> None:
    no_key = server_settings(tmp_path, database_url, log_key_file=tmp_path / "absent.key")
    ctx = build_context(no_key)
    try:
        answer = TestClient(create_app(ctx, no_key)).get("/readyz")
        assert answer.status_code == 503
        assert list(answer.json()["missing"]) == ["log_signing_key"]
    finally:
        ctx.engine.dispose()

    # Nothing listens on port 1: the connection is refused at once.
    unreachable = server_settings(
        tmp_path, "postgresql+psycopg://mutualaid@127.0.0.1:1/mutualaid?connect_timeout=2"
    )
    ctx = build_context(unreachable)
    try:
        answer = TestClient(create_app(ctx, unreachable)).get("/readyz")
        assert answer.status_code == 503
        assert list(answer.json()["missing"]) == ["database"]
        assert "127.0.0.1" not in answer.text  # the reason names no address
    finally:
        ctx.engine.dispose()


def test_metrics_count_requests_by_route_template_and_report_the_database(
    ctx: ServiceContext, plans: None, clock: FixedClock
) -> None:
    client = TestClient(create_app(ctx))
    api = Api(client, ctx)
    api.join(api.member())
    publish_checkpoint(ctx, LogConfig(LOG_KEY, (), 0))
    clock.advance(timedelta(hours=1))
    first = samples(client.get("/metrics").text)

    for _ in range(3):
        assert client.get("/api/v1/plans/xhb-main").status_code == 200
    assert client.get("/api/v1/plans/no-such-plan").status_code == 404
    record_job("collect_contributions", "ok", 2.5)
    with pytest.raises(RuntimeError), timed_job("publish_checkpoint"):
        raise RuntimeError("the witness did not answer")
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    second = samples(answer.text)

    route = "/api/v1/plans/{plan_code}"
    requests = "mutualaid_http_requests_total"
    assert total(second, requests, route=route, status="200") - total(
        first, requests, route=route, status="200"
    ) == pytest.approx(3)
    assert total(second, requests, route=route, status="404") - total(
        first, requests, route=route, status="404"
    ) == pytest.approx(1)
    assert total(second, "mutualaid_http_request_duration_seconds_count", route=route) - total(
        first, "mutualaid_http_request_duration_seconds_count", route=route
    ) == (pytest.approx(4))
    # No raw path in any label: the plan code (like any id) never becomes a series.
    assert not any(
        "xhb-main" in value for _, labels in second for k, value in labels if k == "route"
    )
    assert total(second, "mutualaid_jobs_total", job="collect_contributions", outcome="ok") >= 1
    assert total(second, "mutualaid_jobs_total", job="publish_checkpoint", outcome="failed") >= 1
    assert total(second, "mutualaid_job_duration_seconds_count", job="collect_contributions") >= 1

    # The database's figures, from the snapshot of the first scrape (cached for 30 s).
    assert second[("mutualaid_memberships", (("plan", "xhb-main"), ("state", "waiting")))] == 1
    assert second[("mutualaid_database_up", ())] == 1
    assert second[("mutualaid_notifications_pending", ())] >= 0
    assert second[("mutualaid_log_checkpoint_size", ())] == second[("mutualaid_log_size", ())]
    assert second[("mutualaid_log_checkpoint_age_seconds", ())] == pytest.approx(3600)


SERVER = [sys.executable, "-m", "uvicorn", "--factory", "mutualaid.api.app:app_from_environment"]
SERVER += ["--host", "127.0.0.1", "--log-level", "warning"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


@pytest.mark.slow
def test_metrics_add_up_across_server_processes_and_jobs(
    tmp_path: Path, database_url: str, ctx: ServiceContext, plans: None
) -> None:
    """Two uvicorn processes and a command-line job on one PROMETHEUS_MULTIPROC_DIR: either
    server's /metrics counts every process's requests and jobs."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "MUTUALAID_DATABASE_URL": database_url,
        "MUTUALAID_SECRET_KEY": TEST_SECRET,
        "MUTUALAID_DATA_DIR": str(tmp_path),
        "MUTUALAID_LOG_LEVEL": "WARNING",
    }
    ports = [_free_port(), _free_port()]
    servers = [
        subprocess.Popen(
            [*SERVER, "--port", str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        first, second = (f"http://127.0.0.1:{port}" for port in ports)
        _wait_until_up(f"{first}/healthz", servers[0])
        _wait_until_up(f"{second}/healthz", servers[1])
        for _ in range(3):
            assert httpx.get(f"{first}/api/v1/plans/xhb-main").status_code == 200
        for _ in range(5):
            assert httpx.get(f"{second}/api/v1/plans/xhb-main").status_code == 200
        job = (
            "from mutualaid.metrics import record_job\n"
            "record_job('close_period', 'ok', 12.0)\n"
            "record_job('close_period', 'failed', 3.0)\n"
        )
        subprocess.run([sys.executable, "-c", job], env=environment, check=True)

        for server in (first, second):
            scraped = samples(httpx.get(f"{server}/metrics").text)
            route = "/api/v1/plans/{plan_code}"
            assert total(scraped, "mutualaid_http_requests_total", route=route) == 8
            assert total(scraped, "mutualaid_http_requests_total", route="/healthz") == 2
            assert total(scraped, "mutualaid_http_request_duration_seconds_count", route=route) == 8
            assert total(scraped, "mutualaid_jobs_total", job="close_period", outcome="ok") == 1
            assert total(scraped, "mutualaid_jobs_total", job="close_period", outcome="failed") == 1
            assert total(scraped, "mutualaid_job_duration_seconds_sum", job="close_period") == 15
            assert scraped[("mutualaid_database_up", ())] == 1
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
