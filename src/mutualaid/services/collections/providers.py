"""The payment provider: whoever moves the money, and the simulated one the demo and tests use."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# --- the payment provider -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DebitResult:
    ok: bool
    message: str = ""
    #: What the provider knows the debit by (its out_trade_no) when the debit is to be recorded
    #: for its notifications and statement (None: the simulated provider, nothing to record).
    out_ref: str | None = None
    #: The provider's own reference (Alipay's trade_no), when it gave one.
    reference: str | None = None
    #: Neither paid nor refused yet: a notification settles it (counted unpaid until then).
    pending: bool = False


class PaymentProvider(Protocol):
    """Whoever moves the money (a bank, Alipay, WeChat Pay). `debit` must be idempotent: asked
    again with the same key it answers the first result and moves no more money."""

    name: str

    def debit(
        self, payer_account_id: int, amount_fen: int, idempotency_key: str
    ) -> DebitResult: ...


class SimulatedProvider:
    """The built-in provider for the demo and tests: deterministic, idempotent, journaled.

    A payer fails when listed in `failing`, when a keyed hash of their id falls under
    `failure_bp` (basis points of payers), or when `funds` gives them less than asked. Every
    successful debit is appended to `journal` (if given), so a second process sees what the first
    one debited, as a real provider's idempotency keys would.
    """

    name = "simulated"

    def __init__(
        self,
        *,
        failure_bp: int = 0,
        failing: Iterable[int] = (),
        funds: Mapping[int, int] | None = None,
        journal: Path | None = None,
        seed: str = "mutualaid",
    ) -> None:
        self.failure_bp = failure_bp
        self.failing = set(failing)
        self.funds = dict(funds) if funds is not None else None
        self.journal = journal
        self.seed = seed
        self.results: dict[str, DebitResult] = {}
        self.debits: dict[str, tuple[int, int]] = {}
        if journal is not None and journal.exists():
            for line in journal.read_text().splitlines():
                key, payer, amount = line.rsplit(",", 2)
                self.debits[key] = (int(payer), int(amount))
                self.results[key] = DebitResult(True)

    def fails(self, payer_account_id: int) -> bool:
        if payer_account_id in self.failing:
            return True
        digest = hashlib.sha256(f"{self.seed}:{payer_account_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 10_000 < self.failure_bp

    def debit(self, payer_account_id: int, amount_fen: int, idempotency_key: str) -> DebitResult:
        if idempotency_key in self.results:
            return self.results[idempotency_key]
        if amount_fen <= 0:
            raise ValueError("a debit is for a positive amount")
        if self.fails(payer_account_id):
            result = DebitResult(False, "declined")
        elif self.funds is not None and self.funds.get(payer_account_id, 0) < amount_fen:
            result = DebitResult(False, "insufficient funds")
        else:
            if self.funds is not None:
                self.funds[payer_account_id] -= amount_fen
            self.debits[idempotency_key] = (payer_account_id, amount_fen)
            if self.journal is not None:
                with self.journal.open("a") as handle:
                    handle.write(f"{idempotency_key},{payer_account_id},{amount_fen}\n")
            result = DebitResult(True)
        self.results[idempotency_key] = result
        return result
