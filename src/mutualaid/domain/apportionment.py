"""Sharing the cost of a period's approved cases among the members: the arithmetic, to the fen.

Definitions (every amount is integer fen; see docs/periods.md):

* ``aid`` — the payouts of the period's shared (not sponsored) cases; ``fee = fee_bp × aid``
  (half up to the fen); ``need = aid + fee − surplus_in``.
* ``uncapped_share = ceil(need / members)`` (0 when ``need ≤ 0``); the per-case cap gives
  ``share = min(uncapped_share, cases × per_case_cap)``.
* A cohort (members whose charges so far this calendar year are the same, ``ytd``) pays
  ``charge = min(share, max(0, annual_cap − ytd))`` per member. ``total = Σ count × charge``.
* ``surplus_out = max(0, total − need)``, ``shortfall = max(0, need − total)``; the shortfall is
  paid by the sponsor (``sponsor``) or taken off the payouts and the fee in proportion
  (``prorated``, see `prorated_split`), as the period says.

so that, exactly and always::

    total + sponsor + prorated == aid + fee − surplus_in + surplus_out

No case: no aid, no fee, no charge, and the surplus carries over unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from mutualaid.domain.calendars import start_of_day
from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import Fen, allocate, apply_basis_points, ceil_div
from mutualaid.domain.plans import PlanRules

# --- the period's life -------------------------------------------------------------------------


class PeriodState(StrEnum):
    LOCKED = "locked"  # the sharing instant has passed and the period row exists
    COMPUTED = "computed"  # figures, cases, exceptions and the charge entry are recorded
    COMMITTED = "committed"  # the charges Merkle root is in the transparency log
    COLLECTING = "collecting"  # shares are being debited
    COLLECTED = "collected"  # every payer was asked once; failures are being retried
    PAID = "paid"  # every case of the period was paid out


#: The one way through: each state has exactly one successor.
NEXT_STATE: Mapping[PeriodState, PeriodState] = {
    PeriodState.LOCKED: PeriodState.COMPUTED,
    PeriodState.COMPUTED: PeriodState.COMMITTED,
    PeriodState.COMMITTED: PeriodState.COLLECTING,
    PeriodState.COLLECTING: PeriodState.COLLECTED,
    PeriodState.COLLECTED: PeriodState.PAID,
}
_ORDER = {state: position for position, state in enumerate(PeriodState)}


def advance(state: PeriodState, to: PeriodState) -> PeriodState:
    if NEXT_STATE.get(state) is not to:
        raise DomainError(
            "invalid_transition",
            f"a period that is {state} cannot become {to}",
            "state",
            details={"state": str(state)},
        )
    return to


def reached(state: PeriodState, milestone: PeriodState) -> bool:
    """Has a period in `state` got at least as far as `milestone`?"""
    return _ORDER[state] >= _ORDER[milestone]


class CapExcess(StrEnum):
    """Who bears what a cap removes from the members' shares."""

    SPONSOR = "sponsor"  # the operator pays it (Xiang Hu Bao's rule for the annual cap)
    PRORATE = "prorate"  # the period's payouts are reduced in proportion


# --- the calendar of periods ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodDates:
    publicity_on: date
    debit_on: date
    #: 00:00 of the publicity day in the plan's zone: who is a member then shares.
    lock_at: datetime


def period_dates(rules: PlanRules, publicity_on: date) -> PeriodDates:
    days = rules.periods.publicity_days
    if publicity_on.day not in days:
        raise DomainError(
            "not_a_publicity_day",
            f"{publicity_on} is not a publicity day of this plan (days {', '.join(map(str, days))})",
            "on",
            details={"on": publicity_on.isoformat()},
        )
    debit_day = rules.periods.debit_days[days.index(publicity_on.day)]
    return PeriodDates(
        publicity_on,
        publicity_on.replace(day=debit_day),
        start_of_day(publicity_on, ZoneInfo(rules.time_zone)),
    )


def latest_publicity_day(rules: PlanRules, today: date) -> date:
    """The most recent publicity day on or before `today`."""
    day = today
    for _ in range(62):
        if day.day in rules.periods.publicity_days:
            return day
        day -= timedelta(days=1)
    raise AssertionError("publicity days are validated to fall in every month")


def period_ref(plan_code: str, publicity_on: date) -> str:
    return f"{plan_code}/{publicity_on.isoformat()}"


# --- caps and the year so far ----------------------------------------------------------------------


def capped_charge(share: int, annual_cap: int | None, ytd: int) -> int:
    """What one member pays of `share` when they have been charged `ytd` this calendar year."""
    if annual_cap is None:
        return share
    return min(share, max(0, annual_cap - ytd))


