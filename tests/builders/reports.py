"""Builders for reports: a small population of members, claims, juries and periods to report on."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from tests.factories import account, enroll, publish_demo_plans, resident_id

from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    Claim,
    ClaimEventRow,
    CollectionFailure,
    InvestigationReport,
    Membership,
    Objection,
    Period,
)
from mutualaid.db.models import Plan as PlanRow
from mutualaid.domain.accounts import Role
from mutualaid.domain.identities import Sex
from mutualaid.services.context import ServiceContext

_refs = itertools.count(1)


def at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@dataclass
class Plan:
    memberships: list[int]


def join(
    ctx: ServiceContext,
    clock: FixedClock,
    when: datetime,
    born: date,
    sex: Sex = Sex.MALE,
    province: str = "33",
) -> int:
    now = clock.now()
    clock.set(when)
    try:
        return enroll(ctx, account(ctx), born, id_number=resident_id(born, sex, province)).id
    finally:
        clock.set(now)


def claim(
    ctx: ServiceContext,
    membership_id: int,
    *,
    illness: str = "CI01",
    age: int = 35,
    state: str = "approved",
    payout_fen: int = 30_000_000,
    reported: datetime,
    decided: datetime | None = None,
) -> int:
    with ctx.sessions.begin() as session:
        m = session.get_one(Membership, membership_id)
        row = Claim(
            ref=f"claim-report-{next(_refs):06d}",
            plan_id=m.plan_id,
            plan_version=m.plan_version,
            membership_id=m.id,
            person_id=m.person_id,
            claimant_account_id=m.payer_account_id,
            illness_code=illness,
            tier="mild" if illness.startswith("MI") else "severe",
            accident=False,
            diagnosed_on=reported.date() - timedelta(days=5),
            hospital="医院",
            age_at_diagnosis=age,
            payout_fen=payout_fen,
            state=state,
            reported_at=reported,
            reported_on=reported.date(),
            decided_at=decided,
            updated_at=reported,
        )
        session.add(row)
        session.flush()
        return row.id


def event(
    ctx: ServiceContext,
    claim_id: int,
    when: datetime,
    name: str,
    from_state: str | None,
    to_state: str,
) -> None:
    with ctx.sessions.begin() as session:
        session.add(
            ClaimEventRow(
                claim_id=claim_id, at=when, event=name, from_state=from_state, to_state=to_state
            )
        )


def period(
    ctx: ServiceContext, on: date, *, members: int, share_fen: int, aid_fen: int, fee_fen: int
) -> int:
    with ctx.sessions.begin() as session:
        plan_id = session.scalars(select(PlanRow.id).where(PlanRow.code == "xhb-main")).one()
        row = Period(
            ref=f"xhb-main/{on}",
            plan_id=plan_id,
            plan_version=1,
            publicity_on=on,
            debit_on=on + timedelta(days=7),
            lock_at=at(str(on), 0) - timedelta(hours=8),
            state="paid",
            cap_excess="sponsor",
            fee_bp=800,
            payment_retry_days=5,
            member_count=members,
            case_count=1,
            aid_fen=aid_fen,
            fee_fen=fee_fen,
            share_fen=share_fen,
            total_charged_fen=share_fen * members,
            sponsor_fen=0,
            locked_at=at(str(on), 0),
        )
        session.add(row)
        session.flush()
        return row.id


def end(ctx: ServiceContext, membership_id: int, when: datetime, state: str, reason: str) -> None:
    with ctx.sessions.begin() as session:
        m = session.get_one(Membership, membership_id)
        m.state, m.ended_at, m.end_reason = state, when, reason


def build_population(ctx: ServiceContext, clock: FixedClock) -> Plan:
    """Six members (one in Dec 2025, three in Jan, two in Feb 2026), two of whom go in February;
    claims, objections, juries and investigations around them."""
    publish_demo_plans(ctx)
    ids = [
        join(ctx, clock, at("2025-12-05"), date(1990, 5, 1), province="33"),
        join(ctx, clock, at("2026-01-10"), date(1991, 5, 1), province="33"),
        join(ctx, clock, at("2026-01-10"), date(1978, 5, 1), Sex.FEMALE, province="11"),
        join(ctx, clock, at("2026-01-11"), date(2000, 5, 1), province="11"),
        join(ctx, clock, at("2026-02-05"), date(1970, 5, 1), Sex.FEMALE, province="44"),
        join(ctx, clock, at("2026-02-05"), date(2010, 5, 1), province="44"),
    ]
    # 17:00 UTC on 31 January is 01:00 on 1 February in Shanghai: a February leaver.
    end(ctx, ids[1], datetime(2026, 1, 31, 17, tzinfo=UTC), "left", "left")
    end(ctx, ids[3], at("2026-02-25"), "ended", "aged_out")

    c1 = claim(ctx, ids[0], state="paid", reported=at("2026-01-15"), decided=at("2026-01-20"))
    c2 = claim(
        ctx,
        ids[1],
        age=45,
        state="closed_rejected",
        payout_fen=10_000_000,
        reported=at("2026-01-16"),
        decided=at("2026-01-26"),
    )
    c3 = claim(
        ctx,
        ids[2],
        illness="MI01",
        age=38,
        payout_fen=5_000_000,
        reported=at("2026-02-01"),
        decided=at("2026-02-03", 14),
    )
    claim(ctx, ids[3], age=52, state="submitted", reported=at("2026-02-10"))
    c7 = claim(ctx, ids[4], reported=at("2025-12-10"), decided=at("2025-12-28"))
    c8 = claim(ctx, ids[5], reported=at("2025-12-20"), decided=at("2026-01-05"))

    event(ctx, c1, at("2026-01-22"), "publish", "approval_proposed", "in_publicity")
    event(ctx, c3, at("2026-02-04"), "publish", "approval_proposed", "in_publicity")
    event(ctx, c7, at("2026-01-07"), "publish", "approval_proposed", "in_publicity")
    # c2: rejected, disputed, the jury agrees with the rejection.
    event(ctx, c2, at("2026-01-26"), "reject", "re_review", "rejected")
    event(ctx, c2, at("2026-01-27"), "dispute", "rejected", "jury_voting")
    event(ctx, c2, at("2026-02-02"), "jury_rejects", "jury_voting", "closed_rejected")
    # c8: rejected, disputed, the jury approves: an overturn.
    event(ctx, c8, at("2026-01-05"), "reject", "re_review", "rejected")
    event(ctx, c8, at("2026-01-06"), "dispute", "rejected", "jury_voting")
    event(ctx, c8, at("2026-02-06"), "jury_approves", "jury_voting", "approved")
    # c3: a reviewer asked the jury, too few voted.
    event(ctx, c3, at("2026-02-02"), "refer_to_jury", "re_review", "jury_voting")
    event(ctx, c3, at("2026-02-03"), "jury_inconclusive", "jury_voting", "re_review")

    objectors = [account(ctx).account_id for _ in range(3)]
    with ctx.sessions.begin() as session:
        for claim_id, who, state, when in (
            (c3, objectors[0], "upheld", at("2026-02-05")),
            (c3, objectors[1], "dismissed", at("2026-02-05")),
            (c1, objectors[2], "pending", at("2026-01-23")),
            (c7, objectors[0], "dismissed", at("2025-12-29")),
        ):
            session.add(
                Objection(
                    claim_id=claim_id,
                    objector_account_id=who,
                    reason="有疑问",
                    state=state,
                    filed_at=when,
                )
            )
        investigator = account(ctx, Role.INVESTIGATOR).account_id
        for claim_id, cost, when in (
            (c1, 20_000, at("2026-01-17")),
            (c1, 5_000, at("2026-01-18")),
            (c2, 0, at("2026-01-20")),
            (c3, 12_345, at("2026-02-02")),
            (c8, 99_999, at("2025-12-22")),
        ):
            session.add(
                InvestigationReport(
                    claim_id=claim_id,
                    investigator_id=investigator,
                    findings="核实",
                    recommendation="approve",
                    cost_fen=cost,
                    filed_at=when,
                )
            )
    period(ctx, date(2025, 11, 21), members=2_390, share_fen=0, aid_fen=0, fee_fen=0)
    period(ctx, date(2025, 12, 21), members=1, share_fen=100, aid_fen=90, fee_fen=7)
    period(ctx, date(2026, 1, 7), members=4, share_fen=810, aid_fen=3_000, fee_fen=240)
    feb = period(ctx, date(2026, 2, 7), members=5, share_fen=2_160, aid_fen=10_000, fee_fen=800)
    with ctx.sessions.begin() as session:
        m = session.get_one(Membership, ids[4])
        session.add(
            CollectionFailure(
                period_id=feb,
                membership_id=ids[4],
                payer_account_id=m.payer_account_id,
                amount_fen=2_160,
                status="retrying",
                attempts=1,
                retry_until_on=date(2026, 2, 19),
                first_failed_at=at("2026-02-14"),
                last_attempt_at=at("2026-02-14"),
                suspended_at=at("2026-02-14"),
            )
        )
    return Plan(ids)
