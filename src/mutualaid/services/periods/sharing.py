"""Who shares in a period, and what each pays: the charge rule, bands and capped groups."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Membership,
    Period,
    PeriodBand,
    PeriodBandGroup,
    PeriodChargeException,
    PeriodCohort,
    Person,
)
from mutualaid.db.queries.periods import membership_plan_is
from mutualaid.domain.sharing_bands import BirthInterval, band_index

#: Called with a step name at each point a close may be interrupted ("locked", "computing",
#: "computed", "tree", "committed"): progress reports, and the crash tests' kill switch.
StepHook = Callable[[str], None]
#: Called with (members done, members in all) while the charges tree is built.
Progress = Callable[[int, int], None]

EXCLUDED = "excluded"
#: An instant before anyone joined (the cohort charge when there is only one cohort).
START_OF_TIME = datetime(1970, 1, 1, tzinfo=UTC)
CAP_ADJUSTED = "cap_adjusted"
STREAM_CHUNK = 65_536


# --- who shares, and what each pays -----------------------------------------------------------------


def sharing_where(
    session: Session,
    plan_id: int,
    lock_at: datetime,
    publicity_on: date,
    *,
    scan: bool = True,
) -> list[ColumnElement[bool]]:
    """Memberships in the plan at the lock instant: joined before it, not ended before it, not aged
    out by publicity day. (Suspension is handled by `excluded` exceptions, recorded at compute.)

    `scan` (the default) keeps SQLite's planner off the (plan_id, state) index
    (`membership_plan_is`); pass ``scan=False`` only when that index is the right one.
    """
    return [
        membership_plan_is(session, plan_id, scan=scan),
        Membership.joined_at < lock_at,
        or_(Membership.ended_at.is_(None), Membership.ended_at >= lock_at),
        Membership.ages_out_on > publicity_on,
    ]


def shares_in(
    joined_at: datetime,
    ended_at: datetime | None,
    ages_out_on: date,
    lock_at: datetime,
    publicity_on: date,
) -> bool:
    """`sharing_where` for one membership, in Python."""
    return (
        joined_at < lock_at
        and (ended_at is None or ended_at >= lock_at)
        and ages_out_on > publicity_on
    )


@dataclass(frozen=True, slots=True)
class ChargeRule:
    """Everything needed to compute any sharing member's charge in a period, set-based."""

    period_id: int
    period_ref: str
    plan_id: int
    lock_at: datetime
    publicity_on: date
    share_fen: int
    #: (joined before this instant, charge) per cohort in order, the last one open-ended;
    #: empty when every sharing member pays `share_fen`.
    bounds: tuple[tuple[datetime, int], ...]
    #: membership id -> (kind, amount) for the period's exceptions.
    exceptions: Mapping[int, tuple[str, int]]
    #: Under a non-uniform sharing rule: the birth dates between the age bands (`band_cuts`) and
    #: each band's share, in band order; empty for a uniform period.
    band_cuts: tuple[date, ...] = ()
    band_charges: tuple[int, ...] = ()
    #: Under a non-uniform rule when the annual cap bound: the groups that pay less than their
    #: band's share, as (joined on or after, joined before, born interval, charge); an instant of
    #: None is an open end.
    groups: tuple[tuple[datetime | None, datetime | None, BirthInterval, int], ...] = ()

    @property
    def constant(self) -> bool:
        """Does every sharing member (exceptions aside) pay the same?"""
        return len(self.bounds) <= 1 and not self.band_charges

    def where(self, session: Session, *, scan: bool = True) -> list[ColumnElement[bool]]:
        return sharing_where(session, self.plan_id, self.lock_at, self.publicity_on, scan=scan)

    def charge_sql(self, *, person_joined: bool = False) -> ColumnElement[Any]:
        """The cohort charge of a membership row, as SQL (exceptions are applied separately).
        `person_joined`: the query joins the member's `Person` itself (`join_person`), so a
        banded charge reads its birth date directly rather than in a lookup per row."""
        if self.band_charges:
            # The member's age band at the lock: a CASE on the person's birth date, evaluated
            # inside one primary-key lookup per row (so that every caller can keep selecting
            # from memberships alone, and the person is read once, not once per band edge).
            born = Person.birth_on
            charge: ColumnElement[Any] = case(
                *[
                    (born > cut, literal(amount, BigInteger()))
                    for cut, amount in zip(self.band_cuts, self.band_charges, strict=False)
                ],
                else_=literal(self.band_charges[-1], BigInteger()),
            )
            if self.groups:
                charge = case(
                    *[
                        (
                            and_(*_group_where(joined_from, joined_before, interval, born)),
                            literal(amount, BigInteger()),
                        )
                        for joined_from, joined_before, interval, amount in self.groups
                    ],
                    else_=charge,
                )
            if person_joined:
                return charge
            return (
                select(charge)
                .where(Person.id == Membership.person_id)
                .correlate(Membership)
                .scalar_subquery()
            )
        if len(self.bounds) <= 1:
            return literal(self.bounds[0][1] if self.bounds else self.share_fen, BigInteger())
        return case(
            *[
                (Membership.joined_at < bound, literal(charge, BigInteger()))
                for bound, charge in self.bounds[:-1]
            ],
            else_=literal(self.bounds[-1][1], BigInteger()),
        )

    def join_person(self, query: Select[Any]) -> Select[Any]:
        """`query` (over memberships) joined to each member's person when the charge is banded:
        one set-based join instead of a lookup per row (use with ``charge_sql(person_joined=True)``)."""
        return query.join(Person, Person.id == Membership.person_id) if self.band_charges else query

    def cohort_charge(self, joined_at: datetime, birth_on: date | None = None) -> int:
        if self.band_charges:
            if birth_on is None:
                raise ValueError("a banded period's charge needs the member's birth date")
            for joined_from, joined_before, interval, charge in self.groups:
                if (
                    (joined_from is None or joined_at >= joined_from)
                    and interval.holds(birth_on)
                    and (joined_before is None or joined_at < joined_before)
                ):
                    return charge
            return self.band_charges[band_index(birth_on, self.band_cuts)]
        for bound, charge in self.bounds[:-1]:
            if joined_at < bound:
                return charge
        return self.bounds[-1][1] if self.bounds else self.share_fen

    def charge_of(
        self, membership_id: int, joined_at: datetime, birth_on: date | None = None
    ) -> int | None:
        """The charge of a membership that passes `where` (None: excluded, not charged)."""
        exception = self.exceptions.get(membership_id)
        if exception is not None:
            return None if exception[0] == EXCLUDED else exception[1]
        return self.cohort_charge(joined_at, birth_on)


