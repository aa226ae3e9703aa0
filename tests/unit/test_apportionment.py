from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.refusals import refused

from mutualaid.domain.apportionment import (
    BLOCK_BITS,
    CapExcess,
    Cohort,
    Due,
    PastPeriod,
    PeriodState,
    advance,
    apportion,
    cap_may_bind,
    capped_charge,
    charges_leaf,
    cohort_of,
    latest_publicity_day,
    parse_charges_leaf,
    period_dates,
    prorate_payouts,
    prorated_split,
    take_in_order,
    year_to_date,
)
from mutualaid.domain.plans import parse_plan_toml
from mutualaid.plan_files import read_plan_file

RULES = parse_plan_toml(read_plan_file("xhb-main.toml"))

cohorts = st.lists(
    st.builds(
        Cohort,
        key=st.text("abcdef", min_size=1, max_size=4),
        count=st.integers(0, 10**6),
        ytd_fen=st.integers(0, 30_000),
    ),
    min_size=0,
    max_size=6,
)
caps = st.none() | st.integers(1, 50_000)


@given(
    aid=st.integers(0, 10**10),
    cases=st.integers(0, 5000),
    fee_bp=st.integers(0, 5000),
    surplus=st.integers(0, 10**8),
    groups=cohorts,
    per_case=caps,
    annual=caps,
    excess=st.sampled_from(CapExcess),
)
def test_the_figures_always_add_up_to_the_fen(
    aid: int,
    cases: int,
    fee_bp: int,
    surplus: int,
    groups: list[Cohort],
    per_case: int | None,
    annual: int | None,
    excess: CapExcess,
) -> None:
    aid = aid if cases else 0
    f = apportion(
        aid_fen=aid,
        case_count=cases,
        fee_bp=fee_bp,
        surplus_in_fen=surplus,
        cohorts=groups,
        per_case_cap_fen=per_case,
        annual_cap_fen=annual,
        cap_excess=excess,
    )
    members = sum(c.count for c in groups)
    assert f.member_count == members
    assert f.total_charged_fen == sum(c.count * c.charge_fen for c in f.charges)
    assert (
        f.total_charged_fen + f.sponsor_fen + f.prorated_fen
        == f.aid_fen + f.fee_fen - f.surplus_in_fen + f.surplus_out_fen
    )
    assert min(f.sponsor_fen, f.prorated_fen, f.surplus_out_fen, f.total_charged_fen) >= 0
    assert f.sponsor_fen == 0 or f.prorated_fen == 0
    assert f.surplus_out_fen == 0 or f.sponsor_fen + f.prorated_fen == 0
    for cohort, charge in zip(groups, f.charges, strict=True):
        assert charge.charge_fen <= f.share_fen
        if annual is not None:
            assert cohort.ytd_fen + charge.charge_fen <= max(annual, cohort.ytd_fen)
    if per_case is not None:
        assert f.share_fen <= cases * per_case
    need = f.aid_fen + f.fee_fen - surplus
    if members and need > 0:
        # Rounded up: the smallest share that covers the need, before any cap.
        assert f.uncapped_share_fen * members >= need > (f.uncapped_share_fen - 1) * members
        if per_case is None and annual is None:
            assert f.surplus_out_fen < members and f.sponsor_fen == 0
    if cases == 0:
        assert (f.fee_fen, f.share_fen, f.total_charged_fen) == (0, 0, 0)
        assert f.surplus_out_fen == surplus


def test_the_xhb_example_eight_percent_fee_rounded_up() -> None:
    f = apportion(
        aid_fen=30_000_000,
        case_count=1,
        fee_bp=800,
        surplus_in_fen=0,
        cohorts=[Cohort("all", 7_000_000)],
        per_case_cap_fen=None,
        annual_cap_fen=None,
    )
    assert (f.fee_fen, f.uncapped_share_fen, f.total_charged_fen, f.surplus_out_fen) == (
        2_400_000,
        5,
        35_000_000,
        2_600_000,
    )


def test_a_surplus_that_covers_everything_charges_nothing_and_carries_the_rest() -> None:
    f = apportion(
        aid_fen=100,
        case_count=1,
        fee_bp=0,
        surplus_in_fen=150,
        cohorts=[Cohort("all", 3)],
        per_case_cap_fen=None,
        annual_cap_fen=None,
    )
    assert (f.share_fen, f.total_charged_fen, f.surplus_out_fen) == (0, 0, 50)


def test_nobody_to_share_with_means_the_sponsor_pays_it_all() -> None:
    f = apportion(
        aid_fen=100,
        case_count=1,
        fee_bp=1000,
        surplus_in_fen=0,
        cohorts=[],
        per_case_cap_fen=None,
        annual_cap_fen=None,
    )
    assert (f.total_charged_fen, f.sponsor_fen) == (0, 110)


@given(
    shares=st.lists(
        st.tuples(st.integers(0, 5000), st.none() | st.integers(1, 20_000)), max_size=30
    ),
    skip=st.lists(st.booleans(), max_size=30),
)
def test_a_member_who_missed_periods_has_no_more_charged_than_one_who_shared_in_all(
    shares: list[tuple[int, int | None]], skip: list[bool]
) -> None:
    periods = [
        PastPeriod(date(2026, 1, 1) + timedelta(days=i), datetime(2026, 1, 1, tzinfo=UTC), s, cap)
        for i, (s, cap) in enumerate(shares)
    ]
    everyone = year_to_date(periods)
    some = year_to_date(
        [p for p, missed in zip(periods, skip + [False] * 30, strict=False) if not missed]
    )
    assert some <= everyone
    last_cap = min((p.annual_cap_fen for p in periods if p.annual_cap_fen), default=None)
    if last_cap is not None and all(p.annual_cap_fen == last_cap for p in periods):
        assert everyone <= last_cap
    share = 100
    if not cap_may_bind(share, last_cap, everyone):
        assert capped_charge(share, last_cap, some) == share


