"""The forecast model: everything the simulator assumes that is not a plan rule.

Every number is configuration, read from a TOML file (``--model PATH``) or from the default below,
which is calibrated to Xiang Hu Bao's public figures (see docs/forecasts.md for the sources and
`mutualaid calibrate` for how close it comes). A malformed model is refused with the exact key.
"""

from __future__ import annotations

import json
from dataclasses import field
from datetime import date
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import read_toml, refusal_from

_STRICT = ConfigDict(extra="forbid")

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Age = Annotated[int, Field(ge=0, le=130)]


@dataclass(frozen=True, config=_STRICT)
class IncidenceRow:
    """Approved claims per 100,000 member-years at ages [from_age, to_age], once the effect of
    the health declaration has worn off: ``[male, female]`` for each tier."""

    from_age: Age
    to_age: Age
    severe: tuple[NonNegative, NonNegative]
    mild: tuple[NonNegative, NonNegative] = (0.0, 0.0)


@dataclass(frozen=True, config=_STRICT)
class AgeWeight:
    from_age: Age
    to_age: Age
    weight: NonNegative


@dataclass(frozen=True, config=_STRICT)
class Joins:
    #: Day 0 of the ramp (the plan's launch); the first period is the first publicity day after it.
    start_on: date
    #: ``[day since start_on, cumulative joins]`` knots, linearly interpolated, flat after the last.
    cumulative: Annotated[list[tuple[NonNegative, NonNegative]], Field(min_length=2)]
    male_share: Probability = 0.5
    #: Age mix of joiners (ages at joining; relative weights, restricted to the plan's entry ages).
    age_mix: list[AgeWeight] = field(default_factory=list)


@dataclass(frozen=True, config=_STRICT)
class ChurnBand:
    """Leaving per period at ages [from_age, to_age]: ``base + per_yuan × recent charge (yuan)``."""

    from_age: Age
    to_age: Age
    base_per_period: Probability
    per_yuan: NonNegative


@dataclass(frozen=True, config=_STRICT)
class Churn:
    bands: Annotated[list[ChurnBand], Field(min_length=1)]
    #: The "recent charge" is an exponential average of the band's charges with this half-life.
    half_life_periods: Annotated[float, Field(gt=0.0)] = 3.0
    max_per_period: Probability = 0.2


@dataclass(frozen=True, config=_STRICT)
class Selection:
    """Incidence multiplier by years since joining (health declaration, claims awareness):
    ``[years, factor]`` knots, linearly interpolated, flat after the last."""

    knots: Annotated[list[tuple[NonNegative, NonNegative]], Field(min_length=1)]


@dataclass(frozen=True, config=_STRICT)
class ForecastModel:
    incidence: Annotated[list[IncidenceRow], Field(min_length=1)]
    selection: Selection
    joins: Joins
    churn: Churn
    #: Multiplies every incidence rate (the calibration knob).
    incidence_level: NonNegative = 1.0
    #: Share of cases caused by an accident (covered during the waiting period when the plan says so).
    accident_share: Probability = 0.01
    #: Severe accidents per 100,000 member-years at every age, instead of `accident_share` (an
    #: accident does not follow the age curve of illness, nor the health declaration).
    accident_per_100k: NonNegative | None = None
    #: Probability that a case is published 0, 1, 2, … periods after the period of diagnosis.
    reporting_delay: Annotated[list[Probability], Field(min_length=1, max_length=48)] = field(
        default_factory=lambda: [1.0]
    )


_MODEL_ADAPTER = TypeAdapter(ForecastModel)


def _check_rows(rows: list[Any], key: str) -> None:
    previous_to: int | None = None
    for index, row in enumerate(rows):
        if row.from_age > row.to_age:
            raise DomainError(
                "invalid_model",
                f"from_age {row.from_age} is above to_age {row.to_age}",
                f"{key}[{index}].from_age",
            )
        if previous_to is not None and row.from_age != previous_to + 1:
            raise DomainError(
                "invalid_model",
                f"rows must follow each other: expected from_age {previous_to + 1}",
                f"{key}[{index}].from_age",
            )
        previous_to = row.to_age


