"""Issue #16: the scheduled jobs run from the command line count themselves in /metrics
(mutualaid_jobs_total, by job and outcome)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from tests.cli.cli import mutualaid

from mutualaid.metrics import exposition
from mutualaid.services.context import ServiceContext


def jobs_run(job: str, outcome: str) -> float:
    text = exposition()[0].decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mutualaid_jobs_total"
        and sample.labels == {"job": job, "outcome": outcome}
    )


def test_the_notifications_and_jury_jobs_are_counted(ctx: ServiceContext) -> None:
    before = jobs_run("notifications", "ok"), jobs_run("juries", "ok")
    assert mutualaid("jobs", "notifications").exit_code == 0
    assert mutualaid("jobs", "juries").exit_code == 0
    assert (jobs_run("notifications", "ok"), jobs_run("juries", "ok")) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_a_failing_job_is_counted_as_failed(ctx: ServiceContext) -> None:
    before = jobs_run("daily", "failed")
    assert mutualaid("jobs", "daily", "no-such-plan").exit_code != 0
    assert jobs_run("daily", "failed") == before + 1
