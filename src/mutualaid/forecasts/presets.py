"""Forecast settings an operator picks in the console: join ramps and churn sensitivity applied
to the default model, within limits small enough for a web request."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

from mutualaid.domain.errors import DomainError
from mutualaid.domain.sharing import SharingRule
from mutualaid.forecasts.models import ForecastModel
from mutualaid.forecasts.simulation import SimulationSettings
from mutualaid.forecasts.starting_points import StartingPoint

#: Join ramps: the calibrated Xiang Hu Bao ramp scaled by a factor (every knot's cumulative joins).
RAMPS: dict[str, float] = {"xhb": 1.0, "half": 0.5, "small": 0.01}
#: Where a forecast starts: the plan as it stands today (its members, rates and surplus), or an
#: empty plan at launch with one of the join ramps (the Xiang Hu Bao history).
STARTS = ("today", "launch")
#: What a web request may ask for (`mutualaid simulate` has no such limit).
MAX_WEB_SCENARIOS = 200
MAX_WEB_PERIODS = 120
MAX_CHURN_SENSITIVITY = 5.0


@dataclass(frozen=True, slots=True)
class ConsoleForecast:
    """A forecast as asked for in the operator console."""

    plan_code: str
    periods: int = 48
    scenarios: int = 50
    seed: int = 1
    rule: SharingRule | None = None  # None: the plan's own rule
    ramp: str = "xhb"
    #: Multiplies every band's leaving per yuan of recent charge (1: the calibrated model).
    churn: float = 1.0
    start: str = "today"

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise DomainError("invalid_start", "choose today or the launch", "start")
        if not 1 <= self.scenarios <= MAX_WEB_SCENARIOS:
            raise DomainError(
                "invalid_scenarios",
                f"scenarios must be between 1 and {MAX_WEB_SCENARIOS}",
                "scenarios",
                details={"variant": "range", "max": MAX_WEB_SCENARIOS},
            )
        if not 1 <= self.periods <= MAX_WEB_PERIODS:
            raise DomainError(
                "invalid_periods",
                f"periods must be between 1 and {MAX_WEB_PERIODS}",
                "periods",
                details={"max": MAX_WEB_PERIODS},
            )
        if self.seed < 0:
            raise DomainError("invalid_seed", "a seed is a non-negative integer", "seed")
        if self.ramp not in RAMPS:
            raise DomainError("invalid_ramp", "choose one of the join ramps", "ramp")
        if not 0 <= self.churn <= MAX_CHURN_SENSITIVITY:
            raise DomainError(
                "invalid_churn",
                f"churn sensitivity must be between 0 and {MAX_CHURN_SENSITIVITY:g}",
                "churn",
            )

    def settings(
        self, plan_rule: str, start: StartingPoint | None = None, start_on: date | None = None
    ) -> SimulationSettings:
        return SimulationSettings(
            periods=self.periods,
            scenarios=self.scenarios,
            seed=self.seed,
            rule=self.rule or SharingRule(plan_rule),
            start=start or StartingPoint(),
            start_on=start_on,
        )

    def model(self, base: ForecastModel) -> ForecastModel:
        """The base model with this ramp and churn sensitivity."""
        scale = RAMPS[self.ramp]
        joins = dataclasses.replace(
            base.joins, cumulative=[(day, joined * scale) for day, joined in base.joins.cumulative]
        )
        churn = dataclasses.replace(
            base.churn,
            bands=[
                dataclasses.replace(band, per_yuan=band.per_yuan * self.churn)
                for band in base.churn.bands
            ],
        )
        return dataclasses.replace(base, joins=joins, churn=churn)
