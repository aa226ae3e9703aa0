from __future__ import annotations

import pytest
from tests.unit.forecasts.builders import model_data

from mutualaid.domain.errors import DomainError
from mutualaid.forecasts.models import default_model, parse_model, parse_model_toml


def test_the_default_model_parses_and_covers_every_age_of_both_shipped_plans() -> None:
    model = default_model()
    assert model.incidence[0].from_age == 0
    assert model.incidence[-1].to_age >= 80
    assert abs(sum(model.reporting_delay) - 1) < 1e-12


def _refusal(data: dict[str, object]) -> DomainError:
    with pytest.raises(DomainError) as error:
        parse_model(data)
    assert error.value.code == "invalid_model"
    return error.value


def test_a_misspelt_key_is_refused_with_its_path() -> None:
    data = model_data()
    data["churn"]["half_life"] = 2
    assert _refusal(data).field == "churn.half_life"


def test_a_gap_between_incidence_rows_is_refused() -> None:
    data = model_data()
    data["incidence"][3]["from_age"] += 1
    assert _refusal(data).field == "incidence[3].from_age"


def test_decreasing_cumulative_joins_are_refused() -> None:
    data = model_data()
    data["joins"]["cumulative"] = [[0, 0], [10, 100], [20, 50]]
    assert _refusal(data).field == "joins.cumulative[2]"


def test_delays_that_do_not_add_up_to_one_are_refused() -> None:
    data = model_data()
    data["reporting_delay"] = [0.5, 0.4]
    assert _refusal(data).field == "reporting_delay"


def test_a_probability_above_one_is_refused() -> None:
    data = model_data()
    data["accident_share"] = 1.5
    assert _refusal(data).field == "accident_share"


def test_text_that_is_not_toml_is_refused() -> None:
    with pytest.raises(DomainError) as error:
        parse_model_toml("incidence = [")
    assert error.value.code == "invalid_model"
