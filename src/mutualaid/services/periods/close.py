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
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    CollectionFailure,
    Membership,
    Period,
    PeriodBand,
    PeriodBandGroup,
    PeriodChargeException,
    Person,
    Plan,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code, rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import (
    CapExcess,
    Cohort,
    PeriodFigures,
    PeriodState,
    apportion,
    cap_may_bind,
    capped_charge,
    cohort_of,
    latest_publicity_day,
    period_dates,
    period_ref,
    reached,
    year_to_date,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.ledger import period_charge
from mutualaid.domain.plans import PlanRules
from mutualaid.domain.sharing import RiskClass, SharingRule
from mutualaid.domain.sharing_bands import (
    BandedPast,
    BandGroup,
    BirthInterval,
    apportion_banded,
    band_cuts,
    band_groups,
    plan_bands,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.ledger.ledger import post
from mutualaid.services.periods.charges import _commit
from mutualaid.services.periods.cohorts import (
    _banded_history,
    _compute_cohorts,
    _Facts,
    _irregular_year_to_date,
    _past,
    _record_cap_adjusted,
    _share_bound,
)
from mutualaid.services.periods.sharing import EXCLUDED, Progress, StepHook, sharing_where
from mutualaid.services.periods.views import PeriodView, find_period, view
from mutualaid.services.plans.schemes import sponsorship_of_period

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
    uow: UnitOfWork[int] = ctx.unit_of_work()
    try:
        with uow:
            session = uow.session
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
                    details={
                        "publicity_on": publicity_on.isoformat(),
                        "lock_at": dates.lock_at.isoformat(),
                    },
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
                    details={"period": later},
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
            uow.commit(period.id)
        return uow.result
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


def _compute(ctx: ServiceContext, actor: Actor, period_id: int, step: StepHook) -> None:
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        session = uow.session
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
                details={"period": previous.ref},
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

        excluded = _record_exclusions(session, period, now)
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
                    .where(*sharing_where(session, plan.id, period.lock_at, period.publicity_on))
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
        uow.commit(None)


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
    among the bands exactly (`sharing_bands.apportion_banded`), and each band's share stored. When the
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
    rule = SharingRule(rules.sharing_rule)
    arguments: dict[str, Any] = {
        "rule": rule,
        "class_aid_fen": _band_aid(session, period, band_of, len(bands))
        if rule is SharingRule.COMPENSATION
        else None,
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


def _band_aid(
    session: Session, period: Period, band_of: ColumnElement[Any], count: int
) -> list[int]:
    """The shared aid of the period's claims per age band of the claimant (one GROUP BY)."""
    aid = [0] * count
    for index, total in session.execute(
        select(band_of, func.sum(Claim.payout_fen))
        .select_from(Claim)
        .join(Person, Person.id == Claim.person_id)
        .where(Claim.period_id == period.id, Claim.sponsored.is_(False))
        .group_by(band_of)
    ):
        aid[int(index)] += int(total or 0)
    return aid


def _count_sharing(
    session: Session, period: Period, *keys: ColumnElement[Any]
) -> dict[tuple[int, ...], int]:
    """Sharing members (the excluded taken off) counted per value of the integer `keys`, which
    may read the membership and its person: one GROUP BY each for the sharing and the excluded."""
    sharing = (
        select(*keys, func.count())
        .select_from(Membership)
        .join(Person, Person.id == Membership.person_id)
        .where(*sharing_where(session, period.plan_id, period.lock_at, period.publicity_on))
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


def _record_exclusions(session: Session, period: Period, now: datetime) -> dict[int, datetime]:
    """Members in the plan at the lock but suspended for an unpaid share: they are not charged.

    Suspended now (the close runs at the lock: the stored state is the state at the lock), or
    suspended by a failed collection before the lock and not resolved by then (exact even when the
    close runs later). Recorded with INSERT … SELECT (no rows through Python); returns membership
    id -> joined_at of the excluded.
    """
    where = sharing_where(session, period.plan_id, period.lock_at, period.publicity_on, scan=False)
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
                *sharing_where(session, period.plan_id, period.lock_at, period.publicity_on),
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
