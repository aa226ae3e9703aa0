"""Builders for tests: valid identity numbers, plans, accounts and members."""

from __future__ import annotations

import itertools
from datetime import date

from mutualaid.domain.accounts import Role
from mutualaid.domain.identities import Sex, make_resident_id
from mutualaid.domain.memberships import Relation
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts import Actor, register_account
from mutualaid.services.context import ServiceContext
from mutualaid.services.memberships import EnrollmentRequest, MembershipView, enroll_member
from mutualaid.services.plans import publish_plan

MAIN_PLAN = "xhb-main"
ELDERLY_PLAN = "xhb-elderly-cancer"
PASSWORD = "correct horse battery"
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
    return Actor(view.id, view.role)


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


def imported_member(ctx: ServiceContext, phone: str) -> str:
    """A member brought in by a CSV import (no password yet); returns the invitation code the
    operator hands them. The demo plans must be published."""
    import io

    from mutualaid.services.accounts import SYSTEM_ACTOR
    from mutualaid.services.invitations import issue_invitations
    from mutualaid.services.member_imports import import_members

    text = (
        "payer_phone,full_name,id_number,relation,joined_on\n"
        f"{phone},张三华,{resident_id(date(1990, 5, 1))},self,2026-01-01\n"
    )
    report = import_members(ctx, SYSTEM_ACTOR, "xhb-main", io.StringIO(text), io.StringIO())
    assert report.imported == 1
    return dict(issue_invitations(ctx))[phone]
