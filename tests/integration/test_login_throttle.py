"""Security #13 finding 9: wrong passwords from elsewhere must not lock an account out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.factories import PASSWORD, account

from mutualaid.clock import FixedClock
from mutualaid.domain.errors import DomainError, Unauthenticated
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.accounts.login_throttle import ThrottlePolicy, throttled_log_in
from mutualaid.services.context import ServiceContext

ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"


def phone_of(ctx: ServiceContext, actor: Actor) -> str:
    from mutualaid.db.models import Account

    with ctx.reading() as session:
        found = session.get(Account, actor.account_id)
        assert found is not None
        return found.phone


def guess(ctx: ServiceContext, phone: str, address: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Unauthenticated):
            throttled_log_in(ctx, phone, "wrong guess!!", address)


def test_wrong_passwords_from_another_address_do_not_lock_the_owner_out(
    ctx: ServiceContext,
) -> None:
    phone = phone_of(ctx, account(ctx))
    guess(ctx, phone, ATTACKER, 5)
    with pytest.raises(DomainError) as locked:
        throttled_log_in(ctx, phone, PASSWORD, ATTACKER)
    assert locked.value.code == "too_many_attempts"

    assert throttled_log_in(ctx, phone, PASSWORD, OWNER).token


def test_the_lock_backs_off_and_says_when_to_retry(ctx: ServiceContext, clock: FixedClock) -> None:
    phone = phone_of(ctx, account(ctx))
    guess(ctx, phone, ATTACKER, 5)
    with pytest.raises(DomainError) as first:
        throttled_log_in(ctx, phone, PASSWORD, ATTACKER)
    first_wait = first.value.details["retry_after_s"]
    assert 0 < first_wait <= 15 * 60
    clock.advance(timedelta(seconds=first_wait))
    guess(ctx, phone, ATTACKER, 1)
    with pytest.raises(DomainError) as second:
        throttled_log_in(ctx, phone, PASSWORD, ATTACKER)
    assert second.value.code == "too_many_attempts"
    assert second.value.details["retry_after_s"] > first_wait


def test_one_address_trying_many_phones_is_limited(ctx: ServiceContext) -> None:
    policy = ThrottlePolicy(per_address=3)
    phones = [phone_of(ctx, account(ctx)) for _ in range(4)]
    for phone in phones[:3]:
        with pytest.raises(Unauthenticated):
            throttled_log_in(ctx, phone, "wrong guess!!", ATTACKER, policy)
    with pytest.raises(DomainError) as limited:
        throttled_log_in(ctx, phones[3], PASSWORD, ATTACKER, policy)
    assert limited.value.code == "too_many_attempts"
    assert throttled_log_in(ctx, phones[3], PASSWORD, OWNER, policy).token
