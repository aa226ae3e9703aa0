"""Builders for tests: valid identity numbers, plans, accounts, members, approved claims, period
closings."""

from __future__ import annotations

import functools
import itertools
import re
from datetime import UTC, date, datetime, timedelta

from mutualaid.clock import FixedClock
from mutualaid.db.models import Claim, Membership
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.identities import Sex, make_resident_id
from mutualaid.domain.memberships import Relation
from mutualaid.domain.plans import parse_plan_toml, rules_fingerprint
from mutualaid.domain.second_factors import needs_second_factor
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor, register_account
from mutualaid.services.accounts.second_factors import current_code, enrol_with_secret
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo.history import HEALTHY
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.enrollment.memberships import MembershipView
from mutualaid.services.periods.close import close_period
from mutualaid.services.periods.proofs import charge_proof
from mutualaid.services.plans.plans import plan_rules, publish_plan
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.transparency.charge_proofs import (
    ChargeProofReport,
    parse_charge_proof,
    verify_charge_proof,
)
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.verification import TrustPolicy

MAIN_PLAN = "xhb-main"
ELDERLY_PLAN = "xhb-elderly-cancer"
PASSWORD = "correct horse battery"
#: Every test staff account enrols this TOTP secret, so tests sign in with a computed code.
STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

_phones = itertools.count(13900000000)
_sequence = itertools.count(1)


def resident_id(birth_on: date, sex: Sex = Sex.MALE, province: str = "33") -> str:
    return make_resident_id(province, birth_on, next(_sequence) % 500, sex)


def publish_demo_plans(ctx: ServiceContext) -> None:
    for name in ("xhb-main.toml", "xhb-elderly-cancer.toml"):
        publish_plan(ctx, None, read_plan_file(name))


def account(ctx: ServiceContext, role: Role = Role.MEMBER, phone: str | None = None) -> Actor:
    view = register_account(ctx, phone or str(next(_phones)), PASSWORD, role=role)
    if needs_second_factor(view.role):
        enrol_with_secret(ctx, view.id, STAFF_TOTP_SECRET)
    return Actor(view.id, view.role)


def staff_code(ctx: ServiceContext) -> str:
    """The code a test staff member's authenticator shows at the test clock's present."""
    return current_code(STAFF_TOTP_SECRET, ctx.clock.now().timestamp())


def enroll(
    ctx: ServiceContext,
    actor: Actor,
    birth_on: date,
    *,
    relation: Relation = Relation.SELF,
    plan: str = MAIN_PLAN,
    name: str = "张三华",
    answers: dict[str, bool] | None = None,
    id_number: str | None = None,
    key: str | None = None,
    rules_sha256: str | None = "current",
) -> MembershipView:
    """Join `plan`, agreeing to its current rules (`rules_sha256`: another hash, or None for
    no consent)."""
    request = EnrollmentRequest(
        full_name=name,
        id_number=id_number or resident_id(birth_on),
        relation=relation,
        health_answers=HEALTHY if answers is None else answers,
        rules_sha256=current_rules_sha256(ctx, plan) if rules_sha256 == "current" else rules_sha256,
    )
    return enroll_member(ctx, actor, plan, request, idempotency_key=key)


def current_rules_sha256(ctx: ServiceContext, plan: str = MAIN_PLAN) -> str:
    """The hash of the plan's current rules: what a member agrees to when joining."""
    return plan_rules(ctx, plan)[0].rules_sha256


@functools.cache
def demo_rules_sha256(plan: str = MAIN_PLAN) -> str:
    """The rules hash of a demo plan as `publish_demo_plans` publishes it (what a member agrees
    to), for tests that have no context at hand."""
    return rules_fingerprint(parse_plan_toml(read_plan_file(f"{plan}.toml")))


def staff(ctx: ServiceContext, role: Role) -> Actor:
    return account(ctx, role)


def covered_member(
    ctx: ServiceContext, clock: object, birth_on: date = date(1990, 5, 1)
) -> tuple[Actor, MembershipView]:
    """A member who joined 200 days before the clock's present, so covered for the last 109 days."""
    from datetime import timedelta

    from mutualaid.clock import FixedClock

    assert isinstance(clock, FixedClock)
    holder = account(ctx)
    now = clock.now()
    clock.set(now - timedelta(days=200))
    try:
        membership = enroll(ctx, holder, birth_on)
    finally:
        clock.set(now)
    return holder, membership


#: Period of 7 March 2026: locks at 00:00 Shanghai on the 7th = 16:00 UTC on the 6th.
MARCH_7 = date(2026, 3, 7)
LOCK_MARCH_7 = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
_births = itertools.count()


def use_rules(
    ctx: ServiceContext,
    *,
    per_case_fen: int = 10**9,
    annual_fen: int = 10**9,
    fee_bp: int = 800,
    funding_model: str = "post_paid",
    retry_days: int = 5,
    tables: str = "",
) -> None:
    """Publish the demo main plan again with other money rules (a new plan version)."""
    text = read_plan_file("xhb-main.toml")
    for key, value in (
        ("per_case_fen", per_case_fen),
        ("annual_fen", annual_fen),
        ("management_fee_bp", fee_bp),
        ("payment_retry_days", retry_days),
    ):
        text, count = re.subn(rf"^{key} = [0-9_]+", f"{key} = {value}", text, flags=re.M)
        assert count == 1, key
    text = text.replace('funding_model = "post_paid"', f'funding_model = "{funding_model}"')
    publish_plan(ctx, None, text + tables)


