"""Security #13 finding 1: an imported account is bound only with the invitation from its import."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from tests.factories import PASSWORD, publish_demo_plans, resident_id

from mutualaid.clock import FixedClock
from mutualaid.domain.errors import DomainError
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, log_in, register_account
from mutualaid.services.accounts.invitations import issue_invitations
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.member_imports import import_members

PHONE = "13900000002"


@pytest.fixture(autouse=True)
def imported(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)
    text = (
        "payer_phone,full_name,id_number,relation,joined_on\n"
        f"{PHONE},张三华,{resident_id(date(1990, 5, 1))},self,2026-01-01\n"
    )
    import_members(ctx, SYSTEM_ACTOR, "xhb-main", io.StringIO(text), io.StringIO())


def refused_code(ctx: ServiceContext, invitation: str | None) -> str:
    with pytest.raises(DomainError) as refused:
        register_account(ctx, PHONE, PASSWORD, invitation=invitation)
    return refused.value.code


def test_registering_an_imported_phone_without_the_invitation_is_refused(
    ctx: ServiceContext,
) -> None:
    issue_invitations(ctx)
    assert refused_code(ctx, None) == "invitation_required"
    assert refused_code(ctx, "not-the-code") == "invitation_invalid"
    with pytest.raises(DomainError):
        log_in(ctx, PHONE, PASSWORD)


def test_the_invitation_binds_the_account_once(ctx: ServiceContext) -> None:
    [(phone, code)] = issue_invitations(ctx)
    assert phone == PHONE
    assert register_account(ctx, PHONE, PASSWORD, invitation=code).phone == PHONE
    assert log_in(ctx, PHONE, PASSWORD).account.phone == PHONE
    assert issue_invitations(ctx) == []  # a bound account gets no new invitation


def test_an_expired_invitation_is_refused(ctx: ServiceContext, clock: FixedClock) -> None:
    [(_, code)] = issue_invitations(ctx)
    clock.advance(timedelta(days=31))
    assert refused_code(ctx, code) == "invitation_expired"


def test_guessing_the_invitation_voids_it(ctx: ServiceContext) -> None:
    [(_, code)] = issue_invitations(ctx)
    for _ in range(5):
        assert refused_code(ctx, "guess-guess") == "invitation_invalid"
    assert refused_code(ctx, code) == "invitation_locked"
