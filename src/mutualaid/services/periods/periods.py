"""Periods: close one (lock, compute, commit), its public notice, a member's statement and proof.

Storage grows with periods, not with members × periods. Every sharing member of a period pays the
same share (or, once the annual cap binds, the same charge as everyone in their *cohort*: members
whose first shared period this calendar year is the same; under a non-uniform sharing rule, their
age band's share, or once the cap binds their *group's*: a cohort and a birth-date interval). So
a member's charge follows from the period row, the membership's dates and the few *exceptions*
stored for the period (`period_charge_exceptions`: excluded while suspended, or a charge of its
own after leaving and rejoining). Whatever touches every member is one SQL scan or one streamed pass; nothing loops over
members in Python row by row.

Closing is three steps, each its own transaction guarded by the period's state, so a crash, a
retry or a second worker resumes where the first stopped and never charges anyone twice:

1. **lock** — the period row (UNIQUE(plan_id, publicity_on)) with the lock instant, 00:00 on
   publicity day in the plan's zone;
2. **compute** — the cases (claims approved before the lock get the period's id), the exclusions,
   the member count (per cohort if the annual cap can bind), the figures, and the one ledger
   transaction that charges the members;
3. **commit** — the Merkle root over every sharing member's (id, charge), in blocks of 1,024
   membership ids, queued to the transparency log as a ``period_commitment`` leaf.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    LargeBinary,
    and_,
    case,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    ACTIVE_STATES_SQL,
    Claim,
    CollectionFailure,
    LogEntry,
    Membership,
    Period,
    PeriodBand,
    PeriodBandGroup,
    PeriodChargeException,
    PeriodChargeTree,
    PeriodCohort,
    Person,
    Plan,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code, rules_of
from mutualaid.domain.accounts import STAFF_ROLES, Role, require_role
from mutualaid.domain.apportionment import (
    BLOCK_BITS,
    CapExcess,
    Cohort,
    PastPeriod,
    PeriodFigures,
    PeriodState,
    apportion,
    cap_may_bind,
    capped_charge,
    charges_leaf,
    charges_leaf_header,
    cohort_of,
    latest_publicity_day,
    period_dates,
    period_ref,
    reached,
    year_to_date,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.ledger import period_charge
from mutualaid.domain.plans import PlanRules
from mutualaid.domain.sharing import (
    BandedPast,
    BandGroup,
    BirthInterval,
    RiskClass,
    SharingRule,
    apportion_banded,
    band_cuts,
    band_groups,
    band_index,
    plan_bands,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import PublicCase, public_case
from mutualaid.services.collections.ledger import post
from mutualaid.services.context import ServiceContext
from mutualaid.services.plans.schemes import sponsorship_of_period
from mutualaid.services.transparency.transparency import queue_leaf, unix_seconds
from mutualaid.transparency.merkle import EMPTY_ROOT, MemoryTree, hash_leaf, verify_inclusion

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
    dialect: str, plan_id: int, lock_at: datetime, publicity_on: date, *, scan: bool = True
) -> list[ColumnElement[bool]]:
    """Memberships in the plan at the lock instant: joined before it, not ended before it, not aged
    out by publicity day. (Suspension is handled by `excluded` exceptions, recorded at compute.)

    `scan` (the default) writes the plan test as ``plan_id + 0`` on SQLite, which has no
    statistics and would otherwise pick the (plan_id, state) index for any query with this
    predicate: walking it and fetching each row by id is 1.6× slower than reading the table in
    order, and far slower than the id, payer or failure lookups the other queries want. Pass
    ``scan=False`` only when that index is the right one (a state lookup). PostgreSQL decides
    from its statistics either way.
    """
    plan_match = (
        (Membership.plan_id + 0 == plan_id)
        if scan and dialect == "sqlite"
        else (Membership.plan_id == plan_id)
    )
    return [
        plan_match,
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

    def where(self, dialect: str, *, scan: bool = True) -> list[ColumnElement[bool]]:
        return sharing_where(dialect, self.plan_id, self.lock_at, self.publicity_on, scan=scan)

    def charge_sql(self) -> ColumnElement[Any]:
        """The cohort charge of a membership row, as SQL (exceptions are applied separately)."""
        if self.band_charges:
            # The member's age band at the lock: a CASE on the person's birth date (a primary-key
            # lookup per row, so that every caller keeps selecting from memberships alone).
            born = (
                select(Person.birth_on).where(Person.id == Membership.person_id).scalar_subquery()
            )
            banded = case(
                *[
                    (born > cut, literal(charge, BigInteger()))
                    for cut, charge in zip(self.band_cuts, self.band_charges, strict=False)
                ],
                else_=literal(self.band_charges[-1], BigInteger()),
            )
            if not self.groups:
                return banded
            return case(
                *[
                    (
                        and_(*_group_where(joined_from, joined_before, interval, born)),
                        literal(charge, BigInteger()),
                    )
                    for joined_from, joined_before, interval, charge in self.groups
                ],
                else_=banded,
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


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# --- views -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodView:
    ref: str
    plan_code: str
    publicity_on: date
    debit_on: date
    lock_at: datetime
    state: PeriodState
    cap_excess: str
    member_count: int | None
    case_count: int | None
    aid_fen: int | None
    sponsored_aid_fen: int | None
    fee_fen: int | None
    surplus_in_fen: int | None
    uncapped_share_fen: int | None
    share_fen: int | None
    total_charged_fen: int | None
    capped_fen: int | None
    sponsor_fen: int | None
    prorated_fen: int | None
    surplus_out_fen: int | None
    charges_root: str | None
    charges_leaves: int | None
    failed_fen: int | None
    #: Why the sponsor paid every share of this period ("promotion"), or None (issue 8).
    sponsored_by: str | None = None


def view(period: Period, plan_code: str) -> PeriodView:
    return PeriodView(
        ref=period.ref,
        plan_code=plan_code,
        publicity_on=period.publicity_on,
        debit_on=period.debit_on,
        lock_at=period.lock_at,
        state=PeriodState(period.state),
        cap_excess=period.cap_excess,
        member_count=period.member_count,
        case_count=period.case_count,
        aid_fen=period.aid_fen,
        sponsored_aid_fen=period.sponsored_aid_fen,
        fee_fen=period.fee_fen,
        surplus_in_fen=period.surplus_in_fen,
        uncapped_share_fen=period.uncapped_share_fen,
        share_fen=period.share_fen,
        total_charged_fen=period.total_charged_fen,
        capped_fen=period.capped_fen,
        sponsor_fen=period.sponsor_fen,
        prorated_fen=period.prorated_fen,
        surplus_out_fen=period.surplus_out_fen,
        charges_root=period.charges_root,
        charges_leaves=period.charges_leaves,
        failed_fen=period.failed_fen,
        sponsored_by=period.sponsored_by,
    )


def find_period(
    session: Session, plan: Plan, publicity_on: date, *, for_update: bool = False
) -> Period:
    query = select(Period).where(Period.plan_id == plan.id, Period.publicity_on == publicity_on)
    if for_update:
        query = query.with_for_update()
    period = session.scalar(query)
    if period is None:
        raise NotFound(
            "period_not_found", f"there is no period {period_ref(plan.code, publicity_on)}", "on"
        )
    return period


def get_period(ctx: ServiceContext, plan_code: str, publicity_on: date) -> PeriodView:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        return view(find_period(session, plan, publicity_on), plan.code)


def list_periods(ctx: ServiceContext, plan_code: str, *, limit: int = 100) -> list[PeriodView]:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.scalars(
            select(Period)
            .where(Period.plan_id == plan.id)
            .order_by(Period.publicity_on.desc())
            .limit(max(1, min(limit, 500)))
        )
        return [view(p, plan.code) for p in rows]


# --- closing ---------------------------------------------------------------------------------------


def close_period(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    on: date | None = None,
    *,
    cap_excess: CapExcess = CapExcess.SPONSOR,
    hook: StepHook | None = None,
    progress: Progress | None = None,
) -> PeriodView:
    """Close the period whose publicity day is `on` (default: the latest one up to today).

    Idempotent and resumable: it runs whichever of lock, compute and commit are not done yet.
    """
    require_role(actor.role, Role.OPERATOR)
    step = hook or (lambda _name: None)
    period_id = _lock(ctx, actor, plan_code, on, cap_excess)
    step("locked")
    _compute(ctx, actor, period_id, step)
    step("computed")
    _commit(ctx, actor, period_id, step, progress)
    step("committed")
    with ctx.reading() as session:
        period = session.get_one(Period, period_id)
        return view(period, plan_code)


def _lock(
    ctx: ServiceContext, actor: Actor, plan_code: str, on: date | None, cap_excess: CapExcess
) -> int:
    try:
        with ctx.transaction() as session:
            now = ctx.clock.now()
            plan = plan_by_code(session, plan_code)
            rules = current_rules(session, plan)
            publicity_on = on or latest_publicity_day(rules, local_date(now, rules.zone))
            dates = period_dates(rules, publicity_on)
            existing = session.scalar(
                select(Period.id).where(
                    Period.plan_id == plan.id, Period.publicity_on == publicity_on
                )
            )
            if existing is not None:
                return existing
            if dates.lock_at > now:
                raise DomainError(
                    "period_not_locked_yet",
                    f"the period of {publicity_on} locks at {dates.lock_at:%Y-%m-%d %H:%M} "
                    "UTC; it cannot be closed before",
                    "on",
                )
            later = session.scalar(
                select(Period.ref)
                .where(Period.plan_id == plan.id, Period.publicity_on > publicity_on)
                .limit(1)
            )
            if later is not None:
                raise Conflict(
                    "later_period_closed",
                    f"period {later} is already closed; periods close in order",
                    "on",
                )
            # A promotional sponsorship (issue 8): a per-case cap of 0 leaves every share to the
            # sponsor, and the figures still show what each member would have paid.
            promised = sponsorship_of_period(session, plan.id, publicity_on)
            period = Period(
                ref=period_ref(plan.code, publicity_on),
                plan_id=plan.id,
                plan_version=plan.current_version,
                publicity_on=publicity_on,
                debit_on=dates.debit_on,
                lock_at=dates.lock_at,
                state=PeriodState.LOCKED,
                cap_excess=CapExcess.SPONSOR if promised.pays_cap_excess else cap_excess,
                fee_bp=rules.fees.management_fee_bp,
                per_case_cap_fen=0 if promised.pays_shares else rules.caps.per_case_fen,
                annual_cap_fen=rules.caps.annual_fen,
                sponsored_by=promised.reason,
                payment_retry_days=rules.periods.payment_retry_days,
                locked_at=now,
            )
            session.add(period)
            session.flush()
            audit.record(
                session,
                at=now,
                actor_account_id=actor.account_id,
                action="period_locked",
                subject_type="period",
                subject_id=period.id,
                ref=period.ref,
                lock_at=dates.lock_at.isoformat(),
            )
            return period.id
    except IntegrityError:
        # Another worker locked the same period a moment ago: carry on with theirs.
        with ctx.reading() as session:
            plan = plan_by_code(session, plan_code)
            rules = current_rules(session, plan)
            publicity_on = on or latest_publicity_day(
                rules, local_date(ctx.clock.now(), rules.zone)
            )
            return find_period(session, plan, publicity_on).id


def _year_periods(session: Session, period: Period) -> list[Period]:
    """The plan's earlier periods of the same calendar year, computed, in order."""
    computed = [str(s) for s in PeriodState if reached(s, PeriodState.COMPUTED)]
    return list(
        session.scalars(
            select(Period)
            .where(
                Period.plan_id == period.plan_id,
                Period.publicity_on >= date(period.publicity_on.year, 1, 1),
                Period.publicity_on < period.publicity_on,
                Period.state.in_(computed),
            )
            .order_by(Period.publicity_on)
        )
    )


