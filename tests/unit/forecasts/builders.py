"""Plans and forecast models for the forecast tests: the shipped ones, shrunk or changed."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from typing import Any

from mutualaid.domain.plans import PlanRules, parse_plan_toml
from mutualaid.forecasts.models import DEFAULT_MODEL_TOML, ForecastModel, parse_model
from mutualaid.plan_files import read_plan_file

MAIN_PLAN_TOML = read_plan_file("xhb-main.toml")


def main_plan(change: Callable[[str], str] = lambda text: text) -> PlanRules:
    return parse_plan_toml(change(MAIN_PLAN_TOML))


def model_data() -> dict[str, Any]:
    return copy.deepcopy(tomllib.loads(DEFAULT_MODEL_TOML))


def small_model(members: float = 200_000, **changes: Any) -> ForecastModel:
    """The default model with a ramp to `members` joins in 100 days (then flat)."""
    data = model_data()
    data["joins"]["cumulative"] = [[0, 0], [100, members]]
    data.update(changes)
    return parse_model(data)
