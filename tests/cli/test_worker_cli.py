"""`mutualaid worker --list` and `--once`: the schedule as an operator sees it."""

from __future__ import annotations

from tests.cli.cli import mutualaid, said
from tests.factories import publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext


def test_the_list_shows_every_job_of_every_plan_with_its_next_run_in_the_plan_zone(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    result = mutualaid("worker", "--list")
    assert result.exit_code == 0, result.output
    text = said(result.output)
    for job in ("coverage", "period_close", "collection", "publicity", "log_checkpoint"):
        assert job in text
    assert "xhb-main" in text and "(all plans)" in text
    assert "Asia/Shanghai" in text


def test_once_runs_what_is_due_and_the_list_then_shows_the_outcome(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    result = mutualaid("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "notifications (all plans)" in said(result.output)
    listed = mutualaid("worker", "--list").output
    assert "succeeded" in listed and "skipped" in listed  # post-paid: no provider
