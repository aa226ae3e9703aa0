from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from mutualaid.domain.sharing import Risk, RiskClass, SharingRule, class_conditional_means
from mutualaid.forecasts.rules import WEIGHT_BITS, band_weights, quantise, tilted_means

YOUNG = (Fraction(1, 50), 300)  # probability, payout
OLD = (Fraction(1, 10), 100)


def _exact(young: int, old: int, realised: int) -> np.ndarray:
    classes = [
        RiskClass("young", young, Risk.bernoulli(YOUNG[1], YOUNG[0])),
        RiskClass("old", old, Risk.bernoulli(OLD[1], OLD[0])),
    ]
    return np.array([float(mean) for mean in class_conditional_means(classes, realised)])


def _tilted(young: int, old: int, realised: list[int]) -> np.ndarray:
    counts = np.array([[young, old]] * len(realised), dtype=np.int64)
    probabilities = np.array([[float(YOUNG[0])], [float(OLD[0])]])
    payouts = np.array([[YOUNG[1]], [OLD[1]]], dtype=np.int64)
    return tilted_means(counts, probabilities, payouts, np.array(realised, dtype=np.int64))


def test_the_large_pool_rule_converges_to_the_exact_conditional_mean() -> None:
    # 40 young and 20 old members, then four times as many; a period at 70% of E[S] (440, 1760).
    errors = []
    for scale, realised in ((1, 300), (4, 1200)):
        young, old = 40 * scale, 20 * scale
        approximate = _tilted(young, old, [realised])[0]
        exact = _exact(young, old, realised)
        errors.append(float(np.abs(approximate / exact - 1).max()))
        # Whatever the pool, the approximate contributions add up to the realised total.
        assert float(approximate @ np.array([young, old])) == pytest.approx(realised, rel=1e-9)
    assert errors[1] < 0.05
    assert errors[1] < errors[0] / 4  # the error falls like 1/n


def test_at_the_expected_total_the_rule_is_the_proportional_one() -> None:
    approximate = _tilted(40, 20, [440])[0]
    assert approximate == pytest.approx([6.0, 10.0], rel=1e-6)


def test_a_bad_period_weighs_more_on_the_larger_payouts() -> None:
    low, high = _tilted(40, 20, [300, 1200])
    assert high[0] / high[1] > low[0] / low[1]


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