class PeriodFacts(Protocol):
    """What the charge arithmetic reads of a period: an ORM row or a plain selected row."""

    @property
    def id(self) -> int: ...
    @property
    def lock_at(self) -> datetime: ...
    @property
    def publicity_on(self) -> date: ...
    @property
    def share_fen(self) -> int | None: ...
    @property
    def annual_cap_fen(self) -> int | None: ...


def _past(periods: Sequence[PeriodFacts]) -> list[PastPeriod]:
    return [
        PastPeriod(p.publicity_on, p.lock_at, p.share_fen or 0, p.annual_cap_fen) for p in periods
    ]


def _compute(ctx: ServiceContext, actor: Actor, period_id: int, step: StepHook) -> None:
    with ctx.transaction() as session:
        period = session.scalars(
            select(Period).where(Period.id == period_id).with_for_update()
        ).one()
        if period.state != PeriodState.LOCKED:
            return
        now = ctx.clock.now()
        plan = session.get_one(Plan, period.plan_id)
        previous = session.scalar(
            select(Period)
            .where(Period.plan_id == plan.id, Period.publicity_on < period.publicity_on)
            .order_by(Period.publicity_on.desc())
            .limit(1)
        )
        if previous is not None and not reached(PeriodState(previous.state), PeriodState.COMPUTED):
            raise Conflict(
                "previous_period_open",
                f"close period {previous.ref} first: its surplus carries into this one",
            )
        surplus_in = (previous.surplus_out_fen or 0) if previous is not None else 0

        # The cases: approved (after publicity or by a jury) before the lock, not yet in a period.
        session.execute(
            update(Claim)
            .where(
                Claim.plan_id == plan.id,
                Claim.state == ClaimState.APPROVED,
                Claim.approved_at < period.lock_at,
                Claim.period_id.is_(None),
            )
            .values(period_id=period.id)
            .execution_options(synchronize_session=False)
        )
        shared_cases, shared_aid, sponsored_aid = 0, 0, 0
        for sponsored, count, total in session.execute(
            select(Claim.sponsored, func.count(), func.coalesce(func.sum(Claim.payout_fen), 0))
            .where(Claim.period_id == period.id)
            .group_by(Claim.sponsored)
        ):
            if sponsored:
                sponsored_aid += int(total)
            else:
                shared_cases, shared_aid = int(count), int(total)

        dialect = _dialect(session)
        excluded = _record_exclusions(session, period, now, dialect)
        year = _year_periods(session, period)
        longest = year_to_date(_past(year))
        common: dict[str, Any] = {
            "aid_fen": shared_aid,
            "case_count": shared_cases,
            "fee_bp": period.fee_bp,
            "surplus_in_fen": surplus_in,
            "per_case_cap_fen": period.per_case_cap_fen,
            "annual_cap_fen": period.annual_cap_fen,
            "cap_excess": CapExcess(period.cap_excess),
        }
        # Usually one scan. A plain count when no share could reach the annual cap (a share is
        # at most the need, and at most cases × the per-case cap) or when, with as many members
        # as last period, it would not; the count per cohort straight away when it would; and
        # the count per cohort after all if the plain count's share turns out to reach it.
        expected = previous.member_count if previous is not None else None
        rules = rules_of(session, plan.id, period.plan_version)
        if SharingRule(rules.sharing_rule) is not SharingRule.UNIFORM:
            figures = _compute_banded(session, period, rules, common, year, excluded, now)
        elif cap_may_bind(_share_bound(common, expected), period.annual_cap_fen, longest):
            figures = _compute_cohorts(session, period, year, excluded, common, now)
        else:
            counted = (
                session.scalar(
                    select(func.count())
                    .select_from(Membership)
                    .where(*sharing_where(dialect, plan.id, period.lock_at, period.publicity_on))
                )
                or 0
            )
            figures = apportion(cohorts=[Cohort("all", counted - len(excluded))], **common)
            if cap_may_bind(figures.share_fen, period.annual_cap_fen, longest):
                figures = _compute_cohorts(session, period, year, excluded, common, now)
        step("computing")

        period.member_count = figures.member_count
        period.case_count = figures.case_count
        period.aid_fen = figures.aid_fen
        period.sponsored_aid_fen = sponsored_aid
        period.fee_fen = figures.fee_fen
        period.surplus_in_fen = figures.surplus_in_fen
        period.uncapped_share_fen = figures.uncapped_share_fen
        period.share_fen = figures.share_fen
        period.total_charged_fen = figures.total_charged_fen
        period.capped_fen = figures.capped_fen
        period.sponsor_fen = figures.sponsor_fen
        period.prorated_fen = figures.prorated_fen
        period.surplus_out_fen = figures.surplus_out_fen
        charge = period_charge(
            plan.code,
            period.ref,
            total_charged=figures.total_charged_fen,
            sponsor=figures.sponsor_fen,
            prorated=figures.prorated_fen,
            aid=figures.aid_fen,
            fee=figures.fee_fen,
            surplus_in=figures.surplus_in_fen,
            surplus_out=figures.surplus_out_fen,
        )
        if charge is not None:
            post(
                session,
                charge,
                at=now,
                plan_id=plan.id,
                period_id=period.id,
                actor_id=actor.recorded_id,
            )
        period.state = PeriodState.COMPUTED
        period.computed_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="period_computed",
            subject_type="period",
            subject_id=period.id,
            ref=period.ref,
            members=figures.member_count,
            cases=figures.case_count,
            share_fen=figures.share_fen,
            total_charged_fen=figures.total_charged_fen,
            sponsor_fen=figures.sponsor_fen,
            excluded=len(excluded),
        )


