"""The simulator's sharing rules against the domain's exact ones (issue 19)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from tests.unit.test_sharing_lattice import OLD_FEN, YOUNG_FEN, _young_part_closed_form

from mutualaid.domain.sharing import (
    Risk,
    RiskClass,
    SharingRule,
    class_conditional_means,
    class_weights,
)
from mutualaid.domain.sharing_bands import banded_weights
from mutualaid.forecasts.rules import WEIGHT_BITS, band_weights, exact_means, quantise

YOUNG = (Fraction(1, 50), 300)  # probability, payout
OLD = (Fraction(1, 10), 100)


def _exact(young: int, old: int, realised: int) -> np.ndarray:
    classes = [
        RiskClass("young", young, Risk.bernoulli(YOUNG[1], YOUNG[0])),
        RiskClass("old", old, Risk.bernoulli(OLD[1], OLD[0])),
    ]
    return np.array([float(mean) for mean in class_conditional_means(classes, realised)])


def _simulated(
    young: int,
    old: int,
    realised: list[int],
    young_risk: tuple[Fraction, int] = YOUNG,
    old_risk: tuple[Fraction, int] = OLD,
) -> np.ndarray:
    counts = np.array([[young, old]] * len(realised), dtype=np.int64)
    probabilities = np.array([[float(young_risk[0])], [float(old_risk[0])]])
    payouts = np.array([[young_risk[1]], [old_risk[1]]], dtype=np.int64)
    return exact_means(counts, probabilities, payouts, np.array(realised, dtype=np.int64))


def test_the_simulators_conditional_mean_is_the_exact_rule_at_every_size() -> None:
    # 40 young and 20 old members (the rational rule), then four times as many (the lattice).
    for scale, realised in ((1, 300), (4, 1200)):
        young, old = 40 * scale, 20 * scale
        simulated = _simulated(young, old, [realised, realised])
        assert simulated[0] == pytest.approx(_exact(young, old, realised), rel=1e-9)
        assert (simulated[0] == simulated[1]).all()  # a repeated row is the same row
        assert float(simulated[0] @ np.array([young, old])) == pytest.approx(realised, rel=1e-9)


@pytest.mark.parametrize(
    ("members", "p_young", "p_old", "expected"),
    [
        (100, Fraction(1, 100), Fraction(5, 100), 0.0411),  # issue 19: the Esscher form gave 0.132
        (50_000, Fraction(1, 10_000), Fraction(5, 10_000), None),  # issue 19: 0.0084 (Esscher)
    ],
)
def test_issue_19s_pools_give_the_young_band_its_exact_part_of_one_large_payout(
    members: int, p_young: Fraction, p_old: Fraction, expected: float | None
) -> None:
    simulated = _simulated(members, members, [YOUNG_FEN], (p_young, YOUNG_FEN), (p_old, OLD_FEN))[0]
    part = members * simulated[0] / YOUNG_FEN
    exact = _young_part_closed_form(members, p_young, members, p_old)
    assert part == pytest.approx(exact, rel=1e-3, abs=1e-9)
    if expected is not None:
        assert round(part, 4) == expected
    # And it is what period close charges (the domain's exact rule), to 0.1 %.
    classes = [
        RiskClass("0-39", members, Risk.bernoulli(YOUNG_FEN, p_young)),
        RiskClass("40-59", members, Risk.bernoulli(OLD_FEN, p_old)),
    ]
    close = banded_weights(SharingRule.CONDITIONAL_MEAN, classes, YOUNG_FEN)
    assert simulated == pytest.approx([float(weight) for weight in close], rel=1e-3)


def test_at_the_expected_total_the_rule_is_near_the_proportional_one() -> None:
    simulated = _simulated(400, 200, [4400])[0]
    assert simulated == pytest.approx([6.0, 10.0], rel=0.05)


def test_a_bad_period_weighs_more_on_the_larger_payouts() -> None:
    low, high = _simulated(160, 80, [1200, 2400])
    assert high[0] / high[1] > low[0] / low[1]


def test_an_aid_the_risks_cannot_produce_is_weighed_by_the_linear_rule_as_at_close() -> None:
    simulated = _simulated(160, 80, [150, 0])  # 150 is off the lattice of 100 and 300
    classes = [
        RiskClass("young", 160, Risk.bernoulli(YOUNG[1], YOUNG[0])),
        RiskClass("old", 80, Risk.bernoulli(OLD[1], OLD[0])),
    ]
    linear = class_weights(SharingRule.LINEAR_COVARIANCE, classes, 150)
    assert simulated[0] == pytest.approx([float(weight) for weight in linear])
    assert simulated[1] == pytest.approx([6.0, 10.0])  # no aid: the expected losses


def test_quantised_weights_keep_their_proportions_and_stay_positive() -> None:
    weights = quantise(np.array([[1.0, 0.5, 1e-9, 0.0]]))
    assert weights.tolist() == [[1 << WEIGHT_BITS, 1 << (WEIGHT_BITS - 1), 1, 0]]


def test_uniform_weights_are_all_one() -> None:
    counts = np.array([[5, 7, 9]], dtype=np.int64)
    weights = band_weights(
        SharingRule.UNIFORM,
        counts,
        np.full((3, 1), 0.01),
        np.full((3, 1), 100, dtype=np.int64),
        np.array([100]),
    )
    assert weights.tolist() == [[1, 1, 1]]
