from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.refusals import refused

from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import apply_basis_points
from mutualaid.domain.sharing import (
    Outcome,
    Risk,
    RiskClass,
    SharingRule,
    class_conditional_means,
    class_totals,
    conditional_mean_shares,
    conditional_means,
    distribution_of_sum,
    fairness_report,
    proportional_shares,
    shares,
    uniform_shares,
)

F = Fraction

# --- hand-computed pools --------------------------------------------------------------------------


def test_conditional_means_of_two_bernoulli_members_are_computed_by_hand() -> None:
    # A: 100 with p = 1/10; B: 100 with p = 1/5. S = 100 happens when exactly one claims:
    # P(A only) = 1/10 · 4/5 = 4/50, P(B only) = 9/10 · 1/5 = 9/50, P(S = 100) = 13/50.
    a, b = Risk.bernoulli(100, F(1, 10)), Risk.bernoulli(100, F(1, 5))
    assert conditional_means([a, b], 100) == [F(400, 13), F(900, 13)]
    # S = 200: both claimed; S = 0: nobody did.
    assert conditional_means([a, b], 200) == [100, 100]
    assert conditional_means([a, b], 0) == [0, 0]


def test_conditional_mean_shares_of_two_members_split_the_total_by_largest_remainder() -> None:
    a, b = Risk.bernoulli(100, F(1, 10)), Risk.bernoulli(100, F(1, 5))
    # 108 × 4/13 = 33.23…, 108 × 9/13 = 74.77…: the last fen goes to the larger remainder.
    assert conditional_mean_shares(108, [a, b], 100) == [33, 75]


def test_conditional_means_of_three_members_with_different_payouts() -> None:
    a = Risk.bernoulli(300, F(1, 10))
    b = Risk.bernoulli(100, F(1, 10))
    c = Risk.bernoulli(100, F(1, 5))
    # S = 400 needs A and exactly one of B, C: P(A,B,¬C) = 4/500, P(A,¬B,C) = 9/500.
    assert conditional_means([a, b, c], 400) == [300, F(400, 13), F(900, 13)]
    # S = 200 only as B and C without A.
    assert conditional_means([a, b, c], 200) == [0, 100, 100]
    # S = 100: B alone (36/500) or C alone (81/500).
    assert conditional_means([a, b, c], 100) == [0, F(400, 13), F(900, 13)]
    # S = 300: A alone (0.1 · 0.9 · 0.8 = 72/1000); no other way.
    assert conditional_means([a, b, c], 300) == [300, 0, 0]


def test_a_member_with_two_outcomes_weighs_both() -> None:
    # A: severe 300 w.p. 1/10 or mild 100 w.p. 1/10; B: 100 w.p. 1/2.
    a = Risk((Outcome(300, F(1, 10)), Outcome(100, F(1, 10))))
    b = Risk.bernoulli(100, F(1, 2))
    # S = 100: A mild and B nothing (1/10 · 1/2) or A nothing and B (8/10 · 1/2): 1/20 vs 8/20.
    assert conditional_means([a, b], 100) == [F(100, 9), F(800, 9)]


def test_proportional_shares_follow_expected_losses() -> None:
    risks = [
        Risk.bernoulli(300, F(1, 10)),
        Risk.bernoulli(100, F(1, 10)),
        Risk.bernoulli(100, F(1, 5)),
    ]
    # Expected losses 30, 10, 20.
    assert proportional_shares(120, risks) == [60, 20, 40]
    assert proportional_shares(121, risks) == [61, 20, 40]


def test_uniform_shares_give_the_extra_fen_by_tie_key() -> None:
    assert uniform_shares(10, 3) == [4, 3, 3]
    assert uniform_shares(10, 3, tie_keys=["c", "b", "a"]) == [3, 3, 4]


def test_class_conditional_means_match_the_member_level_rule() -> None:
    young = Risk.bernoulli(300, F(1, 20))
    old = Risk.bernoulli(100, F(1, 5))
    classes = [RiskClass("young", 2, young), RiskClass("old", 3, old)]
    members = [young, young, old, old, old]
    for realised in (100, 200, 300, 400, 500):
        per_member = conditional_means(members, realised)
        assert class_conditional_means(classes, realised) == [per_member[0], per_member[2]]


def test_class_totals_add_up_and_follow_the_rule() -> None:
    classes = [
        RiskClass("young", 3, Risk.bernoulli(300, F(1, 100))),
        RiskClass("old", 1, Risk.bernoulli(100, F(1, 10))),
    ]
    assert class_totals(SharingRule.UNIFORM, 1000, classes, 300) == [750, 250]
    # Expected losses 3 and 10 per member: 9 against 10.
    assert class_totals(SharingRule.PROPORTIONAL, 1900, classes, 300) == [900, 1000]
    assert class_totals(SharingRule.CONDITIONAL_MEAN, 0, classes, 0) == [0, 0]


