"""Publishing plan rules (a new version each time they change) and reading plans."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from mutualaid.db.models import Membership, Plan, PlanVersion
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.errors import NotFound
from mutualaid.domain.memberships import ACTIVE_STATES
from mutualaid.domain.plans import PlanRules, parse_plan_toml, rules_fingerprint
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork


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
        uow.commit(PublishedPlan(_view(plan, sha256), created_version=True))
    return uow.result


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
    with ctx.reading() as session:
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


def plan_rules(ctx: ServiceContext, code: str) -> tuple[PlanView, PlanRules]:
    with ctx.reading() as session:
        plan = plan_by_code(session, code)
        rules = current_rules(session, plan)
        sha = session.scalars(
            select(PlanVersion.rules_sha256).where(
                PlanVersion.plan_id == plan.id, PlanVersion.version == plan.current_version
            )
        ).one()
        return _view(plan, sha), rules


def plan_source(ctx: ServiceContext, code: str, version: int | None = None) -> str:
    with ctx.reading() as session:
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