def _compute_banded(
    session: Session,
    period: Period,
    rules: PlanRules,
    common: Mapping[str, Any],
    year: list[Period],
    excluded: Mapping[int, datetime],
    now: datetime,
) -> PeriodFigures:
    """A non-uniform sharing rule: members counted per age band at the lock (one GROUP BY on a
    CASE over the birth date, the excluded counted the same way and taken off), the need split
    among the bands exactly (`sharing.apportion_banded`), and each band's share stored. When the
    annual cap may bind, the members are counted again per cohort and birth interval
    (`_band_groups`) and each group pays its band's share capped at what it has left."""
    bands = plan_bands(rules)
    cuts = band_cuts(period.publicity_on, [band.from_age for band in bands])
    band_of = (
        case(
            *[(Person.birth_on > cut, literal(i)) for i, cut in enumerate(cuts)],
            else_=literal(len(cuts)),
        )
        if cuts
        else literal(0)
    ).label("band")
    counts = [0] * len(bands)
    for (index,), count in _count_sharing(session, period, band_of).items():
        counts[index] += count
    arguments: dict[str, Any] = {
        "rule": SharingRule(rules.sharing_rule),
        "classes": [
            RiskClass(band.key, count, band.risk) for band, count in zip(bands, counts, strict=True)
        ],
        "bands": bands,
        "aid_fen": common["aid_fen"],
        "case_count": common["case_count"],
        "fee_bp": common["fee_bp"],
        "surplus_in_fen": common["surplus_in_fen"],
        "per_case_cap_fen": common["per_case_cap_fen"],
        "cap_excess": common["cap_excess"],
    }
    figures, lines = apportion_banded(**arguments)
    groups: list[BandGroup] = []
    if cap_may_bind(figures.share_fen, period.annual_cap_fen, year_to_date(_past(year))):
        intervals, groups, adjusted = _band_groups(
            session, period, year, cuts, excluded, [line.share_fen for line in lines]
        )
        figures, lines = apportion_banded(
            **arguments, annual_cap_fen=period.annual_cap_fen, groups=groups
        )
        cohorts = [p.publicity_on for p in year] + [period.publicity_on]
        session.add_all(
            PeriodBandGroup(
                period_id=period.id,
                cohort_on=cohorts[group.cohort],
                interval_index=group.interval,
                born_after_on=intervals[group.interval].born_after_on,
                born_by_on=intervals[group.interval].born_by_on,
                band_index=group.band,
                ytd_fen=group.ytd_fen,
                member_count=group.count,
                charge_fen=charge.charge_fen,
            )
            for group, charge in zip(groups, figures.charges, strict=True)
            if group.member is None
        )
        _record_cap_adjusted(session, period, adjusted, now)
    session.add_all(
        PeriodBand(
            period_id=period.id,
            band_index=index,
            from_age=line.from_age,
            to_age=line.to_age,
            born_by_on=cuts[index - 1] if index else None,
            weight=f"{line.weight.numerator}/{line.weight.denominator}",
            member_count=line.member_count,
            band_total_fen=line.band_total_fen,
            uncapped_share_fen=line.uncapped_share_fen,
            share_fen=line.share_fen,
        )
        for index, line in enumerate(lines)
    )
    return figures


def _count_sharing(
    session: Session, period: Period, *keys: ColumnElement[Any]
) -> dict[tuple[int, ...], int]:
    """Sharing members (the excluded taken off) counted per value of the integer `keys`, which
    may read the membership and its person: one GROUP BY each for the sharing and the excluded."""
    sharing = (
        select(*keys, func.count())
        .select_from(Membership)
        .join(Person, Person.id == Membership.person_id)
        .where(
            *sharing_where(_dialect(session), period.plan_id, period.lock_at, period.publicity_on)
        )
        .group_by(*keys)
    )
    excluded = sharing.join(
        PeriodChargeException, (PeriodChargeException.membership_id == Membership.id)
    ).where(PeriodChargeException.period_id == period.id, PeriodChargeException.kind == EXCLUDED)
    counts: dict[tuple[int, ...], int] = defaultdict(int)
    for query, sign in ((sharing, 1), (excluded, -1)):
        for *values, count in session.execute(query):
            counts[tuple(int(v) for v in values)] += sign * int(count)
    return counts


def _band_groups(
    session: Session,
    period: Period,
    year: list[Period],
    cuts: Sequence[date],
    excluded: Mapping[int, datetime],
    shares: Sequence[int],
) -> tuple[list[BirthInterval], list[BandGroup], list[tuple[_Facts, int]]]:
    """The members of a banded period counted per cohort and birth interval (`band_groups`: within
    one, everyone has paid the same this year), the few whose year is not their group's taken
    out as groups of one (with their exact charge, recorded as `cap_adjusted`)."""
    history = _banded_history(session, [p.id for p in year])
    intervals, groups = band_groups(
        [
            history.bands.get(p.id, BandedPast((), (p.share_fen or 0,), p.annual_cap_fen))
            for p in year
        ],
        cuts,
    )
    cohort = (
        case(
            *[(Membership.joined_at < p.lock_at, literal(i)) for i, p in enumerate(year)],
            else_=literal(len(year)),
        )
        if year
        else literal(0)
    ).label("cohort")
    interval = (
        case(
            *[
                (Person.birth_on <= i.born_by_on, literal(index))
                for index, i in enumerate(intervals)
                if i.born_by_on is not None
            ],
            else_=literal(len(intervals) - 1),
        )
        if len(intervals) > 1
        else literal(0)
    ).label("interval")
    counts = _count_sharing(session, period, cohort, interval)
    by_key = {(g.cohort, g.interval): g for g in groups}
    past, keys = _past(year), [p.publicity_on for p in year] + [period.publicity_on]
    singles: list[BandGroup] = []
    adjusted: list[tuple[_Facts, int]] = []
    for facts, ytd, born in _irregular_year_to_date(session, period, year, excluded, history):
        if born is None:
            raise AssertionError("a banded year reads the birth dates")
        key = (
            keys.index(cohort_of(facts.joined_at, past, period.publicity_on)),
            next(i for i, span in enumerate(intervals) if span.holds(born)),
        )
        group = by_key[key]
        exact = capped_charge(shares[group.band], period.annual_cap_fen, ytd)
        if exact != capped_charge(shares[group.band], period.annual_cap_fen, group.ytd_fen):
            counts[key] -= 1
            singles.append(BandGroup(key[0], key[1], group.band, ytd, 1, member=facts.id))
            adjusted.append((facts, exact))
    counted = [
        dataclasses.replace(g, count=counts[(g.cohort, g.interval)])
        for g in groups
        if counts.get((g.cohort, g.interval))
    ]
    return intervals, counted + singles, adjusted


def _record_exclusions(
    session: Session, period: Period, now: datetime, dialect: str
) -> dict[int, datetime]:
    """Members in the plan at the lock but suspended for an unpaid share: they are not charged.

    Suspended now (the close runs at the lock: the stored state is the state at the lock), or
    suspended by a failed collection before the lock and not resolved by then (exact even when the
    close runs later). Recorded with INSERT … SELECT (no rows through Python); returns membership
    id -> joined_at of the excluded.
    """
    where = sharing_where(dialect, period.plan_id, period.lock_at, period.publicity_on, scan=False)
    # Driven from the (small) failures table: never a walk over the plan's memberships.
    suspended_then = (
        select(CollectionFailure.membership_id)
        .join(Period, Period.id == CollectionFailure.period_id)
        .where(
            Period.plan_id == period.plan_id,
            CollectionFailure.suspended_at < period.lock_at,
            or_(
                CollectionFailure.resolved_at.is_(None),
                CollectionFailure.resolved_at >= period.lock_at,
            ),
        )
    )
    already = select(PeriodChargeException.membership_id).where(
        PeriodChargeException.period_id == period.id
    )
    columns = [
        "period_id",
        "membership_id",
        "payer_account_id",
        "kind",
        "amount_fen",
        "reason",
        "created_at",
    ]
    values = (
        literal(period.id, BigInteger()),
        Membership.id,
        Membership.payer_account_id,
        literal(EXCLUDED),
        literal(0, BigInteger()),
        literal("suspended at the lock"),
        literal(now, PeriodChargeException.created_at.type),
    )
    session.execute(
        insert(PeriodChargeException).from_select(
            columns, select(*values).where(*where, Membership.state == "suspended")
        )
    )
    session.execute(
        insert(PeriodChargeException).from_select(
            columns,
            select(*values).where(
                *sharing_where(dialect, period.plan_id, period.lock_at, period.publicity_on),
                Membership.id.in_(suspended_then),
                Membership.id.not_in(already),
            ),
        )
    )
    return {
        membership_id: joined_at
        for membership_id, joined_at in session.execute(
            select(Membership.id, Membership.joined_at)
            .join(PeriodChargeException, PeriodChargeException.membership_id == Membership.id)
            .where(
                PeriodChargeException.period_id == period.id, PeriodChargeException.kind == EXCLUDED
            )
        )
    }


