"""Age bands for apportionment under the non-uniform sharing rules."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.domain.apportionment import CapExcess
from mutualaid.domain.calendars import age_in_years
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import parse_plan_toml
from mutualaid.domain.sharing import (
    AgeBand,
    Risk,
    RiskClass,
    SharingRule,
    apportion_banded,
    band_cuts,
    band_index,
    plan_bands,
    tilted_means,
)
from mutualaid.plan_files import read_plan_file

FROM_AGES = [0, 5, 18, 29, 40, 55, 60]


@settings(max_examples=300, deadline=None)
@given(born=st.dates(date(1900, 1, 1), date(2030, 12, 31)),
       on=st.builds(date, st.integers(1990, 2040), st.integers(1, 12), st.integers(1, 28)))
def test_the_band_of_a_birth_date_is_the_band_of_the_age_on_that_day(born: date, on: date) -> None:
    age = age_in_years(born, on)
    expected = max(i for i, low in enumerate(FROM_AGES) if low <= max(age, 0))
    assert band_index(born, band_cuts(on, FROM_AGES)) == expected


def test_a_29_february_birthday_reaches_the_band_on_1_march_in_a_common_year() -> None:
    cuts = band_cuts(date(2027, 2, 28), [0, 40])
    assert band_index(date(1987, 2, 28), cuts) == 1
    assert band_index(date(1988, 2, 29), band_cuts(date(2028, 2, 28), [0, 40])) == 0
    assert band_index(date(1988, 2, 29), band_cuts(date(2028, 3, 1), [0, 40])) == 1


_RISKS = st.builds(
    lambda young, old: (Risk.bernoulli(30_000_000, Fraction(young, 10**6)),
                        Risk.bernoulli(10_000_000, Fraction(old, 10**6))),
    st.integers(0, 50), st.integers(0, 200))


@settings(max_examples=200, deadline=None)
@given(rule=st.sampled_from(list(SharingRule)), risks=_RISKS,
       counts=st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)),
       cases=st.tuples(st.integers(0, 3), st.integers(0, 3)),
       surplus=st.integers(0, 10**6), fee_bp=st.integers(0, 2000),
       per_case=st.none() | st.integers(0, 100),
       excess=st.sampled_from(list(CapExcess)))
def test_the_band_split_adds_up_to_the_need_and_the_period_balances_to_the_fen(
    rule: SharingRule, risks: tuple[Risk, Risk], counts: tuple[int, int],
    cases: tuple[int, int], surplus: int, fee_bp: int, per_case: int | None,
    excess: CapExcess,
) -> None:
    bands = [AgeBand(0, 39, risks[0]), AgeBand(40, 59, risks[1])]
    classes = [RiskClass(b.key, n, b.risk) for b, n in zip(bands, counts, strict=True)]
    aid = cases[0] * 30_000_000 + cases[1] * 10_000_000
    figures, lines = apportion_banded(
        rule=rule, aid_fen=aid, case_count=sum(cases), fee_bp=fee_bp, surplus_in_fen=surplus,
        classes=classes, bands=bands, per_case_cap_fen=per_case, cap_excess=excess)
    need = figures.need_fen
    if need > 0 and sum(counts):
        assert sum(line.band_total_fen for line in lines) == need
    else:
        assert all(line.band_total_fen == 0 for line in lines)
    for line in lines:
        # Each band's share is its part over its members, rounded up, then capped.
        if line.member_count:
            assert line.uncapped_share_fen == -(-line.band_total_fen // line.member_count)
        if per_case is not None:
            assert line.share_fen <= sum(cases) * per_case
    if need > 0:
        # Rounding up never over-collects a whole fen per member of any band.
        assert figures.surplus_out_fen < max(1, sum(counts))
    else:
        assert (figures.total_charged_fen, figures.surplus_out_fen) == (0, -need)
    assert figures.total_charged_fen + figures.sponsor_fen + figures.prorated_fen \
        == aid + figures.fee_fen - surplus + figures.surplus_out_fen


def test_the_large_pool_conditional_mean_adds_up_to_the_aid_and_is_proportional_at_the_mean(
) -> None:
    young, old = Risk.bernoulli(30_000_000, Fraction(1, 100_000)), \
        Risk.bernoulli(10_000_000, Fraction(1, 50_000))
    classes = [RiskClass("young", 600_000, young), RiskClass("old", 400_000, old)]
    for realised in (10_000_000, 90_000_000, 400_000_000):
        means = tilted_means(classes, realised)
        total = sum(c.count * m for c, m in zip(classes, means, strict=True))
        assert abs(total - realised) < Fraction(1, 10**3)
    at_mean = tilted_means(classes, 600_000 * 300 + 400_000 * 200)
    assert [round(float(m), 6) for m in at_mean] == [300.0, 200.0]
    # A bad period of big (young) payouts puts more of it on the young than the mean does.
    heavy = tilted_means(classes, 600_000_000)
    assert heavy[0] / heavy[1] > Fraction(3, 2)


def test_the_demo_plan_uses_the_default_band_table_up_to_its_exit_age() -> None:
    bands = plan_bands(parse_plan_toml(read_plan_file("xhb-main.toml")))
    assert [b.from_age for b in bands] == list(range(0, 60, 5))
    # 55-59: 3,852 severe (100,000 yuan) and 126 mild (50,000 yuan) per million a year, 24 periods.
    assert bands[-1].risk.expected_fen == Fraction(3852 * 10_000_000 + 126 * 5_000_000, 24 * 10**6)


@pytest.mark.parametrize(("table", "field"), [
    ("from_age = 0\nto_age = 29\nsevere_per_million = 1\n[[sharing_bands]]\nfrom_age = 31\n"
     "to_age = 59\nsevere_per_million = 1", "sharing_bands[1].from_age"),
    ("from_age = 0\nto_age = 44\nsevere_per_million = 1\n[[sharing_bands]]\nfrom_age = 45\n"
     "to_age = 59\nsevere_per_million = 1", "sharing_bands[0]"),
    ("from_age = 0\nto_age = 39\nsevere_per_million = 1", "sharing_bands[0].to_age"),
])
def test_a_band_table_with_a_gap_a_payout_change_inside_or_too_short_is_refused(
    table: str, field: str
) -> None:
    text = read_plan_file("xhb-main.toml") + "\n[[sharing_bands]]\n" + table + "\n"
    with pytest.raises(DomainError) as error:
        parse_plan_toml(text)
    assert (error.value.code, error.value.field) == ("invalid_plan", field)
