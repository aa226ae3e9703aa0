"""The demo: the shipped plans, one account per role, a member with family, and a crowd."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from mutualaid.db.models import Account
from mutualaid.domain.accounts import Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import PROVINCES, Sex, make_resident_id
from mutualaid.domain.memberships import Relation
from mutualaid.plan_files import DEMO_PLAN_FILES, read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor, register_account
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.enrollment.member_imports import import_members
from mutualaid.services.plans.plans import plan_rules, publish_plan

DEMO_MEMBER_PHONE = "13800138000"
DEMO_PASSWORD = "mutualaid-demo"
DEMO_STAFF = {
    Role.OPERATOR: "10000000001",
    Role.REVIEWER: "10000000002",
    Role.INVESTIGATOR: "10000000003",
    Role.AUDITOR: "10000000004",
}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华"


@dataclass(frozen=True, slots=True)
class DemoLogins:
    member_phone: str
    staff: dict[str, str]
    password: str
    created: bool


def random_member_rows(count: int, today: date, seed: int = 2018) -> list[dict[str, str]]:
    """Plausible members (valid ID numbers, families of one to three) for demos and benchmarks."""
    rng = random.Random(seed)
    provinces = [code for code in PROVINCES if code < "70"]
    rows: list[dict[str, str]] = []
    serial = 0
    while len(rows) < count:
        serial += 1
        phone = f"139{serial:08d}"
        family = rng.choice((1, 1, 2, 3))
        for position in range(min(family, count - len(rows))):
            if position == 0:
                relation, age = "self", rng.randint(18, 58)
            elif position == 1:
                relation, age = "spouse", rng.randint(18, 58)
            else:
                relation, age = "child", rng.randint(1, 17)
            born = today - timedelta(days=age * 365 + rng.randint(0, 364))
            sex = rng.choice((Sex.MALE, Sex.FEMALE))
            rows.append(
                {
                    "payer_phone": phone,
                    "full_name": rng.choice(_SURNAMES)
                    + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2)))),
                    "id_number": make_resident_id(
                        rng.choice(provinces), born, (serial * 7 + position) % 500, sex
                    ),
                    "relation": relation,
                    "joined_on": (today - timedelta(days=rng.randint(0, 360))).isoformat(),
                }
            )
    return rows


def seed_demo(ctx: ServiceContext, crowd: int = 300) -> DemoLogins:
    """Load the demo once (running it again changes nothing)."""
    staff = {str(role): phone for role, phone in DEMO_STAFF.items()}
    with ctx.reading() as session:
        if session.scalar(select(Account.id).where(Account.phone == DEMO_MEMBER_PHONE)) is not None:
            return DemoLogins(DEMO_MEMBER_PHONE, staff, DEMO_PASSWORD, created=False)
        # Never plant staff with a published password among real accounts.
        if session.scalar(select(Account.id).limit(1)) is not None:
            raise DomainError(
                "database_not_demo",
                "this database holds accounts and no demo; run the demo on an empty database",
                "MUTUALAID_DATABASE_URL",
            )
    for name in DEMO_PLAN_FILES:
        publish_plan(ctx, SYSTEM_ACTOR, read_plan_file(name))
    for role, phone in DEMO_STAFF.items():
        register_account(ctx, phone, DEMO_PASSWORD, role=role, display_name=f"demo {role}")
    member = register_account(ctx, DEMO_MEMBER_PHONE, DEMO_PASSWORD, display_name="张三华")
    actor = Actor(member.id, Role.MEMBER)
    today = local_date(ctx.clock.now(), plan_rules(ctx, "xhb-main")[1].zone)
    no = {
        "long_medication": False,
        "long_hospital_stay": False,
        "tumour": False,
        "heart_disease": False,
        "diabetes": False,
    }
    enroll_member(
        ctx,
        actor,
        "xhb-main",
        EnrollmentRequest(
            "张三华",
            make_resident_id("33", today.replace(year=today.year - 34), 11, Sex.MALE),
            Relation.SELF,
            no,
        ),
    )
    enroll_member(
        ctx,
        actor,
        "xhb-main",
        EnrollmentRequest(
            "张小雨",
            make_resident_id("33", today - timedelta(days=3 * 365), 12, Sex.FEMALE),
            Relation.CHILD,
            no,
        ),
    )
    if crowd:
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, ["payer_phone", "full_name", "id_number", "relation", "joined_on"]
        )
        writer.writeheader()
        writer.writerows(random_member_rows(crowd, today))
        buffer.seek(0)
        import_members(ctx, SYSTEM_ACTOR, "xhb-main", buffer, io.StringIO())
    return DemoLogins(DEMO_MEMBER_PHONE, staff, DEMO_PASSWORD, created=True)
