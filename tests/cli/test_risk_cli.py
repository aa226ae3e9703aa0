"""`mutualaid risk …`: re-score a plan, the weight report and the operator's figures."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import covered_member, publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.domain.risk import ClaimLinks
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.context import ServiceContext


def test_an_operator_rescores_a_plan_and_reads_the_weights_and_figures(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    for _ in range(2):
        member, membership = covered_member(ctx, clock)
        report_claim(
            ctx,
            member,
            ClaimReport(
                membership.id,
                "CI01",
                clock.now().date() - timedelta(days=2),
                "医院",
                links=ClaimLinks(device_id="agent-tablet"),
            ),
        )
    rescored = mutualaid("risk", "rescore", "xhb-main")
    assert rescored.exit_code == 0, rescored.output
    assert "2 open claims scored" in said(rescored.output)
    as_json = json.loads(mutualaid("risk", "rescore", "xhb-main", "--json").output)
    assert as_json["by_signal"]["shared_device"] == 2
    weights = mutualaid("risk", "weights", "--plan", "xhb-main")
    assert weights.exit_code == 0 and "shared_device" in weights.output
    figures = mutualaid("risk", "figures", "xhb-main")
    assert "flagged 2: decided 0" in said(figures.output)


def test_an_unknown_plan_is_refused_cleanly(ctx: ServiceContext) -> None:
    result = mutualaid("risk", "figures", "no-such-plan")
    assert result.exit_code != 0
    assert_clean_failure(result)
