"""The conditional mean at any pool size (sharing_lattice.py) against the exact rational rule and
against closed forms, including the pools of issue 19's table where the Esscher form was far off."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.domain.errors import DomainError
from mutualaid.domain.sharing import Outcome, Risk, RiskClass, SharingRule, class_conditional_means
from mutualaid.domain.sharing_bands import banded_weights
from mutualaid.domain.sharing_lattice import lattice_conditional_means

YOUNG_FEN, OLD_FEN = 30_000_000, 10_000_000


def _two_bands(young: int, p_young: Fraction, old: int, p_old: Fraction) -> list[RiskClass]:
    return [
        RiskClass("0-39", young, Risk.bernoulli(YOUNG_FEN, p_young)),
        RiskClass("40-59", old, Risk.bernoulli(OLD_FEN, p_old)),
    ]


def _young_part_closed_form(young: int, p_young: Fraction, old: int, p_old: Fraction) -> float:
    """Share of a ¥300,000 total borne by the young band: the total is either one young claim and
    no old one, or three old claims and no young one (50-digit decimals: (1 − p)^n is tiny)."""
    with localcontext() as context:
        context.prec = 50
        py, po = (
            Decimal(p_young.numerator) / p_young.denominator,
            Decimal(p_old.numerator) / (p_old.denominator),
        )
        one_young = young * py * (1 - py) ** (young - 1) * (1 - po) ** old
        three_old = math.comb(old, 3) * po**3 * (1 - po) ** (old - 3) * (1 - py) ** young
        return float(one_young / (one_young + three_old))


@pytest.mark.parametrize(
    ("young", "p_young", "old", "p_old", "expected"),
    [
        # Issue 19's table: exact 0.041 where the close used 0.132.
        (100, Fraction(1, 100), 100, Fraction(5, 100), 0.0411),
        # The switch-over that jumped from 0.309 (exact) to 0.423 (Esscher) at 65 members.
        (32, Fraction(1, 100), 32, Fraction(5, 100), 0.3089),
        (33, Fraction(1, 100), 32, Fraction(5, 100), None),
        (5_000, Fraction(1, 10_000), 5_000, Fraction(5, 10_000), None),
        (50_000, Fraction(1, 10_000), 50_000, Fraction(5, 10_000), None),
        (5_000_000, Fraction(1, 100_000), 5_000_000, Fraction(5, 100_000), None),
    ],
)
def test_the_young_bands_part_of_one_large_payout_is_the_exact_conditional_mean(
    young: int, p_young: Fraction, old: int, p_old: Fraction, expected: float | None
) -> None:
    classes = _two_bands(young, p_young, old, p_old)
    means = lattice_conditional_means(classes, YOUNG_FEN)
    part = float(young * means[0] / YOUNG_FEN)
    exact = _young_part_closed_form(young, p_young, old, p_old)
    assert part == pytest.approx(exact, abs=1e-9)
    if expected is not None:
        assert round(part, 4) == expected
    # Σ n E[X | S = s] = s, to 10^-9 of the aid.
    total = sum((c.count * m for c, m in zip(classes, means, strict=True)), Fraction(0))
    assert abs(total - YOUNG_FEN) <= Fraction(YOUNG_FEN, 10**9)


def test_no_jump_at_the_size_where_the_rational_rule_hands_over() -> None:
    """64 members use the rational rule, 65 the lattice: the two sides agree with their own
    exact values, so the band's part moves smoothly (it jumped by 0.11 with the Esscher form)."""
    parts = []
    for young in (32, 33):
        classes = _two_bands(young, Fraction(1, 100), 32, Fraction(5, 100))
        weights = banded_weights(SharingRule.CONDITIONAL_MEAN, classes, YOUNG_FEN)
        parts.append(float(young * weights[0] / YOUNG_FEN))
        exact = _young_part_closed_form(young, Fraction(1, 100), 32, Fraction(5, 100))
        assert parts[-1] == pytest.approx(exact, abs=1e-9)
    assert abs(parts[1] - parts[0]) < 0.02


_outcome = st.builds(
    Outcome,
    st.sampled_from([1_000, 2_000, 3_000, 5_000]),
    st.fractions(min_value=Fraction(1, 100), max_value=Fraction(30, 100), max_denominator=100),
)


@st.composite
def _pools(draw: st.DrawFn) -> tuple[list[RiskClass], int]:
    classes = []
    for index in range(draw(st.integers(1, 3))):
        outcomes = draw(
            st.lists(_outcome, min_size=1, max_size=2, unique_by=lambda o: o.amount_fen)
        )
        classes.append(RiskClass(str(index), draw(st.integers(1, 10)), Risk(tuple(outcomes))))
    realised = draw(st.sampled_from([1_000, 2_000, 3_000, 5_000, 8_000, 13_000]))
    return classes, realised


@settings(max_examples=60, deadline=None)
@given(_pools())
def test_the_lattice_rule_agrees_with_the_rational_rule_on_small_pools(
    pool: tuple[list[RiskClass], int],
) -> None:
    classes, realised = pool
    try:
        exact = class_conditional_means(classes, realised)
    except DomainError:
        with pytest.raises(DomainError):
            lattice_conditional_means(classes, realised)
        return
    lattice = lattice_conditional_means(classes, realised)
    # The FFT works in floats: a class the total cannot include may get ~1e-6 fen instead of 0
    # (Hypothesis found 1e-5 fen on a total of 8,000 fen). A millionth of the total is still five
    # orders of magnitude below the fen that the split (allocate) rounds to.
    for risk_class, want, got in zip(classes, exact, lattice, strict=True):
        assert abs(risk_class.count * (got - want)) <= Fraction(realised, 10**6)


def test_a_total_off_the_lattice_is_refused_with_its_code() -> None:
    classes = _two_bands(1_000, Fraction(1, 1000), 1_000, Fraction(1, 1000))
    with pytest.raises(DomainError) as refusal:
        lattice_conditional_means(classes, YOUNG_FEN + 1)
    assert refusal.value.code == "impossible_total"
    # More than every member claiming at once.
    with pytest.raises(DomainError) as too_much:
        lattice_conditional_means(classes, 2_000 * YOUNG_FEN)
    assert too_much.value.code == "impossible_total"