@dataclass(frozen=True, slots=True)
class PastPeriod:
    """What the year-to-date arithmetic needs of an earlier period of the same year."""

    publicity_on: date
    lock_at: datetime
    share_fen: int
    annual_cap_fen: int | None


def year_to_date(periods: Iterable[PastPeriod]) -> int:
    """Charges so far this year of a member who shared in each of `periods` (in order) without
    any exception: the fold ``ytd += min(share, cap − ytd)``."""
    ytd = 0
    for period in periods:
        ytd += capped_charge(period.share_fen, period.annual_cap_fen, ytd)
    return ytd


def cohort_of(joined_at: datetime, year_periods: Sequence[PastPeriod], current_on: date) -> date:
    """The cohort key of a member sharing in the period of `current_on`: the first period of this
    calendar year whose lock came after they joined (or the current period itself)."""
    for period in year_periods:
        if joined_at < period.lock_at:
            return period.publicity_on
    return current_on


# --- the figures ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cohort:
    """Members who pay the same: `count` of them, each charged `ytd_fen` so far this year."""

    key: str
    count: int
    ytd_fen: int = 0


@dataclass(frozen=True, slots=True)
class CohortCharge:
    key: str
    count: int
    charge_fen: int


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    member_count: int
    case_count: int
    aid_fen: Fen
    fee_fen: Fen
    surplus_in_fen: Fen
    #: ceil((aid + fee − surplus_in) / members), before any cap (0 when nothing is owed).
    uncapped_share_fen: Fen
    #: The share after the per-case cap: what a member below the annual cap pays.
    share_fen: Fen
    charges: tuple[CohortCharge, ...]
    total_charged_fen: Fen
    #: members × uncapped share − total: what the caps took off the members' shares.
    capped_fen: Fen
    sponsor_fen: Fen
    prorated_fen: Fen
    surplus_out_fen: Fen

    @property
    def need_fen(self) -> int:
        return self.aid_fen + self.fee_fen - self.surplus_in_fen

    def check(self) -> None:
        """The identity every period satisfies; raises if it does not (it cannot, by design)."""
        if sum(c.count * c.charge_fen for c in self.charges) != self.total_charged_fen:
            raise AssertionError("Σ charges differs from the total")
        if sum(c.count for c in self.charges) != self.member_count:
            raise AssertionError("cohort counts differ from the member count")
        left = self.total_charged_fen + self.sponsor_fen + self.prorated_fen
        right = self.aid_fen + self.fee_fen - self.surplus_in_fen + self.surplus_out_fen
        if left != right:
            raise AssertionError(
                f"total + sponsor + prorated {left} != aid + fee − surplus_in + surplus_out {right}"
            )


def apportion(
    *,
    aid_fen: int,
    case_count: int,
    fee_bp: int,
    surplus_in_fen: int,
    cohorts: Sequence[Cohort],
    per_case_cap_fen: int | None,
    annual_cap_fen: int | None,
    cap_excess: CapExcess = CapExcess.SPONSOR,
) -> PeriodFigures:
    """The period's figures from its cases and its sharing members (see the module docstring)."""
    if aid_fen < 0 or surplus_in_fen < 0 or case_count < 0:
        raise ValueError("aid, surplus and case count are never negative")
    if any(c.count < 0 or c.ytd_fen < 0 for c in cohorts):
        raise ValueError("cohort counts and year-to-date charges are never negative")
    if case_count == 0 and aid_fen:
        raise ValueError("aid without a case")
    members = sum(c.count for c in cohorts)
    fee = apply_basis_points(aid_fen, fee_bp) if case_count else 0
    need = aid_fen + fee - surplus_in_fen
    uncapped = ceil_div(need, members) if need > 0 and members else 0
    share = uncapped
    if per_case_cap_fen is not None:
        share = min(share, case_count * per_case_cap_fen)
    charges = tuple(
        CohortCharge(c.key, c.count, capped_charge(share, annual_cap_fen, c.ytd_fen))
        for c in cohorts
    )
    total = sum(c.count * c.charge_fen for c in charges)
    shortfall = max(0, need - total)
    figures = PeriodFigures(
        member_count=members,
        case_count=case_count,
        aid_fen=Fen(aid_fen),
        fee_fen=Fen(fee),
        surplus_in_fen=Fen(surplus_in_fen),
        uncapped_share_fen=Fen(uncapped),
        share_fen=Fen(share),
        charges=charges,
        total_charged_fen=Fen(total),
        capped_fen=Fen(members * uncapped - total),
        sponsor_fen=Fen(shortfall if cap_excess is CapExcess.SPONSOR else 0),
        prorated_fen=Fen(shortfall if cap_excess is CapExcess.PRORATE else 0),
        surplus_out_fen=Fen(max(0, total - need)),
    )
    figures.check()
    return figures