@dataclass(frozen=True, slots=True)
class _Facts:
    id: int
    payer_account_id: int
    person_id: int
    joined_at: datetime
    ended_at: datetime | None
    ages_out_on: date


def _facts_query() -> Any:
    return select(
        Membership.id,
        Membership.payer_account_id,
        Membership.person_id,
        Membership.joined_at,
        Membership.ended_at,
        Membership.ages_out_on,
    )


def _charge_in(
    period: PeriodFacts,
    facts: _Facts,
    before: Sequence[PeriodFacts],
    exceptions: Mapping[tuple[int, int], tuple[str, int]],
    cohorts: Mapping[int, Mapping[date, int]],
    banded: _BandedHistory | None = None,
    birth_on: date | None = None,
) -> int | None:
    """What a membership was charged in an earlier period (None: it did not share in it). A
    period closed under a non-uniform rule needs `banded` and the person's `birth_on`."""
    if not shares_in(
        facts.joined_at, facts.ended_at, facts.ages_out_on, period.lock_at, period.publicity_on
    ):
        return None
    exception = exceptions.get((period.id, facts.id))
    if exception is not None:
        return None if exception[0] == EXCLUDED else exception[1]
    if banded is not None and birth_on is not None and period.id in banded.bands:
        return banded.charge(
            period.id, cohort_of(facts.joined_at, _past(before), period.publicity_on), birth_on
        )
    period_cohorts = cohorts.get(period.id)
    if not period_cohorts:
        return period.share_fen or 0
    return period_cohorts[cohort_of(facts.joined_at, _past(before), period.publicity_on)]


def _share_bound(common: Mapping[str, Any], expected_members: int | None) -> int:
    """The share this period would have with `expected_members` (None: the largest it could
    have at all, with one member) — only to choose which count to run first."""
    members = max(expected_members or 1, 1)
    figures = apportion(cohorts=[Cohort("all", members)], **{**common, "annual_cap_fen": None})
    return figures.share_fen


def _compute_cohorts(
    session: Session,
    period: Period,
    year: list[Period],
    excluded: Mapping[int, datetime],
    common: dict[str, Any],
    now: datetime,
) -> PeriodFigures:
    """The annual cap may bind: count members per cohort, and give a charge of their own to the
    few whose year so far is not their cohort's (they left and rejoined, or were excluded). If,
    counted, the share turns out to leave everyone under the cap, it is one cohort after all."""
    dialect = _dialect(session)
    past = _past(year)
    keys = [p.publicity_on for p in year] + [period.publicity_on]
    cohort_index = (
        case(
            *[(Membership.joined_at < p.lock_at, literal(i)) for i, p in enumerate(year)],
            else_=literal(len(year)),
        )
        if year
        else literal(0)
    ).label("cohort")
    counts = [0] * len(keys)
    for index, count in session.execute(
        select(cohort_index, func.count())
        .where(*sharing_where(dialect, period.plan_id, period.lock_at, period.publicity_on))
        .group_by(cohort_index)
    ):
        counts[int(index)] = int(count)
    for joined_at in excluded.values():
        counts[keys.index(cohort_of(joined_at, past, period.publicity_on))] -= 1
    members = sum(counts)
    single = apportion(cohorts=[Cohort("all", members)], **common)
    if not cap_may_bind(single.share_fen, period.annual_cap_fen, year_to_date(past)):
        return single
    ytds = [year_to_date(past[i:]) for i in range(len(year))] + [0]
    share = single.share_fen
    charges = [capped_charge(share, period.annual_cap_fen, ytd) for ytd in ytds]

    singles: list[Cohort] = []
    adjusted: list[tuple[_Facts, int]] = []
    for facts, ytd, _born in _irregular_year_to_date(session, period, year, excluded):
        index = keys.index(cohort_of(facts.joined_at, past, period.publicity_on))
        exact = capped_charge(share, period.annual_cap_fen, ytd)
        if exact != charges[index]:
            counts[index] -= 1
            singles.append(Cohort(f"membership:{facts.id}", 1, ytd))
            adjusted.append((facts, exact))
    cohorts = [
        Cohort(key.isoformat(), count, ytd)
        for key, count, ytd in zip(keys, counts, ytds, strict=True)
    ]
    figures = apportion(cohorts=cohorts + singles, **common)
    for key, cohort, result in zip(keys, cohorts, figures.charges, strict=False):
        session.add(
            PeriodCohort(
                period_id=period.id,
                cohort_on=key,
                ytd_fen=cohort.ytd_fen,
                member_count=cohort.count,
                charge_fen=result.charge_fen,
            )
        )
    _record_cap_adjusted(session, period, adjusted, now)
    return figures


def _record_cap_adjusted(
    session: Session, period: Period, adjusted: Sequence[tuple[_Facts, int]], now: datetime
) -> None:
    if adjusted:
        session.execute(
            insert(PeriodChargeException),
            [
                {
                    "period_id": period.id,
                    "membership_id": facts.id,
                    "payer_account_id": facts.payer_account_id,
                    "kind": CAP_ADJUSTED,
                    "amount_fen": amount,
                    "reason": "own charges this year differ from the cohort's",
                    "created_at": now,
                }
                for facts, amount in adjusted
            ],
        )


def _irregular_year_to_date(
    session: Session,
    period: Period,
    year: list[Period],
    excluded: Mapping[int, datetime],
    banded: _BandedHistory | None = None,
) -> list[tuple[_Facts, int, date | None]]:
    """Sharing memberships whose person's charges this year are not their cohort's, with the exact
    year to date (and, with `banded`, the person's birth date): the person had another membership in the plan this
    year, or the membership had an exception in an earlier period of the year. Few by nature;
    read individually. `banded`: the year's banded periods, whose charges depend on the birth."""
    if not year:
        return []
    where = sharing_where(
        _dialect(session), period.plan_id, period.lock_at, period.publicity_on, scan=False
    )
    # This year's leavers (index ix_memberships_ended), and the active memberships of the same
    # persons (the one-active-membership index, whose condition is repeated word for word so that
    # SQLite can use it).
    leavers = select(Membership.person_id).where(
        Membership.plan_id == period.plan_id,
        Membership.ended_at >= year[0].lock_at,
        Membership.ended_at < period.lock_at,
    )
    candidates = {
        row[0]: _Facts(*row)
        for row in session.execute(
            _facts_query().where(*where, text(ACTIVE_STATES_SQL), Membership.person_id.in_(leavers))
        )
    }
    earlier = select(PeriodChargeException.membership_id).where(
        PeriodChargeException.period_id.in_([p.id for p in year])
    )
    scan = sharing_where(_dialect(session), period.plan_id, period.lock_at, period.publicity_on)
    for row in session.execute(_facts_query().where(*scan, Membership.id.in_(earlier))):
        candidates[row[0]] = _Facts(*row)
    candidates = {k: v for k, v in candidates.items() if k not in excluded}
    if not candidates:
        return []
    persons = {f.person_id for f in candidates.values()}
    history: dict[int, list[_Facts]] = defaultdict(list)
    for row in session.execute(
        _facts_query().where(
            Membership.plan_id == period.plan_id, Membership.person_id.in_(persons)
        )
    ):
        history[row[2]].append(_Facts(*row))
    memberships = [f.id for fs in history.values() for f in fs]
    exceptions = {
        (p, m): (kind, amount)
        for p, m, kind, amount in session.execute(
            select(
                PeriodChargeException.period_id,
                PeriodChargeException.membership_id,
                PeriodChargeException.kind,
                PeriodChargeException.amount_fen,
            ).where(
                PeriodChargeException.period_id.in_([p.id for p in year]),
                PeriodChargeException.membership_id.in_(memberships),
            )
        )
    }
    cohorts = _cohort_charges(session, [p.id for p in year])
    births = (
        {
            person_id: born
            for person_id, born in session.execute(
                select(Person.id, Person.birth_on).where(Person.id.in_(persons))
            )
        }
        if banded is not None
        else {}
    )
    result = []
    for facts in sorted(candidates.values(), key=lambda f: f.id):
        born = births.get(facts.person_id)
        ytd = 0
        for position, past_period in enumerate(year):
            for other in history[facts.person_id]:
                charged = _charge_in(
                    past_period, other, year[:position], exceptions, cohorts, banded, born
                )
                if charged is not None:
                    ytd += charged
        result.append((facts, ytd, born))
    return result


