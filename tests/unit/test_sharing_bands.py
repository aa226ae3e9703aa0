"""Age bands for apportionment under the non-uniform sharing rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.domain.apportionment import CapExcess, capped_charge
from mutualaid.domain.calendars import age_in_years
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import parse_plan_toml
from mutualaid.domain.sharing import Risk, RiskClass, SharingRule, class_weights
from mutualaid.domain.sharing_bands import (
    AgeBand,
    BandedPast,
    BirthInterval,
    apportion_banded,
    band_cuts,
    band_groups,
    band_index,
    banded_weights,
    banded_year_to_date,
    birth_intervals,
    plan_bands,
)
from mutualaid.plan_files import read_plan_file

FROM_AGES = [0, 5, 18, 29, 40, 55, 60]


@settings(max_examples=300, deadline=None)
@given(
    born=st.dates(date(1900, 1, 1), date(2030, 12, 31)),
    on=st.builds(date, st.integers(1990, 2040), st.integers(1, 12), st.integers(1, 28)),
)
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
    lambda young, old: (
        Risk.bernoulli(30_000_000, Fraction(young, 10**6)),
        Risk.bernoulli(10_000_000, Fraction(old, 10**6)),
    ),
    st.integers(0, 50),
    st.integers(0, 200),
)


@settings(max_examples=200, deadline=None)
@given(
    rule=st.sampled_from(list(SharingRule)),
    risks=_RISKS,
    counts=st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)),
    cases=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    surplus=st.integers(0, 10**6),
    fee_bp=st.integers(0, 2000),
    per_case=st.none() | st.integers(0, 100),
    excess=st.sampled_from(list(CapExcess)),
)
def test_the_band_split_adds_up_to_the_need_and_the_period_balances_to_the_fen(
    rule: SharingRule,
    risks: tuple[Risk, Risk],
    counts: tuple[int, int],
    cases: tuple[int, int],
    surplus: int,
    fee_bp: int,
    per_case: int | None,
    excess: CapExcess,
) -> None:
    bands = [AgeBand(0, 39, risks[0]), AgeBand(40, 59, risks[1])]
    classes = [RiskClass(b.key, n, b.risk) for b, n in zip(bands, counts, strict=True)]
    aid = cases[0] * 30_000_000 + cases[1] * 10_000_000
    figures, lines = apportion_banded(
        rule=rule,
        aid_fen=aid,
        case_count=sum(cases),
        fee_bp=fee_bp,
        surplus_in_fen=surplus,
        classes=classes,
        bands=bands,
        per_case_cap_fen=per_case,
        cap_excess=excess,
    )
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
    assert (
        figures.total_charged_fen + figures.sponsor_fen + figures.prorated_fen
        == aid + figures.fee_fen - surplus + figures.surplus_out_fen
    )


def test_a_total_the_risks_cannot_produce_is_weighed_by_the_linear_covariance_rule() -> None:
    """No Esscher form at close: an aid off the payouts' lattice (or beyond every member claiming)
    has no conditional mean, and the exact covariance-based linear rule weighs it instead."""
    young, old = (
        Risk.bernoulli(30_000_000, Fraction(1, 100_000)),
        Risk.bernoulli(10_000_000, Fraction(1, 50_000)),
    )
    for count in (10, 600_000):
        classes = [RiskClass("young", count, young), RiskClass("old", count, old)]
        for realised in (400_000_001, 2 * count * 30_000_000 + 10_000_000):
            weights = banded_weights(SharingRule.CONDITIONAL_MEAN, classes, realised)
            assert weights == class_weights(SharingRule.LINEAR_COVARIANCE, classes, realised)
            total = sum((c.count * w for c, w in zip(classes, weights, strict=True)), Fraction(0))
            assert total == realised


def test_the_demo_plan_uses_the_default_band_table_up_to_its_exit_age() -> None:
    bands = plan_bands(parse_plan_toml(read_plan_file("xhb-main.toml")))
    assert [b.from_age for b in bands] == list(range(0, 60, 5))
    # 55-59: 3,852 severe (100,000 yuan) and 126 mild (50,000 yuan) per million a year, 24 periods.
    assert bands[-1].risk.expected_fen == Fraction(3852 * 10_000_000 + 126 * 5_000_000, 24 * 10**6)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        (
            "from_age = 0\nto_age = 29\nsevere_per_million = 1\n[[sharing_bands]]\nfrom_age = 31\n"
            "to_age = 59\nsevere_per_million = 1",
            "sharing_bands[1].from_age",
        ),
        (
            "from_age = 0\nto_age = 44\nsevere_per_million = 1\n[[sharing_bands]]\nfrom_age = 45\n"
            "to_age = 59\nsevere_per_million = 1",
            "sharing_bands[0]",
        ),
        ("from_age = 0\nto_age = 39\nsevere_per_million = 1", "sharing_bands[0].to_age"),
    ],
)
def test_a_band_table_with_a_gap_a_payout_change_inside_or_too_short_is_refused(
    table: str, field: str
) -> None:
    text = read_plan_file("xhb-main.toml") + "\n[[sharing_bands]]\n" + table + "\n"
    with pytest.raises(DomainError) as error:
        parse_plan_toml(text)
    assert (error.value.code, error.value.field) == ("invalid_plan", field)


# --- the annual cap under banded sharing -------------------------------------------------------

#: Publicity days of 2026 (7th and 21st); members born around 1985-86 turn 40 and 41 during it.
YEAR_DAYS = [date(2026, month, day) for month in range(1, 13) for day in (7, 21)]
_MEMBER = st.tuples(st.dates(date(1984, 11, 1), date(1986, 12, 31)), st.integers(0, 5))


@settings(max_examples=150, deadline=None)
@given(
    members=st.lists(_MEMBER, min_size=1, max_size=12),
    rates=st.tuples(st.integers(1, 60), st.integers(1, 60), st.integers(1, 60)),
    cases=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=6, max_size=6),
    start=st.integers(0, 18),
    annual_cap=st.integers(0, 40_000_000),
    rule=st.sampled_from([SharingRule.PROPORTIONAL, SharingRule.CONDITIONAL_MEAN]),
)
def test_groups_by_cohort_and_birth_interval_charge_every_member_exactly_their_capped_share(
    members: list[tuple[date, int]],
    rates: tuple[int, int, int],
    cases: list[tuple[int, int]],
    start: int,
    annual_cap: int,
    rule: SharingRule,
) -> None:
    """Six periods of a year, members joining at random ones and crossing band edges: each group
    charge is what member-by-member arithmetic gives (their own band share, capped at what their
    own year leaves), nobody's year passes the cap, and every period balances to the fen."""
    bands = [
        AgeBand(0, 39, Risk.bernoulli(30_000_000, Fraction(rates[0], 10**6))),
        AgeBand(40, 40, Risk.bernoulli(10_000_000, Fraction(rates[1], 10**6))),
        AgeBand(41, 59, Risk.bernoulli(10_000_000, Fraction(rates[2], 10**6))),
    ]
    year: list[BandedPast] = []
    paid = [0] * len(members)
    surplus = 0
    for position, on in enumerate(YEAR_DAYS[start : start + 6]):
        cuts = band_cuts(on, [b.from_age for b in bands])
        intervals, groups = band_groups(year, cuts)
        sharing = [i for i, (_, joins) in enumerate(members) if joins <= position]
        # A member's cohort is the first period they share in: the one they join at.
        group_of = {
            i: next(
                g
                for g in groups
                if g.cohort == members[i][1] and intervals[g.interval].holds(members[i][0])
            )
            for i in sharing
        }
        counted = [replace(g, count=sum(1 for i in sharing if group_of[i] == g)) for g in groups]
        counted = [g for g in counted if g.count]
        young, old = cases[position]
        figures, lines = apportion_banded(
            rule=rule,
            aid_fen=young * 30_000_000 + old * 10_000_000,
            case_count=young + old,
            fee_bp=800,
            surplus_in_fen=surplus,
            classes=[
                RiskClass(
                    b.key,
                    sum(1 for i in sharing if band_index(members[i][0], cuts) == index),
                    b.risk,
                )
                for index, b in enumerate(bands)
            ],
            bands=bands,
            per_case_cap_fen=None,
            annual_cap_fen=annual_cap,
            groups=counted,
        )
        charge_of = {c.key: c.charge_fen for c in figures.charges}
        total = 0
        for i in sharing:
            born = members[i][0]
            assert group_of[i].ytd_fen == paid[i]
            charge = charge_of[group_of[i].key]
            assert charge == capped_charge(
                lines[band_index(born, cuts)].share_fen, annual_cap, paid[i]
            )
            paid[i] += charge
            assert paid[i] <= annual_cap
            total += charge
        assert total == figures.total_charged_fen
        assert total + figures.capped_fen == sum(
            line.member_count * line.uncapped_share_fen for line in lines
        )
        assert total + figures.sponsor_fen == figures.need_fen + figures.surplus_out_fen
        surplus = figures.surplus_out_fen
        year.append(BandedPast(tuple(cuts), tuple(line.share_fen for line in lines), annual_cap))


def test_birth_intervals_are_cut_at_every_band_edge_of_the_year() -> None:
    march_7, march_21 = band_cuts(date(2026, 3, 7), [0, 40]), band_cuts(date(2026, 3, 21), [0, 40])
    intervals = birth_intervals([march_7, march_21, march_7])
    assert [(i.born_after_on, i.born_by_on) for i in intervals] == [
        (None, date(1986, 3, 7)),
        (date(1986, 3, 7), date(1986, 3, 21)),
        (date(1986, 3, 21), None),
    ]
    assert [i.holds(date(1986, 3, 8)) for i in intervals] == [False, True, False]
    assert intervals[2].representative == date(1986, 3, 22)
    # Born 8 March 1986: young on 7 March (9 fen), old on 21 March (4 fen), cap 12: 9 + 3.
    year = [BandedPast(tuple(march_7), (9, 5), 12), BandedPast(tuple(march_21), (9, 4), 12)]
    assert banded_year_to_date(year, date(1986, 3, 8)) == 12
    assert banded_year_to_date(year, date(1986, 3, 7)) == 9
    assert banded_year_to_date([*year, BandedPast((), (7,), 12)], date(1990, 1, 1)) == 12
    assert birth_intervals([]) == [BirthInterval(None, None)]