def test_an_impossible_total_is_refused() -> None:
    with pytest.raises(DomainError) as error:
        conditional_means([Risk.bernoulli(100, F(1, 2))], 50)
    assert error.value.code == "impossible_total"


def test_nobody_at_risk_cannot_carry_a_proportional_total() -> None:
    with pytest.raises(DomainError) as error:
        proportional_shares(100, [Risk(()), Risk(())])
    assert error.value.code == "nothing_to_weigh"


@pytest.mark.parametrize(
    "outcomes",
    [
        (Outcome(0, F(1, 2)),),
        (Outcome(100, F(3, 2)),),
        (Outcome(100, F(2, 3)), Outcome(50, F(2, 3))),
    ],
)
def test_malformed_risks_are_refused(outcomes: tuple[Outcome, ...]) -> None:
    with refused("invalid_risk"):
        Risk(outcomes)


def test_fairness_report_shows_the_young_subsidising_the_old_under_the_uniform_rule() -> None:
    classes = [
        RiskClass("20-29", 3, Risk.bernoulli(100, F(1, 100))),
        RiskClass("50-59", 1, Risk.bernoulli(100, F(7, 100))),
    ]
    young, old = fairness_report(classes, fee_bp=800)
    # E[S] = 3 + 7 = 10 fen; uniform: 1.08 × 10 / 4 = 2.7 each.
    assert young.contribution_fen[SharingRule.UNIFORM] == F(27, 10)
    assert young.ratio(SharingRule.UNIFORM) == F(27, 10) / F(108, 100)
    assert old.ratio(SharingRule.UNIFORM) == F(27, 10) / (7 * F(108, 100))
    for row in (young, old):
        assert row.ratio(SharingRule.PROPORTIONAL) == 1
        assert row.ratio(SharingRule.CONDITIONAL_MEAN) == 1


# --- properties ----------------------------------------------------------------------------------

probabilities = st.fractions(min_value=0, max_value=1, max_denominator=20)
payouts = st.sampled_from([50, 100, 300])


@st.composite
def risks(draw: st.DrawFn) -> Risk:
    first = draw(probabilities)
    outcomes = [Outcome(draw(payouts), first)]
    if draw(st.booleans()):
        outcomes.append(
            Outcome(draw(payouts), draw(st.fractions(0, 1 - first, max_denominator=20)))
        )
    return Risk(tuple(outcomes))


pools = st.lists(risks(), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(pools, st.integers(0, 10**9), st.sampled_from(list(SharingRule)), st.data())
def test_every_rule_allocates_exactly_the_total(
    pool: list[Risk], total: int, rule: SharingRule, data: st.DataObject
) -> None:
    law = distribution_of_sum(pool)
    realised = data.draw(st.sampled_from(sorted(law)))
    if realised == 0 or not any(r.expected_fen for r in pool):
        total = 0
    parts = shares(rule, total, pool, realised)
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)


@settings(max_examples=60, deadline=None)
@given(pools)
def test_conditional_means_add_up_to_the_realised_total(pool: list[Risk]) -> None:
    for realised, probability in distribution_of_sum(pool).items():
        if probability:
            assert sum(conditional_means(pool, realised)) == realised


@settings(max_examples=40, deadline=None)
@given(pools)
def test_conditional_mean_rule_is_fair_in_expectation(pool: list[Risk]) -> None:
    law = distribution_of_sum(pool)
    expected = [F(0)] * len(pool)
    for realised, probability in law.items():
        if probability:
            for index, mean in enumerate(conditional_means(pool, realised)):
                expected[index] += probability * mean
    assert expected == [risk.expected_fen for risk in pool]


def _outcomes(pool: list[Risk]) -> list[tuple[Fraction, int]]:
    """Every joint outcome of a small pool: (probability, realised aid)."""
    laws = [sorted(risk.distribution().items()) for risk in pool]
    joint = []
    for combination in itertools.product(*laws):
        probability = F(1)
        for _, p in combination:
            probability *= p
        joint.append((probability, sum(x for x, _ in combination)))
    return joint


@settings(max_examples=40, deadline=None)
@given(
    st.lists(risks(), min_size=2, max_size=4).filter(lambda p: all(r.expected_fen for r in p)),
    st.sampled_from([0, 800, 1000]),
)
def test_proportional_rule_is_fair_in_expectation(pool: list[Risk], fee_bp: int) -> None:
    """E[share_i] / E[X_i] is the same for every member, to within the rounding to the fen."""
    expected_share = [F(0)] * len(pool)
    expected_total = F(0)
    for probability, realised in _outcomes(pool):
        total = realised + apply_basis_points(realised, fee_bp)
        expected_total += probability * total
        for index, part in enumerate(proportional_shares(total, pool)):
            expected_share[index] += probability * part
    expected_aid = sum((risk.expected_fen for risk in pool), F(0))
    for risk, share in zip(pool, expected_share, strict=True):
        exact = expected_total * risk.expected_fen / expected_aid
        assert abs(share - exact) < 1  # largest remainder: within a fen in every outcome