def birth() -> date:
    return date(1980, 1, 1) + timedelta(days=next(_births) % 9000)


def join_at(
    ctx: ServiceContext,
    clock: FixedClock,
    when: datetime,
    holder: Actor | None = None,
    relation: Relation = Relation.SELF,
) -> tuple[Actor, MembershipView]:
    """Enroll a member at the instant `when` (the clock is put back afterwards)."""
    holder = holder or account(ctx)
    now = clock.now()
    clock.set(when)
    try:
        return holder, enroll(ctx, holder, birth(), relation=relation)
    finally:
        clock.set(now)


def members(
    ctx: ServiceContext,
    clock: FixedClock,
    count: int,
    when: datetime = datetime(2025, 6, 1, tzinfo=UTC),
) -> list[tuple[Actor, MembershipView]]:
    return [join_at(ctx, clock, when) for _ in range(count)]


_refs = itertools.count(1)


def approved_claim(
    ctx: ServiceContext,
    membership_id: int,
    payout_fen: int,
    approved_at: datetime,
    *,
    tier: str = "severe",
    sponsored: bool = False,
) -> str:
    """A claim that has passed publicity (built directly: the claim flow has its own tests)."""
    with ctx.sessions.begin() as session:
        m = session.get_one(Membership, membership_id)
        ref = f"claim-test-{next(_refs):06d}"
        session.add(
            Claim(
                ref=ref,
                plan_id=m.plan_id,
                plan_version=m.plan_version,
                membership_id=m.id,
                person_id=m.person_id,
                claimant_account_id=m.payer_account_id,
                illness_code="CI01",
                tier=tier,
                accident=False,
                diagnosed_on=date(2026, 1, 10),
                hospital="浙江省肿瘤医院",
                age_at_diagnosis=35,
                payout_fen=payout_fen,
                state=ClaimState.APPROVED,
                reported_at=approved_at - timedelta(days=20),
                reported_on=date(2026, 1, 20),
                publicity_on=date(2026, 2, 7),
                approved_at=approved_at,
                sponsored=sponsored,
                updated_at=approved_at,
            )
        )
    return ref


def close_on(ctx: ServiceContext, clock: FixedClock, on: date, **options: object):  # type: ignore[no-untyped-def]
    """Close the period of `on`, with the clock at 09:00 Shanghai that day."""
    clock.set(datetime(on.year, on.month, on.day, 1, 0, tzinfo=UTC))
    return close_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, on, **options)  # type: ignore[arg-type]


#: The log key of tests that publish checkpoints without witnesses (quorum 0).
TEST_LOG_KEY = generate_signer_key("mutualaid.example/log", seed=b"\x5a" * 32)
TEST_TRUST = TrustPolicy(TEST_LOG_KEY.name, TEST_LOG_KEY.verifier(), (), 0)


def proven_charge(
    ctx: ServiceContext, actor: Actor, membership_id: int, on: date, plan: str = MAIN_PLAN
) -> ChargeProofReport:
    """Publish a checkpoint (signed by TEST_LOG_KEY, no witnesses), build the member's charge
    proof, write it to its file and back, and check every link against TEST_TRUST."""
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    proof = charge_proof(ctx, actor, membership_id, plan, on)
    return verify_charge_proof(parse_charge_proof(proof.to_json()), TEST_TRUST)


def imported_member(ctx: ServiceContext, phone: str) -> str:
    """A member brought in by a CSV import (no password yet); returns the invitation code the
    operator hands them. The demo plans must be published."""
    import io

    from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
    from mutualaid.services.accounts.invitations import issue_invitations
    from mutualaid.services.enrollment.member_imports import import_members

    text = (
        "payer_phone,full_name,id_number,relation,joined_on\n"
        f"{phone},张三华,{resident_id(date(1990, 5, 1))},self,2026-01-01\n"
    )
    report = import_members(ctx, SYSTEM_ACTOR, "xhb-main", io.StringIO(text), io.StringIO())
    assert report.imported == 1
    return dict(issue_invitations(ctx))[phone]


def collected_payout(ctx: ServiceContext, clock: FixedClock, payout_fen: int = 1000) -> str:
    """An approved claim in the MARCH_7 period, closed and collected through the simulated
    provider: its payout is ready to be released. The clock is left on the debit day."""
    [ref] = collected_payouts(ctx, clock, 1, payout_fen)
    return ref


def collected_payouts(
    ctx: ServiceContext, clock: FixedClock, cases: int, payout_fen: int = 1000
) -> list[str]:
    """`cases` approved claims of the MARCH_7 period, closed and collected (simulated)."""
    from mutualaid.services.collections.debits import collect_period
    from mutualaid.services.collections.providers import SimulatedProvider

    people = members(ctx, clock, cases + 1)
    refs = [
        approved_claim(ctx, membership.id, payout_fen, LOCK_MARCH_7 - timedelta(days=1))
        for _, membership in people[:cases]
    ]
    close_on(ctx, clock, MARCH_7)
    clock.set(datetime(2026, 3, 14, 2, tzinfo=UTC))
    collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, SimulatedProvider())
    return refs