def cap_may_bind(share_fen: int, annual_cap_fen: int | None, longest_ytd_fen: int) -> bool:
    """Could the annual cap change anyone's charge this period? `longest_ytd_fen` is the year to
    date of a member who shared in every earlier period of the year: nobody has been charged more
    (the fold is monotone), so when it still leaves room for a full share, everyone pays it."""
    return annual_cap_fen is not None and longest_ytd_fen + share_fen > annual_cap_fen


def prorated_split(aid_fen: int, fee_fen: int, prorated_fen: int) -> tuple[Fen, Fen]:
    """(aid cut, fee cut): a prorated shortfall reduces the payouts and the fee in proportion,
    so the operator's fee stays `fee_bp` of what is actually paid (to within a fen)."""
    if not 0 <= prorated_fen <= aid_fen + fee_fen:
        raise ValueError("cannot take more off than the aid and the fee")
    if not prorated_fen:
        return Fen(0), Fen(0)
    aid_cut, fee_cut = allocate(prorated_fen, [aid_fen, fee_fen], ["aid", "fee"])
    return aid_cut, fee_cut


def prorate_payouts(payouts: Sequence[tuple[str, int]], prorated_fen: int) -> list[Fen]:
    """Each case's payout after taking `prorated_fen` off in proportion (largest remainder)."""
    total = sum(amount for _, amount in payouts)
    if not 0 <= prorated_fen <= total:
        raise ValueError("cannot take more off the payouts than they add up to")
    if not payouts:
        return []
    cuts = allocate(prorated_fen, [amount for _, amount in payouts], [ref for ref, _ in payouts])
    return [Fen(amount - cut) for (_, amount), cut in zip(payouts, cuts, strict=True)]


# --- who pays first ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """One membership's charge, as its payer owes it."""

    membership_id: int
    charge_fen: int
    is_payer_self: bool
    joined_at: datetime


def payment_order(dues: Iterable[Due]) -> list[Due]:
    """The payer's own share first, then family members by joining order."""
    return sorted(dues, key=lambda d: (not d.is_payer_self, d.joined_at, d.membership_id))


def take_in_order(available_fen: int, dues: Iterable[Due]) -> tuple[list[Due], list[Due]]:
    """Pay whole shares in payment order while the money lasts: (paid, unpaid).

    Once one share cannot be paid, the later ones are not paid either (no skipping ahead to a
    cheaper family member's share), so the order is the whole rule.
    """
    paid: list[Due] = []
    unpaid: list[Due] = []
    left = available_fen
    for due in payment_order(dues):
        if not unpaid and due.charge_fen <= left:
            paid.append(due)
            left -= due.charge_fen
        else:
            unpaid.append(due)
    return paid, unpaid


# --- verifiable charges ----------------------------------------------------------------------------

#: Members are committed in blocks of 2**BLOCK_BITS consecutive membership ids.
BLOCK_BITS = 10
CHARGES_DOMAIN = b"mutualaid/period-charges/v1\n"


def charges_leaf_header(period_ref_text: str, block_index: int) -> bytes:
    return CHARGES_DOMAIN + period_ref_text.encode() + b"\n" + block_index.to_bytes(8, "big")


def charges_leaf(
    period_ref_text: str, block_index: int, charges: Sequence[tuple[int, int]]
) -> bytes:
    """The Merkle leaf of one block: the header, then (membership id, charge) as two unsigned
    64-bit big-endian integers per sharing member, in ascending id order. Every member of the
    block with id in [block << BLOCK_BITS, (block + 1) << BLOCK_BITS) who shares is listed."""
    low, high = block_index << BLOCK_BITS, (block_index + 1) << BLOCK_BITS
    body = bytearray(charges_leaf_header(period_ref_text, block_index))
    previous = low - 1
    for membership_id, charge in charges:
        if not previous < membership_id < high:
            raise ValueError("charges must be in ascending id order within their block")
        if charge < 0:
            raise ValueError("a charge is never negative")
        body += membership_id.to_bytes(8, "big") + charge.to_bytes(8, "big")
        previous = membership_id
    return bytes(body)


def parse_charges_leaf(data: bytes, period_ref_text: str) -> tuple[int, list[tuple[int, int]]]:
    """The block index and (membership id, charge) pairs of a leaf (the inverse of `charges_leaf`)."""
    prefix = CHARGES_DOMAIN + period_ref_text.encode() + b"\n"
    if not data.startswith(prefix) or (len(data) - len(prefix) - 8) % 16:
        raise DomainError("invalid_charges_leaf", "this is not a charges leaf of this period")
    offset = len(prefix)
    block = int.from_bytes(data[offset : offset + 8], "big")
    pairs = [
        (int.from_bytes(data[i : i + 8], "big"), int.from_bytes(data[i + 8 : i + 16], "big"))
        for i in range(offset + 8, len(data), 16)
    ]
    return block, pairs