def charge_rule(
    session: Session, period: Period, *, id_from: int | None = None, id_to: int | None = None
) -> ChargeRule:
    """The period's charge rule; with an id range, only that range's exceptions are loaded (a
    proof reads one block; a period at 100M members can have 100k exceptions)."""
    cohorts = session.execute(
        select(PeriodCohort.cohort_on, PeriodCohort.charge_fen)
        .where(PeriodCohort.period_id == period.id)
        .order_by(PeriodCohort.cohort_on)
    ).all()
    bounds: list[tuple[datetime, int]] = []
    if cohorts:
        locks = dict(
            session.execute(
                select(Period.publicity_on, Period.lock_at).where(
                    Period.plan_id == period.plan_id,
                    Period.publicity_on.in_([c for c, _ in cohorts]),
                )
            ).all()
        )
        locks[period.publicity_on] = period.lock_at
        bounds = [(locks[cohort_on], charge) for cohort_on, charge in cohorts]
    query = select(
        PeriodChargeException.membership_id,
        PeriodChargeException.kind,
        PeriodChargeException.amount_fen,
    ).where(PeriodChargeException.period_id == period.id)
    if id_from is not None:
        query = query.where(PeriodChargeException.membership_id >= id_from)
    if id_to is not None:
        query = query.where(PeriodChargeException.membership_id < id_to)
    exceptions = {
        membership_id: (kind, amount) for membership_id, kind, amount in session.execute(query)
    }
    bands = period_bands(session, period.id)
    return ChargeRule(
        period.id,
        period.ref,
        period.plan_id,
        period.lock_at,
        period.publicity_on,
        period.share_fen or 0,
        tuple(bounds),
        exceptions,
        tuple(b.born_by_on for b in bands[1:] if b.born_by_on is not None),
        tuple(b.share_fen for b in bands),
        _capped_groups(session, period, bands),
    )


def _group_where(
    joined_from: datetime | None, joined_before: datetime | None, interval: BirthInterval, born: Any
) -> list[ColumnElement[bool]]:
    """SQL: a membership (born `born`) of a cohort (joined in [from, before)) and interval."""
    where: list[ColumnElement[bool]] = []
    if joined_from is not None:
        where.append(Membership.joined_at >= joined_from)
    if joined_before is not None:
        where.append(Membership.joined_at < joined_before)
    if interval.born_after_on is not None:
        where.append(born > interval.born_after_on)
    if interval.born_by_on is not None:
        where.append(born <= interval.born_by_on)
    return where or [literal(True)]


def _capped_groups(
    session: Session, period: Period, bands: Sequence[PeriodBand]
) -> tuple[tuple[datetime | None, datetime | None, BirthInterval, int], ...]:
    """The groups of a banded period that pay less than their band's share (the annual cap
    bound for them), with each cohort's joining instants: from the lock of the period before the
    cohort's first one this year, to the lock of that first one."""
    if not bands:
        return ()
    shares = [b.share_fen for b in bands]
    rows = [
        g
        for g in session.scalars(
            select(PeriodBandGroup)
            .where(PeriodBandGroup.period_id == period.id)
            .order_by(PeriodBandGroup.cohort_on, PeriodBandGroup.interval_index)
        )
        if g.charge_fen != shares[g.band_index]
    ]
    if not rows:
        return ()
    locks = list(
        session.execute(
            select(Period.publicity_on, Period.lock_at)
            .where(
                Period.plan_id == period.plan_id,
                Period.publicity_on >= date(period.publicity_on.year, 1, 1),
                Period.publicity_on <= period.publicity_on,
            )
            .order_by(Period.publicity_on)
        )
    )
    bounds: dict[date, tuple[datetime | None, datetime]] = {}
    for index, (publicity_on, lock_at) in enumerate(locks):
        bounds[publicity_on] = (locks[index - 1][1] if index else None, lock_at)
    return tuple(
        (*bounds[g.cohort_on], BirthInterval(g.born_after_on, g.born_by_on), g.charge_fen)
        for g in rows
    )


def period_bands(session: Session, period_id: int) -> list[PeriodBand]:
    """The age bands of a period closed under a non-uniform rule (none for a uniform one)."""
    return list(
        session.scalars(
            select(PeriodBand)
            .where(PeriodBand.period_id == period_id)
            .order_by(PeriodBand.band_index)
        )
    )
