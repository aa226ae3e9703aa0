"""Reading plans and their rules. A stored version never changes, so parsed rules are cached by hash."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from mutualaid.db.models import Plan, PlanVersion
from mutualaid.domain.errors import NotFound
from mutualaid.domain.plans import PlanRules, parse_plan_rules

_rules_by_sha256: dict[str, PlanRules] = {}


def plan_by_code(session: Session, code: str, *, for_update: bool = False) -> Plan:
    query = select(Plan).where(Plan.code == code)
    if for_update:
        query = query.with_for_update()
    plan = session.scalar(query)
    if plan is None:
        raise NotFound("plan_not_found", f"there is no plan {code!r}", "plan_code")
    return plan


def rules_of(session: Session | Connection, plan_id: int, version: int) -> PlanRules:
    where = (PlanVersion.plan_id == plan_id, PlanVersion.version == version)
    sha256 = session.scalar(select(PlanVersion.rules_sha256).where(*where))
    if sha256 is None:
        raise NotFound("plan_version_not_found", f"plan {plan_id} has no version {version}")
    rules = _rules_by_sha256.get(sha256)
    if rules is None:
        rules = parse_plan_rules(session.scalars(select(PlanVersion.rules).where(*where)).one())
        _rules_by_sha256[sha256] = rules
    return rules


@dataclass(frozen=True, slots=True)
class PlanHead:
    """What a hot path needs of a plan row, read without the ORM."""

    id: int
    code: str
    status: str
    current_version: int


def cached_rules(sha256: str) -> PlanRules | None:
    """The rules of a version whose hash the caller knows, if this process has read them."""
    return _rules_by_sha256.get(sha256)


def known_rules(
    session: Session | Connection, sha256: str, plan_id: int, version: int
) -> PlanRules:
    """The rules of a version whose hash the caller has already read: no query once cached."""
    rules = _rules_by_sha256.get(sha256)
    return rules if rules is not None else rules_of(session, plan_id, version)


def current_rules(session: Session, plan: Plan) -> PlanRules:
    return rules_of(session, plan.id, plan.current_version)
