"""Double-entry bookkeeping in integer fen: transactions whose legs sum to zero, never edited.

Sign convention: a leg's amount is what flows INTO its account (negative: out of it), so an
account's balance is the sum of its legs and every transaction's legs sum to zero. A correction is
a new transaction with every leg negated, pointing at the one it reverses, with a reason.

Accounts (codes are stable strings; `plan:<code>:…` belong to one plan's pool):

==========================  ====================================================================
``plan:P:members``          what the plan's members owe (negative) — one account for all of them;
                            a payer's own position is derived, never stored per period
``plan:P:prepaid``          prepaid balances of the plan's payers (per payer in prepaid_balances)
``plan:P:aid_pool``         aid charged for and not yet paid out
``plan:P:surplus``          over-collection carried to the next period (rounding up to the fen)
``plan:P:payouts``          aid paid to claimants
``plan:P:fee_income``       the operator's management fee
``plan:P:refunds``          shares refunded to a member and not yet paid back by the provider
                            (an illness in the waiting period; funded by the sponsor, issue 19)
``operator:sponsor``        what the operator paid in (capped shares, sponsored cases, write-offs)
``external:provider``       money that came in through the payment provider (negative: received)
==========================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mutualaid.domain.apportionment import prorated_split
from mutualaid.domain.errors import DomainError

SPONSOR = "operator:sponsor"
PROVIDER = "external:provider"


def plan_account(plan_code: str, name: str) -> str:
    if name not in PLAN_ACCOUNTS:
        raise ValueError(f"unknown plan account {name!r}")
    return f"plan:{plan_code}:{name}"


PLAN_ACCOUNTS = (
    "members",
    "prepaid",
    "aid_pool",
    "surplus",
    "payouts",
    "fee_income",
    "refunds",
)


@dataclass(frozen=True, slots=True)
class Leg:
    account: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Transaction:
    #: Idempotency: one transaction per key, ever (e.g. ``charge:xhb-main/2026-03-07``).
    key: str
    kind: str
    legs: tuple[Leg, ...]
    memo: str = ""
    reverses_key: str | None = None


def balanced(legs: Iterable[Leg]) -> bool:
    return sum(leg.amount_fen for leg in legs) == 0


def merge_legs(legs: Iterable[Leg]) -> tuple[Leg, ...]:
    """One leg per account (in first-seen order), zero legs dropped."""
    totals: dict[str, int] = {}
    for leg in legs:
        totals[leg.account] = totals.get(leg.account, 0) + leg.amount_fen
    return tuple(Leg(account, amount) for account, amount in totals.items() if amount)


def transaction(key: str, kind: str, legs: Sequence[Leg], memo: str = "") -> Transaction:
    """A checked transaction: balanced, non-empty, integer fen."""
    for leg in legs:
        if isinstance(leg.amount_fen, bool) or not isinstance(leg.amount_fen, int):
            raise DomainError("invalid_amount", "ledger amounts are integer fen", "amount_fen")
    if not balanced(legs):
        raise DomainError(
            "unbalanced_transaction",
            f"the legs of {key} sum to {sum(leg.amount_fen for leg in legs)}, not 0",
            "legs",
        )
    merged = merge_legs(legs)
    if not merged:
        raise DomainError("empty_transaction", f"{key} moves no money", "legs")
    return Transaction(key=key, kind=kind, legs=merged, memo=memo)


def reversal(original: Transaction, reason: str) -> Transaction:
    """The correction of `original`: every leg negated, with the reason; the original stays."""
    if not reason.strip():
        raise DomainError("reason_required", "a reversal needs a reason", "reason")
    return Transaction(
        key=f"reversal:{original.key}",
        kind="reversal",
        legs=tuple(Leg(leg.account, -leg.amount_fen) for leg in original.legs),
        memo=reason.strip(),
        reverses_key=original.key,
    )


def period_charge(
    plan_code: str,
    period_ref: str,
    *,
    total_charged: int,
    sponsor: int,
    prorated: int,
    aid: int,
    fee: int,
    surplus_in: int,
    surplus_out: int,
) -> Transaction | None:
    """The period's shares charged to the members (one aggregate leg), the sponsor's part, and
    where it goes: the aid pool and the fee (less any prorated cut), and the surplus moved along.
    None when the period moves no money (no case and nothing to carry)."""
    aid_cut, fee_cut = prorated_split(aid, fee, prorated)
    legs = [
        Leg(plan_account(plan_code, "members"), -total_charged),
        Leg(SPONSOR, -sponsor),
        Leg(plan_account(plan_code, "surplus"), surplus_out - surplus_in),
        Leg(plan_account(plan_code, "aid_pool"), aid - aid_cut),
        Leg(plan_account(plan_code, "fee_income"), fee - fee_cut),
    ]
    if not merge_legs(legs):
        return None
    return transaction(
        f"charge:{period_ref}", "period_charge", legs, memo=f"shares of period {period_ref}"
    )