def test_cohorts_are_the_first_period_of_the_year_after_joining() -> None:
    year = [
        PastPeriod(date(2026, 1, 7), datetime(2026, 1, 6, 16, tzinfo=UTC), 10, 100),
        PastPeriod(date(2026, 1, 21), datetime(2026, 1, 20, 16, tzinfo=UTC), 10, 100),
    ]
    assert cohort_of(datetime(2025, 12, 1, tzinfo=UTC), year, date(2026, 2, 7)) == date(2026, 1, 7)
    assert cohort_of(datetime(2026, 1, 6, 16, tzinfo=UTC), year, date(2026, 2, 7)) == date(
        2026, 1, 21
    )
    assert cohort_of(datetime(2026, 1, 30, tzinfo=UTC), year, date(2026, 2, 7)) == date(2026, 2, 7)


def test_the_lock_is_midnight_of_publicity_day_in_the_plan_zone() -> None:
    dates = period_dates(RULES, date(2026, 3, 7))
    assert dates.lock_at == datetime(2026, 3, 6, 16, tzinfo=UTC)
    assert dates.debit_on == date(2026, 3, 14)
    assert period_dates(RULES, date(2026, 3, 21)).debit_on == date(2026, 3, 28)
    with refused("not_a_publicity_day"):
        period_dates(RULES, date(2026, 3, 8))
    assert latest_publicity_day(RULES, date(2026, 3, 6)) == date(2026, 2, 21)
    assert latest_publicity_day(RULES, date(2026, 3, 7)) == date(2026, 3, 7)


def test_a_period_moves_only_forward_one_step_at_a_time() -> None:
    assert advance(PeriodState.LOCKED, PeriodState.COMPUTED) is PeriodState.COMPUTED
    with refused("invalid_transition"):
        advance(PeriodState.LOCKED, PeriodState.COMMITTED)
    with refused("invalid_transition"):
        advance(PeriodState.PAID, PeriodState.LOCKED)


def _due(membership_id: int, charge: int, own: bool, day: int) -> Due:
    return Due(membership_id, charge, own, datetime(2025, 1, day, tzinfo=UTC))


def test_the_payers_own_share_comes_first_then_family_by_joining_order() -> None:
    dues = [_due(1, 10, False, 2), _due(2, 10, True, 3), _due(3, 10, False, 1)]
    paid, unpaid = take_in_order(25, dues)
    assert [d.membership_id for d in paid] == [2, 3]
    assert [d.membership_id for d in unpaid] == [1]
    paid, unpaid = take_in_order(9, dues)
    assert paid == [] and len(unpaid) == 3


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=10), st.integers(0, 10_000))
def test_what_is_taken_never_exceeds_what_is_available(charges: list[int], available: int) -> None:
    dues = [_due(i, c, i == 0, 1 + i) for i, c in enumerate(charges)]
    paid, unpaid = take_in_order(available, dues)
    assert sum(d.charge_fen for d in paid) <= available
    assert len(paid) + len(unpaid) == len(dues)


@given(st.lists(st.integers(1, 10**8), min_size=1, max_size=20), st.data())
def test_prorated_payouts_lose_exactly_the_cut(amounts: list[int], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, sum(amounts)))
    paid = prorate_payouts([(f"c{i}", a) for i, a in enumerate(amounts)], cut)
    assert sum(paid) == sum(amounts) - cut
    assert all(0 <= p <= a for p, a in zip(paid, amounts, strict=True))


@given(st.integers(0, 10**9), st.integers(0, 10**8), st.data())
def test_a_prorated_shortfall_is_split_between_aid_and_fee(
    aid: int, fee: int, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, aid + fee))
    aid_cut, fee_cut = prorated_split(aid, fee, cut)
    assert aid_cut + fee_cut == cut and 0 <= aid_cut <= aid and 0 <= fee_cut <= fee


@given(
    st.lists(
        st.tuples(st.integers(0, (1 << BLOCK_BITS) - 1), st.integers(0, 10**6)),
        unique_by=lambda t: t[0],
        max_size=50,
    ),
    st.integers(0, 10**6),
)
def test_a_charges_leaf_reads_back_what_was_written(
    pairs: list[tuple[int, int]], block: int
) -> None:
    pairs = sorted((block << BLOCK_BITS | i, c) for i, c in pairs)
    leaf = charges_leaf("xhb-main/2026-03-07", block, pairs)
    assert parse_charges_leaf(leaf, "xhb-main/2026-03-07") == (block, pairs)
    with refused("invalid_charges_leaf"):
        parse_charges_leaf(leaf, "xhb-main/2026-03-21")


def test_a_charges_leaf_refuses_members_outside_its_block_or_out_of_order() -> None:
    with pytest.raises(ValueError):
        charges_leaf("p", 0, [(1 << BLOCK_BITS, 5)])
    with pytest.raises(ValueError):
        charges_leaf("p", 0, [(5, 1), (4, 1)])
