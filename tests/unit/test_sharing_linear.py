"""The linear and compensation rules (sharing_linear.py) and the properties every rule keeps by
age band: Σ band parts = need exactly, no share above the cap, equal risk equal share (±1 fen)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.domain.sharing import (
    BANDED_RULES,
    Outcome,
    Risk,
    RiskClass,
    SharingRule,
    class_moments,
    class_weights,
    shares,
)
from mutualaid.domain.sharing_bands import AgeBand, band_shares, fairness_ratios_bp
from mutualaid.domain.sharing_linear import Excess, compensation_ratios, linear_means

YOUNG, OLD = 30_000_000, 10_000_000

_risk = st.builds(
    lambda severe, p_severe, mild, p_mild: Risk(
        (Outcome(severe, Fraction(p_severe, 10**6)), Outcome(mild, Fraction(p_mild, 10**6)))
    ),
    st.sampled_from([YOUNG, OLD, 20_000_000]),
    st.integers(1, 5_000),
    st.sampled_from([5_000_000, 2_500_000]),
    st.integers(0, 1_000),
)


@settings(max_examples=150, deadline=None)
@given(
    rule=st.sampled_from(sorted(BANDED_RULES)),
    same=_risk,
    other=_risk,
    counts=st.tuples(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(0, 10**6)),
    claims=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    need_extra=st.integers(-(10**6), 10**7),
    cap=st.none() | st.integers(0, 10**7),
)
def test_every_rule_adds_up_to_the_need_keeps_the_cap_and_charges_equal_risks_alike(
    rule: SharingRule,
    same: Risk,
    other: Risk,
    counts: tuple[int, int, int],
    claims: tuple[int, int, int],
    need_extra: int,
    cap: int | None,
) -> None:
    """Bands 0 and 1 carry the same risk, band 2 another; the aid is a few severe payouts."""
    risks = (same, same, other)
    bands = [AgeBand(0, 29, same), AgeBand(30, 39, same), AgeBand(40, 59, other)]
    classes = [RiskClass(b.key, n, b.risk) for b, n in zip(bands, counts, strict=True)]
    class_aid = [k * r.outcomes[0].amount_fen for k, r in zip(claims, risks, strict=True)]
    aid = sum(class_aid)
    need = max(0, aid + need_extra)
    lines = band_shares(rule, need, classes, bands, aid, cap, class_aid)
    if need:
        assert sum(line.band_total_fen for line in lines) == need
    for line in lines:
        if cap is not None:
            assert line.share_fen <= cap
        assert line.uncapped_share_fen * line.member_count >= line.band_total_fen
    assert abs(lines[0].uncapped_share_fen - lines[1].uncapped_share_fen) <= 1
    assert abs(lines[0].share_fen - lines[1].share_fen) <= 1


@settings(max_examples=100, deadline=None)
@given(
    rule=st.sampled_from(list(SharingRule)),
    risks=st.lists(_risk, min_size=1, max_size=4),
    repeat=st.integers(2, 4),
    total=st.integers(0, 10**9),
    claims=st.integers(1, 3),
)
def test_members_with_equal_risks_pay_within_a_fen_of_each_other(
    rule: SharingRule, risks: list[Risk], repeat: int, total: int, claims: int
) -> None:
    pool = [risk for risk in risks for _ in range(repeat)]
    realised = claims * pool[0].outcomes[0].amount_fen
    losses = [realised] + [0] * (len(pool) - 1)
    if rule is SharingRule.CONDITIONAL_MEAN:
        rule = SharingRule.LINEAR_COVARIANCE  # exact over rationals: covered by test_sharing
    parts = shares(rule, total, pool, realised, losses=losses)
    assert sum(parts) == total
    for index, risk in enumerate(pool):
        alike = [p for p, r in zip(parts, pool, strict=True) if r == risk]
        assert max(alike) - min(alike) <= 1, (index, alike)


@settings(deadline=None)
@given(
    counts=st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
    realised=st.integers(0, 10**9),
    excess=st.sampled_from(list(Excess)),
)
def test_a_linear_rule_adds_up_to_the_aid_unless_a_weight_is_held_at_zero(
    counts: list[int], realised: int, excess: Excess
) -> None:
    classes = [
        RiskClass(str(i), n, Risk.bernoulli(YOUNG if i % 2 else OLD, Fraction(i + 1, 10**5)))
        for i, n in enumerate(counts)
    ]
    moments = class_moments(classes)
    means = linear_means(moments, realised, excess)
    total = sum((c.count * m for c, m in zip(classes, means, strict=True)), Fraction(0))
    if sum(counts):
        assert total >= realised
        if all(m > 0 for m, c in zip(means, classes, strict=True) if c.count):
            assert total == realised


@settings(deadline=None)
@given(counts=st.lists(st.integers(1, 10**6), min_size=1, max_size=5))
def test_compensation_ratios_pay_every_loss_in_full_and_are_fair_in_expectation(
    counts: list[int],
) -> None:
    classes = [
        RiskClass(str(i), n, Risk.bernoulli(YOUNG - i * 5_000_000, Fraction(2 * i + 1, 10**5)))
        for i, n in enumerate(counts)
    ]
    moments = class_moments(classes)
    ratios = compensation_ratios(moments)
    for b in range(len(classes)):
        assert sum(classes[a].count * ratios[a][b] for a in range(len(classes))) == 1
    for a, row in enumerate(ratios):
        expected = sum(r * c.count * m.mean for r, c, m in zip(row, classes, moments, strict=True))
        assert expected == moments[a].mean


def test_the_covariance_rule_puts_a_bad_period_on_the_band_whose_losses_vary_most() -> None:
    classes = [
        RiskClass("young", 100, Risk.bernoulli(YOUNG, Fraction(1, 100))),
        RiskClass("old", 100, Risk.bernoulli(OLD, Fraction(5, 100))),
    ]
    covariance = class_weights(SharingRule.LINEAR_COVARIANCE, classes, 4 * YOUNG)
    proportional = class_weights(SharingRule.PROPORTIONAL, classes, 4 * YOUNG)
    assert covariance[0] / covariance[1] > proportional[0] / proportional[1]
    assert sum(c.count * w for c, w in zip(classes, covariance, strict=True)) == 4 * YOUNG


def test_the_fairness_ratio_is_a_band_s_part_of_the_need_over_its_part_of_the_expected_aid() -> (
    None
):
    classes = [
        RiskClass("young", 3, Risk.bernoulli(YOUNG, Fraction(1, 100_000))),
        RiskClass("old", 2, Risk.bernoulli(OLD, Fraction(1, 50_000))),
        RiskClass("empty", 0, Risk.bernoulli(OLD, Fraction(1, 50_000))),
    ]
    # Expected aid 900 : 400; the need 1,000 split 600 : 400 -> 0.6 / (9/13) = 0.8667.
    assert fairness_ratios_bp(classes, [600, 400, 0]) == [8_667, 13_000, None]
    assert fairness_ratios_bp(classes, [0, 0, 0]) == [None, None, None]
