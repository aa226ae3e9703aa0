"""The age-out moves themselves (issue 19; the opt-in: age_out_moves.py): run by the daily job
(`advance_memberships`), in its transaction, before the set-based age-out of everyone else. The
move is one event recorded on both memberships: the old one ends `move_out`, the new one starts
`move_in`, in one transaction, with an audit row and a log leaf each. The old one ends at 00:00
on the birthday, like an age-out; the new one joins at the instant of the move (never earlier, so
that a period of the new plan locked before the job ran is not changed after the fact).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import AgeOutMove, Membership, Person, Plan
from mutualaid.db.queries.plans import current_rules, plan_by_code, rules_of
from mutualaid.domain.calendars import age_in_years, start_of_day
from mutualaid.domain.errors import NotFound
from mutualaid.domain.memberships import (
    MOVE_IN,
    MembershipEvent,
    MembershipState,
    coverage_dates,
)
from mutualaid.services import audit
from mutualaid.services.enrollment.endings import end_membership
from mutualaid.services.enrollment.membership_leaves import queue_membership_event


def move_ageing_out(session: Session, plan: Plan, today: date, now: datetime) -> int:
    """Move every opted-in membership of `plan` that ages out by `today` into the plan its rules
    name, in the caller's transaction (the daily job's): the number moved. A person who cannot
    enter the new plan (its entry ages, or already a member of it) simply ages out."""
    rows = session.execute(
        select(AgeOutMove, Membership, Person)
        .join(Membership, Membership.id == AgeOutMove.from_membership_id)
        .join(Person, Person.id == Membership.person_id)
        .where(
            AgeOutMove.moved_at.is_(None),
            Membership.plan_id == plan.id,
            # A suspended membership (a share unpaid) does not move: it simply ages out.
            Membership.state.in_([MembershipState.WAITING, MembershipState.COVERED]),
            Membership.ages_out_on <= today,
        )
        .order_by(AgeOutMove.from_membership_id)
    ).all()
    moved = 0
    for row, membership, person in rows:
        move = rules_of(session, plan.id, membership.plan_version).age_out_move
        if move is None:
            continue
        try:
            target = plan_by_code(session, move.to_plan)
        except NotFound:
            continue
        if _move(session, plan, target, row, membership, person, now):
            moved += 1
    return moved


def _move(
    session: Session,
    plan: Plan,
    target: Plan,
    row: AgeOutMove,
    old: Membership,
    person: Person,
    now: datetime,
) -> bool:
    """One move, in the daily job's transaction: the old membership ends (`move_out`) and the new
    one starts (`move_in`). The old one ends at 00:00 on the birthday in the old plan's zone, the
    new one joins at `now`, with its waiting period counted from the birthday."""
    rules = current_rules(session, target)
    moves_on = old.ages_out_on
    age = age_in_years(person.birth_on, moves_on)
    if not rules.entry.min_age_years <= age <= rules.entry.max_age_years:
        return False
    at = start_of_day(moves_on, rules_of(session, plan.id, old.plan_version).zone)
    dates = coverage_dates(rules, moves_on, person.birth_on)
    new = Membership(
        plan_id=target.id,
        plan_version=target.current_version,
        person_id=person.id,
        payer_account_id=old.payer_account_id,
        state=MembershipState.WAITING,
        joined_at=max(at, now),
        joined_on=dates.joined_on,
        waiting_ends_on=dates.waiting_ends_on,
        covered_from_on=dates.covered_from_on,
        ages_out_on=dates.ages_out_on,
    )
    try:
        with session.begin_nested():
            session.add(new)
            session.flush()
    except IntegrityError:  # already a member of the new plan: no move
        return False
    row.to_membership_id, row.moved_at = new.id, now
    end_membership(
        session,
        old,
        MembershipEvent.MOVE_OUT,
        plan_ref=plan.code,
        at=now,
        effective_at=at,
        actor_account_id=None,
        to_membership_id=new.id,
        to_plan=target.code,
    )
    audit.record(
        session,
        at=now,
        actor_account_id=None,
        action=f"membership_{MOVE_IN}",
        subject_type="membership",
        subject_id=new.id,
        from_membership_id=old.id,
        from_plan=plan.code,
    )
    queue_membership_event(
        session,
        at=now,
        plan_ref=target.code,
        membership_id=new.id,
        event=MOVE_IN,
        state=MembershipState.WAITING,
        occurred_at=new.joined_at,
    )
    return True
