"""Publishing plan rules (a new version each time they change) and reading plans."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select

from mutualaid.db.models import Membership, Plan, PlanVersion
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import NotFound
from mutualaid.domain.memberships import ACTIVE_STATES
from mutualaid.domain.plans import PlanRules, parse_plan_toml, rules_fingerprint
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.transparency.log import queue_leaf


@dataclass(frozen=True, slots=True)
class PlanView:
    code: str
    name_zh: str
    name_en: str
    version: int
    status: str
    rules_sha256: str


@dataclass(frozen=True, slots=True)
class PublishedPlan:
    plan: PlanView
    created_version: bool


def publish_plan(ctx: ServiceContext, actor: Actor | None, source_toml: str) -> PublishedPlan:
    """Store a plan file as the plan's newest version (unchanged rules create no new version).

    `actor` None means the system itself (the demo loader, a migration).
    """
    if actor is not None:
        require_role(actor.role, Role.OPERATOR)
    rules = parse_plan_toml(source_toml)
    sha256 = rules_fingerprint(rules)
    now = ctx.clock.now()
    uow: UnitOfWork[PublishedPlan] = ctx.unit_of_work()
    with uow:
        session = uow.session
        plan = session.scalar(select(Plan).where(Plan.code == rules.code).with_for_update())
        if plan is None:
            plan = Plan(
                code=rules.code,
                name_zh=rules.name_zh,
                name_en=rules.name_en,
                current_version=0,
                status="open",
                created_at=now,
            )
            session.add(plan)
            session.flush()
        else:
            current_sha = session.scalar(
                select(PlanVersion.rules_sha256).where(
                    PlanVersion.plan_id == plan.id, PlanVersion.version == plan.current_version
                )
            )
            if current_sha == sha256:  # unchanged rules: nothing to write
                return PublishedPlan(_view(plan, sha256), created_version=False)
        plan.current_version += 1
        plan.name_zh, plan.name_en = rules.name_zh, rules.name_en
        session.add(
            PlanVersion(
                plan_id=plan.id,
                version=plan.current_version,
                source_toml=source_toml,
                rules=rules.to_json(),
                rules_sha256=sha256,
                created_at=now,
                created_by=actor.recorded_id if actor else None,
            )
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id if actor else None,
            action="plan_version_published",
            subject_type="plan",
            subject_id=plan.id,
            version=plan.current_version,
            rules_sha256=sha256,
        )
        # Issue 14: the version on the log, naming the exact file by its SHA-256 (served at
        # GET /api/v1/plan-files/<sha256>), so anyone can check which rules were in force.
        queue_leaf(
            session,
            at=now,
            leaf_type="plan_version",
            fields={
                "plan_ref": plan.code,
                "version": plan.current_version,
                "rules_sha256": plan_file_sha256(source_toml),
                "effective_on": local_date(now, rules.zone).isoformat(),
            },
            subject_type="plan",
            subject_ref=plan.code,
        )
        uow.commit(PublishedPlan(_view(plan, sha256), created_version=True))
    return uow.result


def plan_file_sha256(source_toml: str) -> str:
    """The SHA-256 of a plan file's exact bytes (UTF-8), as its plan_version leaf names it."""
    return hashlib.sha256(source_toml.encode("utf-8")).hexdigest()


def plan_file(ctx: ServiceContext, sha256: str) -> bytes:
    """The exact bytes of the plan file whose SHA-256 is `sha256` (any plan, any version)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound("plan_file_not_found", f"there is no plan file {sha256}", "sha256")
    with ctx.reading(replica=True) as session:
        # Plan versions are few (tens): hashing them all beats a column to keep in step.
        for source in session.scalars(select(PlanVersion.source_toml).order_by(PlanVersion.id)):
            data = source.encode("utf-8")
            if hashlib.sha256(data).hexdigest() == sha256:
                return data
    raise NotFound("plan_file_not_found", f"there is no plan file {sha256}", "sha256")


def _view(plan: Plan, sha256: str) -> PlanView:
    return PlanView(
        code=plan.code,
        name_zh=plan.name_zh,
        name_en=plan.name_en,
        version=plan.current_version,
        status=plan.status,
        rules_sha256=sha256,
    )


@dataclass(frozen=True, slots=True)
class PlanSummary:
    plan: PlanView
    active_members: int


def list_plans(ctx: ServiceContext) -> list[PlanSummary]:
    with ctx.reading(replica=True) as session:
        counts = dict(
            session.execute(
                select(Membership.plan_id, func.count())
                .where(Membership.state.in_([str(s) for s in ACTIVE_STATES]))
                .group_by(Membership.plan_id)
            ).all()
        )
        rows = session.execute(
            select(Plan, PlanVersion.rules_sha256)
            .join(
                PlanVersion,
                (PlanVersion.plan_id == Plan.id) & (PlanVersion.version == Plan.current_version),
            )
            .order_by(Plan.code)
        ).all()
        return [PlanSummary(_view(plan, sha), counts.get(plan.id, 0)) for plan, sha in rows]


def plan_names(ctx: ServiceContext) -> dict[str, tuple[str, str]]:
    """Each plan's names (zh, en) by its code: pages name a plan, never show its code alone."""
    with ctx.reading() as session:
        rows = session.execute(select(Plan.code, Plan.name_zh, Plan.name_en)).all()
        return {code: (name_zh, name_en) for code, name_zh, name_en in rows}


def plan_rules(ctx: ServiceContext, code: str) -> tuple[PlanView, PlanRules]:
    with ctx.reading(replica=True) as session:
        plan = plan_by_code(session, code)
        rules = current_rules(session, plan)
        sha = session.scalars(
            select(PlanVersion.rules_sha256).where(
                PlanVersion.plan_id == plan.id, PlanVersion.version == plan.current_version
            )
        ).one()
        return _view(plan, sha), rules


def plan_source(ctx: ServiceContext, code: str, version: int | None = None) -> str:
    with ctx.reading(replica=True) as session:
        plan = plan_by_code(session, code)
        wanted = version or plan.current_version
        source = session.scalar(
            select(PlanVersion.source_toml).where(
                PlanVersion.plan_id == plan.id, PlanVersion.version == wanted
            )
        )
        if source is None:
            raise NotFound(
                "plan_version_not_found",
                f"plan {code} has versions 1 to {plan.current_version}, not {wanted}",
                "version",
            )
        return source