def _check_knots(knots: list[tuple[float, float]], key: str, *, increasing_values: bool) -> None:
    for index in range(1, len(knots)):
        if knots[index][0] <= knots[index - 1][0]:
            raise DomainError(
                "invalid_model", "knots must have increasing first values", f"{key}[{index}]"
            )
        if increasing_values and knots[index][1] < knots[index - 1][1]:
            raise DomainError("invalid_model", "cumulative joins never decrease", f"{key}[{index}]")


def _check_consistency(model: ForecastModel) -> None:
    _check_rows(model.incidence, "incidence")
    _check_rows(model.churn.bands, "churn.bands")
    _check_rows(model.joins.age_mix, "joins.age_mix")
    _check_knots(model.joins.cumulative, "joins.cumulative", increasing_values=True)
    _check_knots(model.selection.knots, "selection.knots", increasing_values=False)
    if model.joins.cumulative[0][0] != 0:
        raise DomainError("invalid_model", "the first knot is day 0", "joins.cumulative[0]")
    if model.joins.age_mix and not any(row.weight for row in model.joins.age_mix):
        raise DomainError("invalid_model", "at least one age must have a weight", "joins.age_mix")
    if abs(sum(model.reporting_delay) - 1.0) > 1e-9:
        raise DomainError(
            "invalid_model", "the delay probabilities must add up to 1", "reporting_delay"
        )


def parse_model(data: dict[str, Any]) -> ForecastModel:
    try:
        model = _MODEL_ADAPTER.validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as error:
        raise refusal_from(error, "invalid_model") from None
    _check_consistency(model)
    return model


def parse_model_toml(text: str) -> ForecastModel:
    """Read a forecast model file; refuse it with the exact key and reason when it is malformed."""
    return parse_model(read_toml(text, "invalid_model"))


def default_model() -> ForecastModel:
    return parse_model_toml(DEFAULT_MODEL_TOML)