@dataclass(frozen=True, slots=True)
class _BandedHistory:
    """The bands (and, where the annual cap bound, the groups) of periods closed under a
    non-uniform rule: what any member paid in each, from their cohort and birth date."""

    bands: Mapping[int, BandedPast]
    groups: Mapping[int, Sequence[tuple[date, BirthInterval, int]]]

    def share(self, period_id: int, birth_on: date) -> int | None:
        bands = self.bands.get(period_id)
        return None if bands is None else bands.share_of(birth_on)

    def charge(self, period_id: int, cohort_on: date, birth_on: date) -> int | None:
        """None: not a banded period."""
        for group_cohort, interval, charge in self.groups.get(period_id, ()):
            if group_cohort == cohort_on and interval.holds(birth_on):
                return charge
        return self.share(period_id, birth_on)


def _banded_history(session: Session, period_ids: Sequence[int]) -> _BandedHistory:
    cuts: dict[int, list[date]] = defaultdict(list)
    shares: dict[int, list[int]] = defaultdict(list)
    caps: dict[int, int | None] = {}
    for period_id, born_by_on, share, cap in session.execute(
        select(
            PeriodBand.period_id, PeriodBand.born_by_on, PeriodBand.share_fen, Period.annual_cap_fen
        )
        .join(Period, Period.id == PeriodBand.period_id)
        .where(PeriodBand.period_id.in_(period_ids))
        .order_by(PeriodBand.period_id, PeriodBand.band_index)
    ):
        if born_by_on is not None:
            cuts[period_id].append(born_by_on)
        shares[period_id].append(share)
        caps[period_id] = cap
    groups: dict[int, list[tuple[date, BirthInterval, int]]] = defaultdict(list)
    if shares:
        for group in session.scalars(
            select(PeriodBandGroup).where(PeriodBandGroup.period_id.in_(list(shares)))
        ):
            groups[group.period_id].append(
                (
                    group.cohort_on,
                    BirthInterval(group.born_after_on, group.born_by_on),
                    group.charge_fen,
                )
            )
    return _BandedHistory(
        {p: BandedPast(tuple(cuts[p]), tuple(shares[p]), caps[p]) for p in shares}, groups
    )


def _cohort_charges(session: Session, period_ids: Sequence[int]) -> dict[int, dict[date, int]]:
    cohorts: dict[int, dict[date, int]] = defaultdict(dict)
    for period_id, cohort_on, charge in session.execute(
        select(PeriodCohort.period_id, PeriodCohort.cohort_on, PeriodCohort.charge_fen).where(
            PeriodCohort.period_id.in_(period_ids)
        )
    ):
        cohorts[period_id][cohort_on] = charge
    return cohorts


# --- the charges tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChargeBlock:
    index: int
    leaf_hash: bytes
    members: int
    total_fen: int


