"""Age-out moves (issue 19): from the age the plan's `[age_out_move]` names (Xiang Hu Bao: 59) a
member may opt in to move automatically, when they age out of the plan, into the plan it names
(the elderly cancer plan). The move is one event recorded on both memberships: the old one ends
with reason `move_out`, the new one starts with `move_in` (an `age_out_moves` row links them,
one audit row and one log leaf each). From then the new plan's own rules apply: its entry ages,
its waiting period from the move, its catalogue, its pool and caps.

Use cases: age_out_move (read), set_age_out_move (opt in or out). The moves themselves:
moves.py, run by the daily job (`advance_memberships`) before the set-based age-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from mutualaid.db.models import AgeOutMove, Membership
from mutualaid.db.queries.plans import rules_of
from mutualaid.domain.calendars import age_in_years, anniversary, local_date
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.memberships import (
    ACTIVE_STATES,
    CoverageDates,
    MembershipState,
    state_on,
)
from mutualaid.domain.plans import AgeOutMove as MoveRules
from mutualaid.domain.plans import PlanRules
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import _load_visible
from mutualaid.services.idempotency import Once


@dataclass(frozen=True, slots=True)
class AgeOutMoveView:
    membership_id: int
    to_plan_code: str
    opted_in: bool
    #: The first day the member may opt in (the birthday at `opt_in_from_age_years`).
    opt_in_from_on: date
    #: The day of the move: the birthday on which the membership ages out.
    moves_on: date
    opted_in_at: datetime | None = None
    moved_to_membership_id: int | None = None
    moved_at: datetime | None = None


def _move_rules(rules: PlanRules, membership_id: int) -> MoveRules:
    if rules.age_out_move is None:
        raise DomainError(
            "no_age_out_move",
            "this plan has no automatic move when a member ages out",
            "membership_id",
            details={"membership_id": membership_id},
        )
    return rules.age_out_move


def _view(
    membership: Membership, birth_on: date, move: MoveRules, row: AgeOutMove | None
) -> AgeOutMoveView:
    return AgeOutMoveView(
        membership_id=membership.id,
        to_plan_code=move.to_plan,
        opted_in=row is not None,
        opt_in_from_on=anniversary(birth_on, move.opt_in_from_age_years),
        moves_on=membership.ages_out_on,
        opted_in_at=row.opted_in_at if row else None,
        moved_to_membership_id=row.to_membership_id if row else None,
        moved_at=row.moved_at if row else None,
    )


def age_out_move(ctx: ServiceContext, actor: Actor, membership_id: int) -> AgeOutMoveView:
    """Whether this membership will move when it ages out, and where to."""
    with ctx.reading() as session:
        membership, person, plan = _load_visible(session, actor, membership_id)
        move = _move_rules(rules_of(session, plan.id, membership.plan_version), membership.id)
        return _view(membership, person.birth_on, move, session.get(AgeOutMove, membership.id))


def set_age_out_move(
    ctx: ServiceContext,
    actor: Actor,
    membership_id: int,
    opted_in: bool,
    *,
    idempotency_key: str | None = None,
) -> AgeOutMoveView:
    """Opt in (from the plan's opt-in age) or out of the move, while the membership is active
    and has not moved."""
    once = Once(
        actor.account_id,
        idempotency_key,
        f"age_out_move:{membership_id}",
        {"opted_in": opted_in},
        AgeOutMoveView,
    )
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        now = ctx.clock.now()
        membership, person, plan = _load_visible(session, actor, membership_id)
        rules = rules_of(session, plan.id, membership.plan_version)
        move = _move_rules(rules, membership.id)
        today = local_date(now, rules.zone)
        dates = CoverageDates(
            membership.joined_on,
            membership.waiting_ends_on,
            membership.covered_from_on,
            membership.ages_out_on,
        )
        row = session.get(AgeOutMove, membership.id, with_for_update=True)
        state = state_on(dates, MembershipState(membership.state), today)
        if state not in ACTIVE_STATES or (row is not None and row.moved_at is not None):
            raise Conflict(
                "membership_not_active",
                "the membership has ended: there is nothing to move",
                "membership_id",
                details={"state": str(state)},
            )
        if opted_in and row is None:
            opens_on = anniversary(person.birth_on, move.opt_in_from_age_years)
            if age_in_years(person.birth_on, today) < move.opt_in_from_age_years:
                raise DomainError(
                    "move_opt_in_too_early",
                    f"the move can be chosen from age {move.opt_in_from_age_years} "
                    f"(from {opens_on})",
                    "opted_in",
                    details={"age": move.opt_in_from_age_years, "from_on": opens_on.isoformat()},
                )
            row = AgeOutMove(from_membership_id=membership.id, opted_in_at=now)
            session.add(row)
        elif not opted_in and row is not None:
            session.delete(row)
            row = None
        else:  # no change
            uow.commit(_view(membership, person.birth_on, move, row))
            return uow.result
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="membership_age_out_move_opt_in"
            if opted_in
            else "membership_age_out_move_opt_out",
            subject_type="membership",
            subject_id=membership.id,
            to_plan=move.to_plan,
        )
        session.flush()
        uow.commit(_view(membership, person.birth_on, move, row))
    return uow.result
