"""The figures once the annual cap can bind: cohorts, groups and the year to date."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import (
    case,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    ACTIVE_STATES_SQL,
    Membership,
    Period,
    PeriodBand,
    PeriodBandGroup,
    PeriodChargeException,
    PeriodCohort,
    Person,
)
from mutualaid.domain.apportionment import (
    Cohort,
    PastPeriod,
    PeriodFigures,
    apportion,
    cap_may_bind,
    capped_charge,
    cohort_of,
    year_to_date,
)
from mutualaid.domain.sharing_bands import BandedPast, BirthInterval
from mutualaid.services.periods.sharing import (
    CAP_ADJUSTED,
    EXCLUDED,
    shares_in,
    sharing_where,
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
        .where(*sharing_where(session, period.plan_id, period.lock_at, period.publicity_on))
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
    where = sharing_where(session, period.plan_id, period.lock_at, period.publicity_on, scan=False)
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
    scan = sharing_where(session, period.plan_id, period.lock_at, period.publicity_on)
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