def _apply_exceptions(
    rule: ChargeRule, ids: np.ndarray, charges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if not rule.exceptions:
        return ids, charges
    exception_ids = np.fromiter(rule.exceptions, dtype=np.int64, count=len(rule.exceptions))
    hits = np.flatnonzero(np.isin(ids, exception_ids))
    if not len(hits):
        return ids, charges
    keep = np.ones(len(ids), dtype=bool)
    charges = charges.copy()
    for position in hits:
        kind, amount = rule.exceptions[int(ids[position])]
        if kind == EXCLUDED:
            keep[position] = False
        else:
            charges[position] = amount
    return ids[keep], charges[keep]


def stream_charges(
    session: Session,
    rule: ChargeRule,
    *,
    id_from: int | None = None,
    id_to: int | None = None,
    chunk: int = STREAM_CHUNK,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(membership ids, charges) of every sharing member, ascending by id, in chunks.

    Rows come straight from the driver's cursor into numpy arrays (no ORM row objects); when
    everyone pays the same, only the ids are read.
    """
    constant = rule.constant
    columns: list[Any] = [Membership.id] if constant else [Membership.id, rule.charge_sql()]
    dialect = _dialect(session)
    stmt = select(*columns).where(*rule.where(dialect))
    if id_from is not None:
        stmt = stmt.where(Membership.id >= id_from)
    if id_to is not None:
        stmt = stmt.where(Membership.id < id_to)
    connection = session.connection()
    batches: Iterator[Sequence[Any]]
    if dialect == "sqlite":
        # pysqlite steps through the result as it is fetched: read the driver's cursor directly
        # (one id per row needs no tuple: a third faster).
        result = connection.execute(stmt.order_by(Membership.id))
        cursor: Any = result.cursor
        if constant:
            cursor.row_factory = _first_column
        batches = iter(lambda: cursor.fetchmany(chunk), [])
    else:
        result = connection.execution_options(stream_results=True, yield_per=chunk).execute(
            stmt.order_by(Membership.id)
        )
        batches = result.partitions(chunk)
    width = len(columns)
    scalar_rows = dialect == "sqlite" and constant
    try:
        for rows in batches:
            flat = np.fromiter(
                rows if scalar_rows else itertools.chain.from_iterable(rows),
                dtype=np.int64,
                count=len(rows) * width,
            )
            if constant:
                ids, charges = (
                    flat,
                    np.full(len(flat), rule.cohort_charge(START_OF_TIME), dtype=np.int64),
                )
            else:
                pairs = flat.reshape(-1, 2)
                ids, charges = pairs[:, 0], pairs[:, 1]
            ids, charges = _apply_exceptions(rule, ids, charges)
            if len(ids):
                yield ids, charges
    finally:
        result.close()


def _first_column(_cursor: Any, row: tuple[Any, ...]) -> Any:
    return row[0]


def _leaf_for(rule: ChargeRule, block: int, ids: np.ndarray, charges: np.ndarray) -> bytes:
    body = np.empty((len(ids), 2), dtype=">u8")
    body[:, 0] = ids
    body[:, 1] = charges
    return charges_leaf_header(rule.period_ref, block) + body.tobytes()


def charge_blocks_streamed(
    session: Session,
    rule: ChargeRule,
    progress: Progress | None = None,
    total: int = 0,
    *,
    chunk: int = STREAM_CHUNK,
) -> list[ChargeBlock]:
    """The tree's leaves, built in Python from a streamed scan (any database)."""
    blocks: list[ChargeBlock] = []
    carry_ids = np.empty(0, dtype=np.int64)
    carry_charges = np.empty(0, dtype=np.int64)
    done = 0

    def emit(ids: np.ndarray, charges: np.ndarray) -> None:
        block = int(ids[0]) >> BLOCK_BITS
        blocks.append(
            ChargeBlock(
                block, hash_leaf(_leaf_for(rule, block, ids, charges)), len(ids), int(charges.sum())
            )
        )

    for ids, charges in stream_charges(session, rule, chunk=chunk):
        ids = np.concatenate((carry_ids, ids))
        charges = np.concatenate((carry_charges, charges))
        block_of = ids >> BLOCK_BITS
        starts = np.flatnonzero(np.diff(block_of)) + 1
        edges = [0, *starts.tolist()]
        for begin, end in itertools.pairwise(edges):
            emit(ids[begin:end], charges[begin:end])
        carry_ids, carry_charges = ids[edges[-1] :], charges[edges[-1] :]
        done += len(ids) - len(carry_ids)
        if progress:
            progress(done, total)
    if len(carry_ids):
        emit(carry_ids, carry_charges)
    if progress:
        progress(total, total)
    return blocks


def charge_blocks_postgres(session: Session, rule: ChargeRule) -> list[ChargeBlock]:
    """The same leaves, hashed by PostgreSQL itself: only one row per 1,024 ids comes back."""
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    exception = PeriodChargeException
    charge = func.coalesce(exception.amount_fen, rule.charge_sql())
    block = Membership.id.op(">>")(literal_column(str(BLOCK_BITS), Integer()))
    pairs = func.string_agg(
        func.int8send(Membership.id).op("||")(func.int8send(charge)),
        aggregate_order_by(literal(b"", LargeBinary()), Membership.id),
    )
    header = literal(b"\x00" + charges_leaf_header(rule.period_ref, 0)[:-8], LargeBinary())
    leaf_hash = func.sha256(header.op("||")(func.int8send(block)).op("||")(pairs))
    query = (
        select(block, leaf_hash, func.count(), func.sum(charge))
        .select_from(Membership)
        .outerjoin(
            exception,
            (exception.period_id == rule.period_id) & (exception.membership_id == Membership.id),
        )
        .where(*rule.where("postgresql"), or_(exception.kind.is_(None), exception.kind != EXCLUDED))
        .group_by(block)
        .order_by(block)
    )
    return [ChargeBlock(int(b), bytes(h), int(n), int(t)) for b, h, n, t in session.execute(query)]


def charge_blocks(
    session: Session, rule: ChargeRule, progress: Progress | None = None, total: int = 0
) -> list[ChargeBlock]:
    if _dialect(session) == "postgresql":
        blocks = charge_blocks_postgres(session, rule)
        if progress:
            progress(total, total)
        return blocks
    return charge_blocks_streamed(session, rule, progress, total)


def _commit(
    ctx: ServiceContext, actor: Actor, period_id: int, step: StepHook, progress: Progress | None
) -> None:
    # The long read happens outside any write transaction; the write re-checks the state.
    with ctx.reading() as session:
        period = session.get_one(Period, period_id)
        if period.state != PeriodState.COMPUTED:
            return
        blocks: list[ChargeBlock] = []
        if period.share_fen:
            step("tree")
            blocks = charge_blocks(
                session, charge_rule(session, period), progress, period.member_count or 0
            )
    with ctx.transaction() as session:
        period = session.scalars(
            select(Period).where(Period.id == period_id).with_for_update()
        ).one()
        if period.state != PeriodState.COMPUTED:
            return
        now = ctx.clock.now()
        plan = session.get_one(Plan, period.plan_id)
        committed = sum(b.members for b in blocks)
        if blocks and (
            committed != period.member_count
            or sum(b.total_fen for b in blocks) != period.total_charged_fen
        ):
            raise Conflict(
                "charges_changed",
                f"the charges of {period.ref} no longer add up to the computed figures; "
                "memberships were changed behind the close",
                "period",
            )
        tree = MemoryTree(b.leaf_hash for b in blocks)
        root = tree.root() if blocks else EMPTY_ROOT
        session.add(
            PeriodChargeTree(
                period_id=period.id,
                block_bits=BLOCK_BITS,
                block_indexes=b"".join(b.index.to_bytes(8, "big") for b in blocks),
                leaf_hashes=b"".join(b.leaf_hash for b in blocks),
            )
        )
        period.charges_root = root.hex()
        period.charges_leaves = len(blocks)
        entry = queue_leaf(
            session,
            at=now,
            leaf_type="period_commitment",
            fields=commitment_fields(period, plan.code, committed),
            subject_type="period",
            subject_ref=period.ref,
        )
        session.flush()
        period.commitment_entry_id = entry.id
        period.state = PeriodState.COMMITTED
        period.committed_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="period_committed",
            subject_type="period",
            subject_id=period.id,
            ref=period.ref,
            charges_root=period.charges_root,
            leaves=len(blocks),
        )


def commitment_fields(period: Period, plan_code: str, committed: int) -> dict[str, Any]:
    return {
        "plan_ref": plan_code,
        "period_ref": period.ref,
        "charges_root": period.charges_root,
        "charges_count": committed,
        "total_charged_fen": period.total_charged_fen,
        "aid_fen": period.aid_fen,
        "fee_fen": period.fee_fen,
        "surplus_in_fen": period.surplus_in_fen,
        "surplus_out_fen": period.surplus_out_fen,
        "sponsor_fen": period.sponsor_fen,
        "prorated_fen": period.prorated_fen,
        "share_fen": period.share_fen,
        "member_count": period.member_count,
        "case_count": period.case_count,
        "charges_leaves": period.charges_leaves,
        "lock_at": unix_seconds(period.lock_at),
    }


# --- the public notice --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArithmeticCheck:
    """One line of "the numbers add up", with both sides so anyone can redo it."""

    name: str
    expression: str
    left: int
    right: int
    holds: bool


@dataclass(frozen=True, slots=True)
class CohortLine:
    cohort_on: date
    member_count: int
    charged_so_far_this_year_fen: int
    charge_fen: int


@dataclass(frozen=True, slots=True)
class PeriodNotice:
    period: PeriodView
    fee_bp: int
    per_case_cap_fen: int | None
    annual_cap_fen: int | None
    cases: list[PublicCase]
    sponsored_cases: list[PublicCase]
    cohorts: list[CohortLine]
    excluded_members: int
    own_charges: int
    own_charges_fen: int
    checks: list[ArithmeticCheck]
    commitment_leaf: str | None
    commitment_leaf_index: int | None
    #: The plan's sharing rule for this period, and under a non-uniform one each age band's share.
    sharing_rule: str = SharingRule.UNIFORM
    bands: list[BandLine] = field(default_factory=list)
    #: Under a non-uniform rule when the annual cap bound: members per cohort and birth interval.
    groups: list[GroupLine] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BandLine:
    """One age band of a period under a non-uniform rule, as the notice shows it."""

    from_age: int
    to_age: int
    #: Born on or before this day: at least `from_age` on publicity day (None: the youngest band).
    born_by_on: date | None
    #: One member's weight, an exact fraction "numerator/denominator".
    weight: str
    member_count: int
    band_total_fen: int
    uncapped_share_fen: int
    share_fen: int


@dataclass(frozen=True, slots=True)
class GroupLine:
    """Members of one cohort born in one interval (after `born_after_on`, on or before
    `born_by_on`; None: open), in band `band_index` now: they have paid the same this year, and
    pay their band's share capped at what the annual cap leaves them."""

    cohort_on: date
    born_after_on: date | None
    born_by_on: date | None
    band_index: int
    member_count: int
    charged_so_far_this_year_fen: int
    charge_fen: int


def group_lines(session: Session, period_id: int) -> list[GroupLine]:
    return [
        GroupLine(
            g.cohort_on,
            g.born_after_on,
            g.born_by_on,
            g.band_index,
            g.member_count,
            g.ytd_fen,
            g.charge_fen,
        )
        for g in session.scalars(
            select(PeriodBandGroup)
            .where(PeriodBandGroup.period_id == period_id)
            .order_by(PeriodBandGroup.cohort_on, PeriodBandGroup.interval_index)
        )
    ]


def band_lines(session: Session, period_id: int) -> list[BandLine]:
    return [
        BandLine(
            b.from_age,
            b.to_age,
            b.born_by_on,
            b.weight,
            b.member_count,
            b.band_total_fen,
            b.uncapped_share_fen,
            b.share_fen,
        )
        for b in period_bands(session, period_id)
    ]


def period_notice(ctx: ServiceContext, plan_code: str, publicity_on: date) -> PeriodNotice:
    """The public notice of a computed period: every case (anonymised), the figures, the cohorts,
    and the arithmetic that shows the total is exactly aid + fee − surplus carried (+ new surplus,
    − the sponsor's and prorated parts). Needs no login."""
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on)
        if not reached(PeriodState(period.state), PeriodState.COMPUTED):
            raise Conflict("period_not_computed", f"period {period.ref} is still being closed")
        rules = rules_of(session, plan.id, period.plan_version)
        rows = session.execute(
            select(Claim, Person, Membership)
            .join(Person, Person.id == Claim.person_id)
            .join(Membership, Membership.id == Claim.membership_id)
            .where(Claim.period_id == period.id)
            .order_by(Claim.approved_at, Claim.id)
        ).all()
        cases = [public_case(rules, c, p, m) for c, p, m in rows if not c.sponsored]
        sponsored = [public_case(rules, c, p, m) for c, p, m in rows if c.sponsored]
        cohorts = [
            CohortLine(c.cohort_on, c.member_count, c.ytd_fen, c.charge_fen)
            for c in session.scalars(
                select(PeriodCohort)
                .where(PeriodCohort.period_id == period.id)
                .order_by(PeriodCohort.cohort_on)
            )
        ]
        exception_rows = session.execute(
            select(
                PeriodChargeException.kind, func.count(), func.sum(PeriodChargeException.amount_fen)
            )
            .where(PeriodChargeException.period_id == period.id)
            .group_by(PeriodChargeException.kind)
        ).all()
        by_kind = {kind: (int(n), int(total or 0)) for kind, n, total in exception_rows}
        entry = (
            session.get(LogEntry, period.commitment_entry_id)
            if period.commitment_entry_id
            else None
        )
        pv = view(period, plan.code)
        bands = band_lines(session, period.id)
        groups = group_lines(session, period.id) if bands else []
        checks = notice_checks(
            pv,
            cohorts,
            by_kind.get(CAP_ADJUSTED, (0, 0)),
            cases,
            bands,
            groups,
            period.annual_cap_fen,
        )
        return PeriodNotice(
            period=pv,
            fee_bp=period.fee_bp,
            per_case_cap_fen=period.per_case_cap_fen,
            annual_cap_fen=period.annual_cap_fen,
            cases=cases,
            sponsored_cases=sponsored,
            cohorts=cohorts,
            excluded_members=by_kind.get(EXCLUDED, (0, 0))[0],
            own_charges=by_kind.get(CAP_ADJUSTED, (0, 0))[0],
            own_charges_fen=by_kind.get(CAP_ADJUSTED, (0, 0))[1],
            checks=checks,
            commitment_leaf=entry.leaf_data.decode() if entry is not None else None,
            commitment_leaf_index=entry.leaf_index if entry is not None else None,
            sharing_rule=rules.sharing_rule,
            bands=bands,
            groups=groups,
        )


