"""A small plan that has lived (mutualaid.services.demo.history, the demo's own history) with test
accounts of each role, for tests that walk every page (in Chinese) as each role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tests.factories import TEST_LOG_KEY, account

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo.history import Cast, live_history
from mutualaid.services.transparency.checkpoints import LogConfig


@dataclass(frozen=True)
class LivedIn:
    accounts: dict[Role, Actor]
    member_membership_id: int
    paid_ref: str
    publicity_ref: str
    rejected_ref: str
    closed_on: date


def lived_in(ctx: ServiceContext, clock: FixedClock) -> LivedIn:
    staff = {role: account(ctx, role) for role in (Role.REVIEWER, Role.INVESTIGATOR, Role.OPERATOR)}
    staff[Role.AUDITOR] = account(ctx, Role.AUDITOR)
    cast = Cast(
        reviewer=staff[Role.REVIEWER],
        approver=account(ctx, Role.REVIEWER),
        investigator=staff[Role.INVESTIGATOR],
        operator=staff[Role.OPERATOR],
        member=account(ctx),
        neighbour=account(ctx),
        disputer=account(ctx),
    )
    history = live_history(ctx, clock, cast, LogConfig(TEST_LOG_KEY))
    return LivedIn(
        {Role.MEMBER: cast.member, **staff},
        history.member_membership_id,
        history.paid_ref,
        history.publicity_ref,
        history.rejected_ref,
        history.closed_on,
    )
