"""A member's statement: what they paid in each period, and why."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    CollectionFailure,
    Membership,
    Period,
    PeriodChargeException,
    PeriodCohort,
    Person,
    Plan,
)
from mutualaid.domain.accounts import STAFF_ROLES
from mutualaid.domain.apportionment import (
    PeriodState,
    reached,
)
from mutualaid.domain.errors import NotFound
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.periods.cohorts import _banded_history, _charge_in, _Facts
from mutualaid.services.periods.sharing import EXCLUDED

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
    with ctx.reading(replica=True) as session:
        return statement_of(session, membership_id, actor)


def statement_of(
    session: Session, membership_id: int, actor: Actor | None = None
) -> MemberStatement:
    """`member_statement` in the caller's session (`actor` None: no visibility check, for a
    service that already holds the membership, such as a refund of its shares)."""
    row = session.execute(
        select(Membership, Person.name_masked, Plan.code, Person.birth_on)
        .join(Person, Person.id == Membership.person_id)
        .join(Plan, Plan.id == Membership.plan_id)
        .where(Membership.id == membership_id)
    ).first()
    if row is None or (
        actor is not None
        and actor.role not in STAFF_ROLES
        and row[0].payer_account_id != actor.account_id
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


def charged_in_year(statement: MemberStatement, year: int) -> int:
    """What a membership was charged in the periods published in calendar year `year` (what
    the plan's annual cap limits)."""
    return sum(line.charge_fen for line in statement.lines if line.publicity_on.year == year)


def account_statements(ctx: ServiceContext, actor: Actor) -> list[MemberStatement]:
    """The statements of every membership the actor pays for."""
    with ctx.reading(replica=True) as session:
        ids = list(
            session.scalars(
                select(Membership.id)
                .where(Membership.payer_account_id == actor.account_id)
                .order_by(Membership.id)
            )
        )
    return [member_statement(ctx, actor, membership_id) for membership_id in ids]