def notice_checks(
    p: PeriodView,
    cohorts: Sequence[CohortLine],
    own: tuple[int, int],
    cases: Sequence[PublicCase],
    bands: Sequence[BandLine] = (),
    groups: Sequence[GroupLine] = (),
    annual_cap_fen: int | None = None,
) -> list[ArithmeticCheck]:
    aid, fee = p.aid_fen or 0, p.fee_fen or 0
    s_in, s_out = p.surplus_in_fen or 0, p.surplus_out_fen or 0
    total, sponsor, prorated = p.total_charged_fen or 0, p.sponsor_fen or 0, p.prorated_fen or 0
    members, share = p.member_count or 0, p.share_fen or 0
    need = aid + fee - s_in
    if cohorts or groups:
        lines = [(c.member_count, c.charge_fen) for c in cohorts] + [
            (g.member_count, g.charge_fen) for g in groups
        ]
        summed = sum(count * charge for count, charge in lines) + own[1]
        counted = sum(count for count, _ in lines) + own[0]
    elif bands:
        summed = sum(b.member_count * b.share_fen for b in bands) + own[1]
        counted = sum(b.member_count for b in bands) + own[0]
    else:
        summed, counted = members * share, members
    checks = [
        ArithmeticCheck(
            "aid",
            "Σ payouts of the shared cases = aid",
            sum(c.payout_fen for c in cases),
            aid,
            sum(c.payout_fen for c in cases) == aid,
        ),
        ArithmeticCheck(
            "charges", "Σ members × charge = total charged", summed, total, summed == total
        ),
        ArithmeticCheck(
            "members", "Σ members of every cohort = members", counted, members, counted == members
        ),
        ArithmeticCheck(
            "balance",
            "total + sponsor + prorated = aid + fee − surplus in + surplus out",
            total + sponsor + prorated,
            aid + fee - s_in + s_out,
            total + sponsor + prorated == aid + fee - s_in + s_out,
        ),
    ]
    if bands:
        return checks + banded_checks(bands, need, groups, annual_cap_fen)
    if members and need > 0:
        uncapped = -(-need // members)
        checks.append(
            ArithmeticCheck(
                "share",
                "uncapped share = ⌈(aid + fee − surplus in) / members⌉",
                p.uncapped_share_fen or 0,
                uncapped,
                (p.uncapped_share_fen or 0) == uncapped,
            )
        )
    return checks


def banded_checks(
    bands: Sequence[BandLine],
    need: int,
    groups: Sequence[GroupLine] = (),
    annual_cap_fen: int | None = None,
) -> list[ArithmeticCheck]:
    """Under a non-uniform rule: the bands' parts add up to the need, each band's share is its
    part over its members, rounded up, and each group pays its band's share capped at what the
    annual cap leaves it."""
    parts = sum(b.band_total_fen for b in bands)
    checks = [
        ArithmeticCheck(
            "bands",
            "Σ band totals = aid + fee − surplus in",
            parts,
            max(need, 0),
            parts == max(need, 0),
        )
    ]
    for band in bands:
        if band.member_count and band.band_total_fen:
            uncapped = -(-band.band_total_fen // band.member_count)
            checks.append(
                ArithmeticCheck(
                    f"share_{band.from_age}_{band.to_age}",
                    f"uncapped share {band.from_age}–{band.to_age} = ⌈band total / band members⌉",
                    band.uncapped_share_fen,
                    uncapped,
                    band.uncapped_share_fen == uncapped,
                )
            )
    if groups:
        charged = sum(g.member_count * g.charge_fen for g in groups)
        capped = sum(
            g.member_count
            * capped_charge(
                bands[g.band_index].share_fen, annual_cap_fen, g.charged_so_far_this_year_fen
            )
            for g in groups
        )
        checks.append(
            ArithmeticCheck(
                "groups",
                "Σ group members × min(band share, annual cap − charged so far) = "
                "Σ group members × charge",
                capped,
                charged,
                capped == charged
                and all(
                    g.charge_fen
                    == capped_charge(
                        bands[g.band_index].share_fen,
                        annual_cap_fen,
                        g.charged_so_far_this_year_fen,
                    )
                    for g in groups
                ),
            )
        )
    return checks


# --- a member's statement ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    period_ref: str
    publicity_on: date
    debit_on: date
    share_fen: int
    charge_fen: int
    paid_fen: int
    #: paid, due, unpaid (being retried), paid_late, written_off, excluded, nothing_due
    status: str
    case_count: int
    aid_fen: int
    fee_fen: int
    member_count: int
    #: Cases of the period the sponsor paid (never shared), and why the sponsor paid every
    #: share ("promotion"), if it did (issue 8).
    sponsored_aid_fen: int = 0
    sponsored_by: str | None = None


@dataclass(frozen=True, slots=True)
class MemberStatement:
    membership_id: int
    plan_code: str
    name_masked: str
    joined_on: date
    lines: list[StatementLine] = field(default_factory=list)
    charged_fen: int = 0
    paid_fen: int = 0


def member_statement(ctx: ServiceContext, actor: Actor, membership_id: int) -> MemberStatement:
    """Every period a membership shared in: the share, its charge, what was paid and what for.

    Computed from the period rows, the membership's dates and its exceptions and failures: there
    is no row per member per period to read.
    """
    with ctx.reading() as session:
        row = session.execute(
            select(Membership, Person.name_masked, Plan.code, Person.birth_on)
            .join(Person, Person.id == Membership.person_id)
            .join(Plan, Plan.id == Membership.plan_id)
            .where(Membership.id == membership_id)
        ).first()
        if row is None or (
            actor.role not in STAFF_ROLES and row[0].payer_account_id != actor.account_id
        ):
            raise NotFound(
                "membership_not_found", f"there is no membership {membership_id}", "membership_id"
            )
        membership, name_masked, plan_code, birth_on = row
        facts = _Facts(
            membership.id,
            membership.payer_account_id,
            membership.person_id,
            membership.joined_at,
            membership.ended_at,
            membership.ages_out_on,
        )
        computed = [str(s) for s in PeriodState if reached(s, PeriodState.COMPUTED)]
        # Every computed period it was in the plan at the lock of. Earlier periods of a year in
        # which it did not share cannot change its cohort, so they are not needed.
        columns = (
            Period.id,
            Period.ref,
            Period.publicity_on,
            Period.debit_on,
            Period.lock_at,
            Period.state,
            Period.share_fen,
            Period.annual_cap_fen,
            Period.case_count,
            Period.aid_fen,
            Period.fee_fen,
            Period.member_count,
            Period.collect_cursor,
            Period.sponsored_aid_fen,
            Period.sponsored_by,
        )
        # Three queries in all (membership, periods with their cohorts, the membership's own
        # exceptions and failures): a statement costs the same at 10 or 100 million members.
        periods: list[Any] = []
        cohorts: dict[int, dict[date, int]] = defaultdict(dict)
        for period_row in session.execute(
            select(*columns, PeriodCohort.cohort_on, PeriodCohort.charge_fen)
            .outerjoin(PeriodCohort, PeriodCohort.period_id == Period.id)
            .where(
                Period.plan_id == membership.plan_id,
                Period.state.in_(computed),
                Period.lock_at > membership.joined_at,
                or_(
                    literal(membership.ended_at is None),
                    Period.lock_at <= (membership.ended_at or membership.joined_at),
                ),
            )
            .order_by(Period.publicity_on)
        ):
            if not periods or periods[-1].id != period_row.id:
                periods.append(period_row)
            if period_row.cohort_on is not None:
                cohorts[period_row.id][period_row.cohort_on] = period_row.charge_fen
        exceptions: dict[tuple[int, int], tuple[str, int]] = {}
        failures: dict[int, tuple[str, int]] = {}
        own = union_all(
            select(
                literal("exception"),
                PeriodChargeException.period_id,
                PeriodChargeException.kind,
                PeriodChargeException.amount_fen,
            ).where(PeriodChargeException.membership_id == membership.id),
            select(
                literal("failure"),
                CollectionFailure.period_id,
                CollectionFailure.status,
                CollectionFailure.amount_fen,
            ).where(CollectionFailure.membership_id == membership.id),
        )
        for source, period_id, kind, amount in session.execute(own):
            if source == "exception":
                exceptions[(period_id, membership.id)] = (kind, amount)
            else:
                failures[period_id] = (kind, amount)
        statement = MemberStatement(membership.id, plan_code, name_masked, membership.joined_on)
        banded = _banded_history(session, [p.id for p in periods])
        before: list[Any] = []
        for period in periods:
            if before and before[-1].publicity_on.year != period.publicity_on.year:
                before = []
            charge = _charge_in(period, facts, before, exceptions, cohorts, banded, birth_on)
            before.append(period)
            if charge is None:
                if (period.id, membership.id) not in exceptions:
                    continue
                statement.lines.append(_line(period, 0, 0, EXCLUDED))
                continue
            status, paid = _payment(
                period, charge, failures.get(period.id), membership.payer_account_id
            )
            statement.lines.append(
                _line(period, charge, paid, status, banded.share(period.id, birth_on))
            )
        return MemberStatement(
            statement.membership_id,
            statement.plan_code,
            statement.name_masked,
            statement.joined_on,
            statement.lines,
            charged_fen=sum(line.charge_fen for line in statement.lines),
            paid_fen=sum(line.paid_fen for line in statement.lines),
        )


def _payment(
    period: Any, charge: int, failure: tuple[str, int] | None, payer: int
) -> tuple[str, int]:
    if charge == 0:
        return "nothing_due", 0
    if failure is not None:
        status, amount = failure
        return {
            "retrying": ("unpaid", 0),
            "paid_late": ("paid_late", amount),
            "written_off": ("written_off", 0),
        }.get(status, (status, 0))
    state = PeriodState(period.state)
    if reached(state, PeriodState.COLLECTED) or (
        state is PeriodState.COLLECTING
        and period.collect_cursor is not None
        and payer <= period.collect_cursor
    ):
        return "paid", charge
    return "due", 0


def _line(
    period: Any, charge: int, paid: int, status: str, share: int | None = None
) -> StatementLine:
    return StatementLine(
        period_ref=period.ref,
        publicity_on=period.publicity_on,
        debit_on=period.debit_on,
        share_fen=(period.share_fen or 0) if share is None else share,
        charge_fen=charge,
        paid_fen=paid,
        status=status,
        case_count=period.case_count or 0,
        aid_fen=period.aid_fen or 0,
        fee_fen=period.fee_fen or 0,
        member_count=period.member_count or 0,
        sponsored_aid_fen=period.sponsored_aid_fen or 0,
        sponsored_by=period.sponsored_by,
    )


def account_statements(ctx: ServiceContext, actor: Actor) -> list[MemberStatement]:
    """The statements of every membership the actor pays for."""
    with ctx.reading() as session:
        ids = list(
            session.scalars(
                select(Membership.id)
                .where(Membership.payer_account_id == actor.account_id)
                .order_by(Membership.id)
            )
        )
    return [member_statement(ctx, actor, membership_id) for membership_id in ids]


# --- a member's proof that their charge is in the committed total --------------------------------


@dataclass(frozen=True, slots=True)
class ChargeProof:
    period_ref: str
    membership_id: int
    charge_fen: int
    share_fen: int
    #: Every (membership id, charge) of the member's block: the leaf, to be re-encoded.
    block_index: int
    block: list[tuple[int, int]]
    leaf_index: int
    tree_size: int
    inclusion_proof: list[str]
    charges_root: str
    #: The period_commitment leaf (canonical JSON) holding `charges_root`, and its log index.
    commitment_leaf: str | None
    commitment_leaf_index: int | None


def charge_proof(
    ctx: ServiceContext, actor: Actor, membership_id: int, plan_code: str, publicity_on: date
) -> ChargeProof:
    """The evidence a member needs to check, without trusting us, that their charge is one leaf
    entry of the committed charges tree and equal to the period's share (see `verify_charge_proof`)."""
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        membership = session.get(Membership, membership_id)
        if (
            membership is None
            or membership.plan_id != plan.id
            or (actor.role not in STAFF_ROLES and membership.payer_account_id != actor.account_id)
        ):
            raise NotFound(
                "membership_not_found", f"there is no membership {membership_id}", "membership_id"
            )
        period = find_period(session, plan, publicity_on)
        if not reached(PeriodState(period.state), PeriodState.COMMITTED):
            raise Conflict("period_not_committed", f"period {period.ref} is not committed yet")
        if not period.share_fen:
            raise NotFound(
                "not_charged", f"nobody was charged in {period.ref} (no share)", "membership_id"
            )
        tree_row = session.get_one(PeriodChargeTree, period.id)
        bits = tree_row.block_bits
        block_index = membership_id >> bits
        low, high = block_index << bits, (block_index + 1) << bits
        rule = charge_rule(session, period, id_from=low, id_to=high)
        pairs: list[tuple[int, int]] = []
        for ids, charges in stream_charges(session, rule, id_from=low, id_to=high):
            pairs.extend(zip(ids.tolist(), charges.tolist(), strict=True))
        own = [charge for mid, charge in pairs if mid == membership_id]
        if not own:
            raise NotFound(
                "not_charged",
                f"membership {membership_id} was not charged in {period.ref}",
                "membership_id",
            )
        indexes = np.frombuffer(tree_row.block_indexes, dtype=">u8")
        leaf_index = int(np.searchsorted(indexes, block_index))
        if leaf_index >= len(indexes) or int(indexes[leaf_index]) != block_index:
            raise Conflict("charges_changed", "this block is not in the committed tree")
        stored = tree_row.leaf_hashes
        leaf = charges_leaf(period.ref, block_index, pairs)
        if stored[32 * leaf_index : 32 * leaf_index + 32] != hash_leaf(leaf):
            raise Conflict("charges_changed", "this block no longer matches the committed tree")
        tree = _charges_tree(period.id, period.charges_root or "", stored)
        entry = (
            session.get(LogEntry, period.commitment_entry_id)
            if period.commitment_entry_id
            else None
        )
        return ChargeProof(
            period_ref=period.ref,
            membership_id=membership_id,
            charge_fen=own[0],
            share_fen=period.share_fen or 0,
            block_index=block_index,
            block=pairs,
            leaf_index=leaf_index,
            tree_size=len(indexes),
            inclusion_proof=[h.hex() for h in tree.inclusion_proof(leaf_index)],
            charges_root=period.charges_root or "",
            commitment_leaf=entry.leaf_data.decode() if entry is not None else None,
            commitment_leaf_index=entry.leaf_index if entry is not None else None,
        )


_TREES: OrderedDict[tuple[int, str], MemoryTree] = OrderedDict()
_TREES_KEPT = 4


def _charges_tree(period_id: int, root: str, leaf_hashes: bytes) -> MemoryTree:
    """The period's charges tree, built once per process and kept for the next proofs (members
    ask about the latest periods; 100M members make a 98k-leaf tree of about 7 MB)."""
    key = (period_id, root)
    tree = _TREES.get(key)
    if tree is None:
        tree = MemoryTree(leaf_hashes[i : i + 32] for i in range(0, len(leaf_hashes), 32))
        if tree.root().hex() != root:
            raise Conflict("charges_changed", "the stored leaves do not make the committed root")
        _TREES[key] = tree
        while len(_TREES) > _TREES_KEPT:
            _TREES.popitem(last=False)
    _TREES.move_to_end(key)
    return tree


def verify_charge_proof(proof: ChargeProof) -> None:
    """Check a charge proof offline; raises VerificationError or DomainError when it fails.

    1. the member's (id, charge) is in the block, and the block re-encodes to the leaf;
    2. the leaf's inclusion proof leads to `charges_root`;
    3. the commitment leaf (logged in the transparency log) names that root and this period;
    4. the charge equals the period's share (or is lower only where the annual cap binds, which
       the commitment's share and the member's own statement show).
    """
    import json

    from mutualaid.transparency.errors import VerificationError

    if (proof.membership_id, proof.charge_fen) not in [tuple(p) for p in proof.block]:
        raise VerificationError("the member's charge is not in the block")
    leaf = charges_leaf(proof.period_ref, proof.block_index, [(a, b) for a, b in proof.block])
    verify_inclusion(
        leaf_hash=hash_leaf(leaf),
        index=proof.leaf_index,
        size=proof.tree_size,
        proof=[bytes.fromhex(h) for h in proof.inclusion_proof],
        root=bytes.fromhex(proof.charges_root),
    )
    if proof.commitment_leaf is not None:
        commitment = json.loads(proof.commitment_leaf)
        if (
            commitment.get("charges_root") != proof.charges_root
            or commitment.get("period_ref") != proof.period_ref
        ):
            raise VerificationError("the logged commitment names another root or period")
        if commitment.get("share_fen", proof.share_fen) != proof.share_fen:
            raise VerificationError("the logged share differs")
    if proof.charge_fen > proof.share_fen:
        raise VerificationError("the charge is above the period's share")


def block_digest(period_ref_text: str, block_index: int, pairs: Sequence[tuple[int, int]]) -> str:
    """Hex leaf hash of a block, for tools that check a downloaded charges file."""
    return hashlib.sha256(b"\x00" + charges_leaf(period_ref_text, block_index, pairs)).hexdigest()
