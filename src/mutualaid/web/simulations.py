"""The operator console's forecast page: run the simulator (`mutualaid.forecasts`) for a plan
with a small number of scenarios, see the 5–95% bands as inline SVG charts, download the CSV.

Running a forecast changes nothing, so the form is a GET: the page's address is the forecast, and
the CSV link re-runs it (the same seed gives the same figures, byte for byte)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from mutualaid.adapters import parse_int64
from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import format_yuan
from mutualaid.domain.sharing import SharingRule
from mutualaid.forecasts.models import default_model
from mutualaid.forecasts.outputs import write_periods_csv
from mutualaid.forecasts.presets import (
    MAX_WEB_PERIODS,
    MAX_WEB_SCENARIOS,
    RAMPS,
    STARTS,
    ConsoleForecast,
)
from mutualaid.forecasts.simulation import SimulationResult, simulate
from mutualaid.forecasts.starting_points import entry_age_mix, gamma_range
from mutualaid.services.forecasts.live_plans import LiveForecastInputs, live_forecast_inputs
from mutualaid.services.plans.plans import list_plans, plan_rules
from mutualaid.web.charts import band_chart
from mutualaid.web.pages import page_router, render
from mutualaid.web.sessions import Page, PageState
from mutualaid.web.staff import DESK

router = page_router()

FIELDS = ("plan", "start", "periods", "scenarios", "seed", "rule", "ramp", "churn")


def _number(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    try:
        return parse_int64(text)
    except ValueError:
        raise DomainError("not_a_number", "enter a whole number", name) from None


def _asked(params: Mapping[str, str], plans: list[str]) -> ConsoleForecast:
    code = params.get("plan") or (plans[0] if plans else "")
    if code not in plans:
        raise DomainError(
            "plan_not_found", "choose one of the plans", "plan", details={"variant": "choose"}
        )
    rule = params.get("rule") or ""
    if rule and rule not in set(SharingRule):
        raise DomainError("invalid_rule", "choose one of the sharing rules", "rule")
    try:
        churn = float(params.get("churn") or "1")
    except ValueError:
        raise DomainError("invalid_churn", "enter a number such as 1 or 1.5", "churn") from None
    return ConsoleForecast(
        plan_code=code,
        periods=_number(params, "periods", 48),
        scenarios=_number(params, "scenarios", 50),
        seed=_number(params, "seed", 1),
        rule=SharingRule(rule) if rule else None,
        ramp=params.get("ramp") or "xhb",
        churn=churn,
        start=params.get("start") or "today",
    )


def run_forecast(
    page: PageState, asked: ConsoleForecast
) -> tuple[SimulationResult, LiveForecastInputs | None]:
    """From the plan's state today (its members, observed rates and surplus), or from an empty
    plan at launch with the chosen join ramp."""
    base = asked.model(default_model())
    if asked.start == "today":
        rules, live = live_forecast_inputs(page.ctx, asked.plan_code, base)
        settings = asked.settings(rules.sharing_rule, live.start, live.today.today)
        return simulate(rules, live.model, settings), live
    _, rules = plan_rules(page.ctx, asked.plan_code)
    return simulate(rules, entry_age_mix(base, rules), asked.settings(rules.sharing_rule)), None


def _starting_facts(live: LiveForecastInputs | None) -> dict[str, Any] | None:
    """What the forecast took from the plan: members, and the observed against the model's
    expected rates with the 5–95% range of the multiplier each scenario draws."""
    if live is None:
        return None
    facts: dict[str, Any] = {
        "today": live.today.today,
        "members": live.today.member_count,
        "cases": live.today.observed_cases,
        "leavers": live.today.observed_leavers,
        "window_days": live.today.window_days,
        "surplus_fen": live.today.surplus_fen,
    }
    for name, multiplier in (("incidence", live.start.incidence), ("leaving", live.start.leaving)):
        if multiplier is not None:
            low, high = gamma_range(multiplier)
            facts[name] = (multiplier.mean, low, high)
    return facts


def _charts(page: PageState, result: SimulationResult) -> list[tuple[str, Markup]]:
    days = list(result.setup.publicity_on)
    lang = page.lang
    charts: list[tuple[str, str, Callable[[float], str]]] = [
        (lang.gettext("Members sharing"), "members", lambda v: f"{v:,.0f}"),
        (lang.gettext("Share per member (yuan)"), "share_fen", lambda v: format_yuan(round(v))),
        (lang.gettext("Cases published"), "cases", lambda v: f"{v:,.0f}"),
    ]
    return [
        (title, band_chart(title, days, result.percentiles(name), fmt))
        for title, name, fmt in charts
    ]


def _context(page: PageState) -> dict[str, Any]:
    plans = list_plans(page.ctx)
    return {
        "plans": plans,
        "rules_list": [str(r) for r in SharingRule],
        "ramps": list(RAMPS),
        "starts": STARTS,
        "max_scenarios": MAX_WEB_SCENARIOS,
        "max_periods": MAX_WEB_PERIODS,
    }


@router.get("/staff/simulate")
def simulate_page(page: Page) -> HTMLResponse:
    page.need(*DESK)
    params = page.request.query_params
    context = _context(page)
    values = {name: params[name] for name in FIELDS if name in params}
    if "run" not in params:
        return render(page, "staff/simulate.html", values=values, result=None, **context)
    try:
        asked = _asked(params, [p.plan.code for p in context["plans"]])
        result, live = run_forecast(page, asked)
    except DomainError as error:
        return _refused(page, error, values, context)
    totals = result["charged_fen"].sum(axis=1)
    query = urlencode({**values, "run": "1"})
    return render(
        page,
        "staff/simulate.html",
        values=values,
        result=result,
        asked=asked,
        charts=_charts(page, result),
        csv_url=f"/staff/simulate/periods.csv?{query}",
        charged_p50=int(np.percentile(totals, 50, method="inverted_cdf")),
        rule=str(result.settings.rule),
        starting=_starting_facts(live),
        **context,
    )


def _refused(
    page: PageState, error: DomainError, values: dict[str, str], context: dict[str, Any]
) -> HTMLResponse:
    """The form again, with the refusal next to its field and what was typed (a GET form, so
    `pages.render_form`, which reads a POSTed form, does not fit)."""
    problems = page.lang.problems(error)
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.field or "", []).append(problem.message)
    return render(
        page,
        "staff/simulate.html",
        status_code=422,
        problems=problems,
        errors=errors,
        values=values,
        result=None,
        **context,
    )


@router.get("/staff/simulate/periods.csv")
def simulate_csv(page: Page) -> Response:
    page.need(*DESK)
    plans = [p.plan.code for p in list_plans(page.ctx)]
    asked = _asked(page.request.query_params, plans)
    result, _ = run_forecast(page, asked)
    with tempfile.TemporaryDirectory() as directory:
        data = write_periods_csv(result, Path(directory) / "periods.csv").read_bytes()
    name = f"forecast-{asked.plan_code}-seed{asked.seed}.csv"
    return Response(
        data,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
