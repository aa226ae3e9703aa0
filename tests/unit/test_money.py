from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import allocate, apply_basis_points, ceil_div, format_yuan, parse_yuan


@given(
    total=st.integers(min_value=0, max_value=10**15),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=60).filter(
        any
    ),
)
def test_allocation_always_sums_to_the_total_exactly(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)


@given(
    total=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(st.integers(min_value=1, max_value=10**4), min_size=1, max_size=40),
)
def test_each_part_is_within_one_fen_of_its_exact_share(total: int, weights: list[int]) -> None:
    weight_sum = sum(weights)
    for part, weight in zip(allocate(total, weights), weights, strict=True):
        exact_times_sum = total * weight
        assert part * weight_sum >= exact_times_sum - weight_sum
        assert part * weight_sum <= exact_times_sum + weight_sum


def test_allocation_breaks_ties_by_the_tie_key_not_by_position() -> None:
    assert allocate(1, [1, 1, 1], tie_keys=["c", "a", "b"]) == [0, 1, 0]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]


def test_zero_weight_gets_nothing() -> None:
    assert allocate(100, [0, 1, 3]) == [0, 25, 75]


@given(numerator=st.integers(min_value=0, max_value=10**18), denominator=st.integers(1, 10**9))
def test_ceil_div_is_the_smallest_share_that_covers_the_total(
    numerator: int, denominator: int
) -> None:
    share = ceil_div(numerator, denominator)
    assert share * denominator >= numerator
    assert (share - 1) * denominator < numerator


def test_fee_of_eight_percent_rounds_half_up_to_the_fen() -> None:
    assert apply_basis_points(30_000_000, 800) == 2_400_000
    assert apply_basis_points(1, 5000) == 1  # half a fen rounds up
    assert apply_basis_points(1, 4999) == 0


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_yuan_text_round_trips(amount: int) -> None:
    assert parse_yuan(format_yuan(amount)) == amount


def test_money_text_is_formatted_for_people() -> None:
    assert format_yuan(123456, symbol=True, grouping=True) == "¥1,234.56"
    assert format_yuan(-5) == "-0.05"


@pytest.mark.parametrize("text", ["12.345", "abc", "NaN", "1e400x"])
def test_unparseable_amounts_are_refused_with_the_field(text: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_yuan(text, field="amount")
    assert refused.value.code == "invalid_amount"
    assert refused.value.field == "amount"
