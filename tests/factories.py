"""Builders for tests: valid identity numbers, plans, accounts and members."""

from __future__ import annotations

import itertools
from datetime import date

from mutualaid.domain.accounts import Role
from mutualaid.domain.identities import Sex, make_resident_id
from mutualaid.domain.memberships import Relation
from mutualaid.domain.second_factors import needs_second_factor
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts import Actor, register_account
from mutualaid.services.context import ServiceContext
from mutualaid.services.memberships import EnrollmentRequest, MembershipView, enroll_member
from mutualaid.services.plans import publish_plan
from mutualaid.services.second_factors import current_code, enrol_with_secret

MAIN_PLAN = "xhb-main"
ELDERLY_PLAN = "xhb-elderly-cancer"
PASSWORD = "correct horse battery"
#: Every test staff account enrols this TOTP secret, so tests sign in with a computed code.
STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
HEALTHY = {
    "long_medication": False,
    "long_hospital_stay": False,
    "tumour": False,
    "heart_disease": False,
    "diabetes": False,
}

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
) -> MembershipView:
    request = EnrollmentRequest(
        full_name=name,
        id_number=id_number or resident_id(birth_on),
        relation=relation,
        health_answers=HEALTHY if answers is None else answers,
    )
    return enroll_member(ctx, actor, plan, request, idempotency_key=key)


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