#: The default model, calibrated to Xiang Hu Bao (Oct 2018 – Jan 2022). Copy it with
#: `mutualaid simulate --print-model > model.toml`, edit, and pass `--model model.toml`.
DEFAULT_MODEL_TOML = """\
# mutualaid forecast model: Xiang Hu Bao's main plan, Oct 2018 - Jan 2022 (see docs/forecasts.md).
# Rates are approved claims per 100,000 member-years, [male, female], once the health declaration's
# effect has worn off. Shape: the age gradient of critical illness (mostly cancer) incidence in
# China; level: scaled (incidence_level, selection) so that the simulated plan matches the
# published figures that `mutualaid calibrate` checks.

incidence_level = 1.15
# Severe accidents (burns, limb loss, coma) at every age, covered during the waiting period: the
# only cases of the first weeks, so they set the first shares (2 cases, 0.03 RMB in Jan 2019).
accident_per_100k = 0.2
# Diagnosis -> report -> investigation -> publicity: published 0, 1, 2, ... periods later.
reporting_delay = [0.0, 0.05, 0.25, 0.3, 0.2, 0.1, 0.1]

[[incidence]]
from_age = 0
to_age = 4
severe = [12.0, 10.0]
mild = [1.0, 1.0]

[[incidence]]
from_age = 5
to_age = 9
severe = [7.0, 6.0]
mild = [1.0, 1.0]

[[incidence]]
from_age = 10
to_age = 14
severe = [8.0, 7.0]
mild = [1.0, 2.0]

[[incidence]]
from_age = 15
to_age = 19
severe = [10.0, 9.0]
mild = [1.0, 3.0]

[[incidence]]
from_age = 20
to_age = 24
severe = [14.0, 14.0]
mild = [3.0, 10.0]

[[incidence]]
from_age = 25
to_age = 29
severe = [22.0, 25.0]
mild = [5.0, 20.0]

[[incidence]]
from_age = 30
to_age = 34
severe = [35.0, 42.0]
mild = [7.0, 28.0]

[[incidence]]
from_age = 35
to_age = 39
severe = [55.0, 65.0]
mild = [8.0, 30.0]

[[incidence]]
from_age = 40
to_age = 44
severe = [95.0, 105.0]
mild = [9.0, 30.0]

[[incidence]]
from_age = 45
to_age = 49
severe = [160.0, 155.0]
mild = [9.0, 26.0]

[[incidence]]
from_age = 50
to_age = 54
severe = [260.0, 210.0]
mild = [9.0, 20.0]

[[incidence]]
from_age = 55
to_age = 59
severe = [390.0, 280.0]
mild = [8.0, 14.0]

[[incidence]]
from_age = 60
to_age = 64
severe = [560.0, 380.0]
mild = [6.0, 8.0]

[[incidence]]
from_age = 65
to_age = 69
severe = [800.0, 520.0]
mild = [6.0, 8.0]

[[incidence]]
from_age = 70
to_age = 74
severe = [1100.0, 720.0]
mild = [6.0, 8.0]

[[incidence]]
from_age = 75
to_age = 79
severe = [1450.0, 950.0]
mild = [6.0, 8.0]

[[incidence]]
from_age = 80
to_age = 89
severe = [1800.0, 1200.0]
mild = [6.0, 8.0]

[selection]
# [years since joining, factor]: newly declared-healthy members claim far less.
knots = [[0.0, 0.3], [1.0, 0.64], [2.0, 0.88], [3.0, 1.0]]

[joins]
start_on = 2018-10-16                 # launch
male_share = 0.5
# [day since launch, cumulative joins]: 3.3M in 3 days, 10M in 9 days, ~100M in 13 months.
cumulative = [
  [0, 0],
  [3, 3_300_000],
  [9, 10_000_000],
  [40, 19_000_000],
  [97, 23_500_000],
  [190, 50_000_000],
  [395, 104_000_000],
  [520, 119_000_000],
  [800, 129_000_000],
  [1200, 133_000_000],
  [2400, 140_000_000],
]

[[joins.age_mix]]
from_age = 0
to_age = 4
weight = 3.0

[[joins.age_mix]]
from_age = 5
to_age = 9
weight = 3.0

[[joins.age_mix]]
from_age = 10
to_age = 14
weight = 2.5

[[joins.age_mix]]
from_age = 15
to_age = 19
weight = 3.5

[[joins.age_mix]]
from_age = 20
to_age = 24
weight = 12.0

[[joins.age_mix]]
from_age = 25
to_age = 29
weight = 17.0

[[joins.age_mix]]
from_age = 30
to_age = 34
weight = 16.0

[[joins.age_mix]]
from_age = 35
to_age = 39
weight = 12.0

[[joins.age_mix]]
from_age = 40
to_age = 44
weight = 10.0

[[joins.age_mix]]
from_age = 45
to_age = 49
weight = 9.0

[[joins.age_mix]]
from_age = 50
to_age = 54
weight = 7.0

[[joins.age_mix]]
from_age = 55
to_age = 59
weight = 5.0

[churn]
# Leaving per period = base + per_yuan x (recent charge in yuan): the young leave first.
half_life_periods = 3.0
max_per_period = 0.2

[[churn.bands]]
from_age = 0
to_age = 19
base_per_period = 0.0015
per_yuan = 0.0025

[[churn.bands]]
from_age = 20
to_age = 29
base_per_period = 0.0015
per_yuan = 0.0033

[[churn.bands]]
from_age = 30
to_age = 39
base_per_period = 0.0015
per_yuan = 0.0028

[[churn.bands]]
from_age = 40
to_age = 49
base_per_period = 0.0015
per_yuan = 0.001

[[churn.bands]]
from_age = 50
to_age = 89
base_per_period = 0.0015
per_yuan = 0.0004
"""
