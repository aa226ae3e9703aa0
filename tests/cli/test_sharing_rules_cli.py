"""`mutualaid periods notice` under a non-uniform sharing rule: each band's fairness ratio."""

from __future__ import annotations

import json

from tests.builders.sharing_rules import population, two_cases, use_rule
from tests.cli.cli import mutualaid, said
from tests.factories import MARCH_7, close_on

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext


def test_the_notice_prints_each_band_s_fairness_ratio_under_the_linear_covariance_rule(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rule(ctx, "linear_covariance")
    two_cases(ctx, population(ctx, clock))
    close_on(ctx, clock, MARCH_7)
    printed = mutualaid("periods", "notice", "xhb-main", "--on", MARCH_7.isoformat())
    assert printed.exit_code == 0, printed.output
    assert "fairness (bp)" in said(printed.output) and "linear_covariance" in printed.output
    assert "12,581" in said(printed.output) and "4,194" in said(printed.output)
    as_json = mutualaid("periods", "notice", "xhb-main", "--on", MARCH_7.isoformat(), "--json")
    body = json.loads(as_json.output)
    assert [b["fairness_ratio_bp"] for b in body["bands"]] == [12_581, 4_194]
