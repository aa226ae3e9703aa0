"""The shipped model stays calibrated: a change to it or to the simulator that moves it away from
Xiang Hu Bao's published figures fails here (with few scenarios: the medians are stable)."""

from __future__ import annotations

import pytest
from tests.unit.forecasts.builders import main_plan

from mutualaid.forecasts.calibration import TARGETS, CalibrationRow, calibrate
from mutualaid.forecasts.models import default_model

#: How far the median may be from the published figure.
TOLERANCE = {
    "jan_2019_members": 0.05,
    "total_2019": 0.1,
    "total_2020": 0.1,
    "members_nov_2019": 0.05,
    "peak_members": 0.05,
    "members_end_2021": 0.05,
    "share_late_2021": 0.1,
    "cases_2021": 0.15,
    "leavers_2021": 0.2,
    "claim_rate_2019": 0.15,
    "claim_rate": 0.1,
    "cases_total": 0.1,
    "collected_total": 0.15,
}


@pytest.fixture(scope="module")
def rows() -> dict[str, CalibrationRow]:
    _, rows = calibrate(main_plan(), default_model(), scenarios=10, seed=1)
    return {row.target.key: row for row in rows}


def test_every_target_is_reported(rows: dict[str, CalibrationRow]) -> None:
    assert set(rows) == {target.key for target in TARGETS}


@pytest.mark.parametrize("key", sorted(TOLERANCE))
def test_the_default_model_comes_close_to_the_published_figure(
    rows: dict[str, CalibrationRow],
    key: str,
) -> None:
    assert abs(rows[key].relative_error) <= TOLERANCE[key], rows[key]


def test_the_first_shares_are_a_handful_of_cases(rows: dict[str, CalibrationRow]) -> None:
    # January 2019: a few cases among 23M members, a few fen each (small numbers: a band).
    assert rows["jan_2019_cases"].p5 <= 2 <= rows["jan_2019_cases"].p95
    assert rows["jan_2019_share"].p95 <= 0.1
    # The first shares are fitted: 0.03 RMB lies in the band, the median within a fen or two.
    assert rows["jan_2019_share"].p5 <= 0.03 <= rows["jan_2019_share"].p95
    assert abs(rows["jan_2019_share"].median - 0.03) <= 0.015


def test_no_share_is_charged_while_the_platform_pays() -> None:
    result, _ = calibrate(main_plan(), default_model(), scenarios=2, seed=1)
    for t, day in enumerate(result.setup.publicity_on):
        if day.year == 2018 or (day.year, day.month) >= (2021, 12):
            assert (result["charged_fen"][:, t] == 0).all(), day
            assert (result["sponsor_fen"][:, t] >= result["aid_fen"][:, t]).all(), day
    assert result.setup.publicity_on[-1].isoformat() == "2022-01-21"
