"""Prometheus metrics of the server and the jobs (docs/operations.md, "Metrics").

Counters and histograms live here and are moved by the request middleware (`record_request`) and
by whatever runs a job (`record_job`, `timed_job`). With several server processes, set
PROMETHEUS_MULTIPROC_DIR (an empty folder, the same for every server process and every job run
from the command line) before they start: each process then writes its values to files there and
`/metrics`, whichever process answers it, adds them up (prometheus-client's multiprocess mode).

The figures read from the database (members and claims by state, the log) are collected at scrape
time by `mutualaid.api.health`, not here: they are facts of the database, not of a process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

#: One registry for this module's metrics (not the library's global one, whose process and
#: platform figures would describe whichever process happened to answer the scrape).
OWN = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "mutualaid_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=OWN,
)
HTTP_DURATION = Histogram(
    "mutualaid_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=OWN,
)
JOBS = Counter(
    "mutualaid_jobs",
    "Scheduled jobs run, by job and outcome (ok, failed)",
    ["job", "outcome"],
    registry=OWN,
)
JOB_DURATION = Histogram(
    "mutualaid_job_duration_seconds",
    "How long a job ran, by job",
    ["job"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200),
    registry=OWN,
)
JOB_LAST_SUCCESS = Gauge(
    "mutualaid_job_last_success_timestamp_seconds",
    "When a job last finished well (Unix time), by job",
    ["job"],
    multiprocess_mode="max",
    registry=OWN,
)

JobOutcome = Literal["ok", "failed"]


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def record_job(name: str, outcome: JobOutcome, seconds: float) -> None:
    """Count one run of a scheduled job (the worker, or a job started from the command line)."""
    JOBS.labels(name, outcome).inc()
    JOB_DURATION.labels(name).observe(seconds)
    if outcome == "ok":
        JOB_LAST_SUCCESS.labels(name).set(time.time())


@contextmanager
def timed_job(name: str) -> Iterator[None]:
    """Run a block as job `name`: recorded ok when it ends, failed when it raises (re-raised)."""
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        record_job(name, "failed", time.perf_counter() - start)
        raise
    record_job(name, "ok", time.perf_counter() - start)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Forward:
    """Exposes another registry's metrics inside a scrape's registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


def exposition(*collectors: Collector) -> tuple[bytes, str]:
    """The text a scrape answers (and its content type): this process's metrics, or every
    process's under PROMETHEUS_MULTIPROC_DIR, plus the given collectors (database figures)."""
    registry = CollectorRegistry(auto_describe=True)
    directory = multiprocess_dir()
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(OWN))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
