from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.refusals import refused

from mutualaid.domain.apportionment import CapExcess, Cohort, apportion
from mutualaid.domain.errors import DomainError
from mutualaid.domain.ledger import (
    SPONSOR,
    Leg,
    balanced,
    merge_legs,
    period_charge,
    plan_account,
    reversal,
    transaction,
)

accounts = st.sampled_from(["a", "b", "c", SPONSOR])


def test_an_unbalanced_transaction_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        transaction("k", "test", [Leg("a", 10), Leg("b", -9)])
    assert refused.value.code == "unbalanced_transaction"


def test_amounts_are_integer_fen_only() -> None:
    with refused("invalid_amount"):
        transaction("k", "test", [Leg("a", 1.5), Leg("b", -1.5)])  # type: ignore[arg-type]


def test_a_transaction_that_moves_nothing_is_refused() -> None:
    with refused("empty_transaction"):
        transaction("k", "test", [Leg("a", 5), Leg("a", -5)])


@given(st.lists(st.tuples(accounts, st.integers(-(10**9), 10**9)), min_size=1, max_size=8))
def test_a_reversal_cancels_the_original_exactly(legs: list[tuple[str, int]]) -> None:
    closing = -sum(amount for _, amount in legs)
    all_legs = [Leg(a, n) for a, n in legs] + [Leg("d", closing)]
    if not merge_legs(all_legs):
        return
    original = transaction("k1", "test", all_legs)
    correction = reversal(original, "entered twice")
    assert balanced(correction.legs) and correction.reverses_key == "k1"
    totals: dict[str, int] = {}
    for leg in original.legs + correction.legs:
        totals[leg.account] = totals.get(leg.account, 0) + leg.amount_fen
    assert set(totals.values()) == {0}


def test_a_reversal_needs_a_reason() -> None:
    with refused("reason_required"):
        reversal(transaction("k", "t", [Leg("a", 1), Leg("b", -1)]), "  ")


@given(
    aid=st.integers(0, 10**9),
    fee_bp=st.integers(0, 2000),
    surplus=st.integers(0, 10**6),
    members=st.integers(0, 10**6),
    per_case=st.none() | st.integers(1, 100),
    excess=st.sampled_from(CapExcess),
)
def test_the_period_charge_always_balances(
    aid: int, fee_bp: int, surplus: int, members: int, per_case: int | None, excess: CapExcess
) -> None:
    cases = 1 if aid else 0
    f = apportion(
        aid_fen=aid,
        case_count=cases,
        fee_bp=fee_bp,
        surplus_in_fen=surplus,
        cohorts=[Cohort("all", members)],
        per_case_cap_fen=per_case,
        annual_cap_fen=None,
        cap_excess=excess,
    )
    tx = period_charge(
        "p",
        "p/2026-03-07",
        total_charged=f.total_charged_fen,
        sponsor=f.sponsor_fen,
        prorated=f.prorated_fen,
        aid=f.aid_fen,
        fee=f.fee_fen,
        surplus_in=f.surplus_in_fen,
        surplus_out=f.surplus_out_fen,
    )
    if tx is None:
        # Nothing moves: no charge, no sponsor, everything prorated away, the surplus unchanged.
        assert f.total_charged_fen == f.sponsor_fen == 0
        assert f.surplus_in_fen == f.surplus_out_fen and f.aid_fen + f.fee_fen == f.prorated_fen
        return
    assert balanced(tx.legs)
    legs = dict((leg.account, leg.amount_fen) for leg in tx.legs)
    assert legs.get(plan_account("p", "members"), 0) == -f.total_charged_fen
    assert legs.get(plan_account("p", "aid_pool"), 0) >= 0


def test_unknown_plan_accounts_are_refused() -> None:
    with pytest.raises(ValueError):
        plan_account("p", "cash")
