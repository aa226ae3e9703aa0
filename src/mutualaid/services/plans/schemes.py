"""Sponsored schemes and promotional sponsorship: attach, list, and what filing and closing ask.

A scheme (e.g. COVID-19 cover) is attached to a plan from a TOML file; a member files a claim under
it by its code (`ClaimReport.scheme_code`), the claim is decided like any other and is paid from
the sponsor account (`Claim.sponsored`), never apportioned. A sponsorship makes the sponsor pay
every share (or what the caps remove) of the periods in a range of publicity days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import Plan, PlanSponsorship, PlanWindDown, SponsoredScheme
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.schemes import (
    PeriodSponsorship,
    PlanStatus,
    SchemeClaim,
    SchemeRules,
    Sponsorship,
    SponsorshipKind,
    attach_refusal,
    filing_closed,
    parse_scheme,
    parse_scheme_toml,
    period_sponsorship,
    scheme_refusal,
    sponsor_pays_new_claims,
    sponsorship_refusal,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once, UnitOfWork


@dataclass(frozen=True, slots=True)
class SchemeView:
    plan_code: str
    code: str
    name_zh: str
    name_en: str
    starts_on: date
    ends_on: date | None
    illness_code: str
    payout_fen: int
    new_member_min_days: int
    rules_sha256: str


def _scheme_view(plan_code: str, scheme: SchemeRules, sha256: str) -> SchemeView:
    return SchemeView(
        plan_code,
        scheme.code,
        scheme.name_zh,
        scheme.name_en,
        scheme.starts_on,
        scheme.ends_on,
        scheme.illness_code,
        scheme.payout_fen,
        scheme.new_member_min_days,
        sha256,
    )


def attach_scheme(
    ctx: ServiceContext, actor: Actor, plan_code: str, source_toml: str
) -> SchemeView:
    """Attach a sponsored scheme to a plan. Attaching the same file again changes nothing; a
    different file under a code already used is refused (a scheme's terms never change)."""
    require_role(actor.role, Role.OPERATOR)
    scheme = parse_scheme_toml(source_toml)
    sha256 = scheme.fingerprint()
    uow: UnitOfWork[SchemeView] = ctx.unit_of_work()
    with uow:
        session = uow.session
        plan = plan_by_code(session, plan_code, for_update=True)
        refused = attach_refusal(plan.status)
        if refused:
            raise Conflict(*refused)
        existing = session.scalar(
            select(SponsoredScheme).where(
                SponsoredScheme.plan_id == plan.id, SponsoredScheme.code == scheme.code
            )
        )
        if existing is not None:
            if existing.rules_sha256 != sha256:
                raise Conflict(
                    "scheme_exists",
                    f"scheme {scheme.code} is attached with other terms; use a new code",
                    "code",
                )
            return _scheme_view(plan.code, scheme, sha256)  # attached already: nothing to write
        now = ctx.clock.now()
        row = SponsoredScheme(
            plan_id=plan.id,
            code=scheme.code,
            rules=scheme.to_json(),
            rules_sha256=sha256,
            attached_at=now,
            attached_by=actor.recorded_id,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="scheme_attached",
            subject_type="plan",
            subject_id=plan.id,
            scheme=scheme.code,
            rules_sha256=sha256,
            payout_fen=scheme.payout_fen,
        )
        uow.commit(_scheme_view(plan.code, scheme, sha256))
    return uow.result


def list_schemes(ctx: ServiceContext, plan_code: str) -> list[SchemeView]:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.scalars(
            select(SponsoredScheme)
            .where(SponsoredScheme.plan_id == plan.id)
            .order_by(SponsoredScheme.id)
        )
        return [_scheme_view(plan.code, parse_scheme(r.rules), r.rules_sha256) for r in rows]


# --- what filing a claim asks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilingTerms:
    """What a claim filed under a scheme is: the scheme's event, tier and payout, sponsor-paid."""

    scheme_id: int
    illness_code: str
    tier: str
    payout_fen: int


def scheme_terms(session: Session, plan: Plan, scheme_code: str, claim: SchemeClaim) -> FilingTerms:
    """The terms of a claim filed under `scheme_code`; refuses it with the scheme's reason."""
    refused = filing_closed(plan.status)
    row = session.scalar(
        select(SponsoredScheme).where(
            SponsoredScheme.plan_id == plan.id, SponsoredScheme.code == scheme_code
        )
    )
    if row is None:
        raise NotFound(
            "scheme_not_found", f"plan {plan.code} has no scheme {scheme_code!r}", "scheme_code"
        )
    scheme = parse_scheme(row.rules)
    refused = refused or scheme_refusal(scheme, claim)
    if refused:
        code, message, field = refused
        raise (Conflict if code == "duplicate_open_claim" else DomainError)(code, message, field)
    return FilingTerms(row.id, scheme.illness_code, scheme.tier, scheme.payout_fen)


def plan_claim_sponsored(session: Session, plan: Plan) -> bool:
    """Whether a claim for the plan's own cover, filed now, is paid by the sponsor (run-off, or
    a wind-down whose rule stops the shares); refuses filing once the plan has closed."""
    refused = filing_closed(plan.status)
    if refused:
        raise DomainError(*refused)
    if plan.status == PlanStatus.OPEN:
        return False
    rule = session.scalar(select(PlanWindDown.rule).where(PlanWindDown.plan_id == plan.id))
    return sponsor_pays_new_claims(plan.status, rule or "")


# --- promotional sponsorship of periods ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SponsorshipView:
    id: int
    plan_code: str
    kind: SponsorshipKind
    from_on: date
    to_on: date
    memo: str


def sponsor_periods(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    kind: str,
    from_on: date,
    to_on: date,
    memo: str = "",
    *,
    idempotency_key: str | None = None,
) -> SponsorshipView:
    """The sponsor promises to pay the shares (kind "period") or the cap excess ("cap_excess")
    of every period whose publicity day is in [from_on, to_on]. Periods already locked keep the
    terms they were locked with."""
    require_role(actor.role, Role.OPERATOR)
    refused = sponsorship_refusal(kind, from_on, to_on)
    if refused:
        raise DomainError(*refused)
    request = {"kind": kind, "from_on": from_on, "to_on": to_on, "memo": memo}
    once = Once(actor.account_id, idempotency_key, f"sponsor:{plan_code}", request, SponsorshipView)
    uow: UnitOfWork[SponsorshipView] = ctx.unit_of_work(once)
    with uow:
        session = uow.session
        plan = plan_by_code(session, plan_code)
        now = ctx.clock.now()
        row = PlanSponsorship(
            plan_id=plan.id,
            kind=kind,
            from_on=from_on,
            to_on=to_on,
            memo=memo.strip()[:500],
            created_at=now,
            created_by=actor.recorded_id,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="periods_sponsored",
            subject_type="plan",
            subject_id=plan.id,
            kind=kind,
            from_on=from_on.isoformat(),
            to_on=to_on.isoformat(),
        )
        uow.commit(
            SponsorshipView(row.id, plan.code, SponsorshipKind(kind), from_on, to_on, row.memo)
        )
    return uow.result


def list_sponsorships(ctx: ServiceContext, plan_code: str) -> list[SponsorshipView]:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.scalars(
            select(PlanSponsorship)
            .where(PlanSponsorship.plan_id == plan.id)
            .order_by(PlanSponsorship.from_on, PlanSponsorship.id)
        )
        return [
            SponsorshipView(r.id, plan.code, SponsorshipKind(r.kind), r.from_on, r.to_on, r.memo)
            for r in rows
        ]


def sponsorship_of_period(session: Session, plan_id: int, publicity_on: date) -> PeriodSponsorship:
    """What the sponsor promised for the period of `publicity_on` (read when it is locked)."""
    rows = session.execute(
        select(PlanSponsorship.kind, PlanSponsorship.from_on, PlanSponsorship.to_on).where(
            PlanSponsorship.plan_id == plan_id,
            PlanSponsorship.from_on <= publicity_on,
            PlanSponsorship.to_on >= publicity_on,
        )
    ).all()
    return period_sponsorship(
        [Sponsorship(SponsorshipKind(k), f, t) for k, f, t in rows], publicity_on
    )
