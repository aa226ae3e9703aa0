"""Rate limits on every mutating request, per token and per client address (issue #13).

Fixed windows counted in the database (`rate_counters`), so every server worker process sees the
same count: one upsert per request bumps both keys and returns their totals. Keys are keyed hashes,
so the table holds no token and no address in a form anyone can use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from mutualaid.domain.errors import TooManyRequests

if TYPE_CHECKING:
    from mutualaid.services.context import ServiceContext


@dataclass(frozen=True, slots=True)
class Refusal:
    retry_after_s: int


# One statement for both keys; the prebuilt texts are for one key (no token) and for two.
_COUNTS = {
    size: text(
        "INSERT INTO rate_counters (key, window_index, hits) VALUES "
        + ", ".join(f"(:k{i}, :w, 1)" for i in range(size))
        + " ON CONFLICT (key, window_index) DO UPDATE SET hits = rate_counters.hits + 1"
        " RETURNING key, hits"
    )
    for size in (1, 2)
}


REGISTRATION_WINDOW_S = 3600


def count_request(ctx: ServiceContext, token: str | None, address: str) -> Refusal | None:
    """Count one mutating request; a Refusal when the token or the address is over its limit."""
    limits = ctx.rate_limits
    wanted: dict[str, int] = {}
    if limits.per_address:
        wanted[f"rate-address:{address}"] = limits.per_address
    if token and limits.per_token:
        wanted[f"rate-token:{token}"] = limits.per_token
    return _count(ctx, wanted, limits.window_s)


def check_registration(ctx: ServiceContext, phone: str, address: str) -> None:
    """Count one registration attempt; refuse (429) past the hourly limit per phone or address.

    Counted before any work, whether or not the attempt then succeeds: binding an imported account
    needs its invitation code, and this bounds how fast anyone can guess one."""
    limits = ctx.rate_limits
    wanted: dict[str, int] = {}
    if limits.registrations_per_phone:
        wanted[f"register-phone:{phone.strip()}"] = limits.registrations_per_phone
    if limits.registrations_per_address:
        wanted[f"register-address:{address}"] = limits.registrations_per_address
    refusal = _count(ctx, wanted, REGISTRATION_WINDOW_S)
    if refusal is not None:
        raise TooManyRequests(
            "registration_rate_limited",
            "too many registrations for this phone or from here: wait "
            f"{math.ceil(refusal.retry_after_s / 60)} minutes and try again",
            "phone",
            details={"retry_after_s": refusal.retry_after_s},
        )


#: SMS codes per hour per phone number and per client address (each costs the plan an SMS, and a
#: flood of them is harassment).
PHONE_CODES_PER_PHONE = 5
PHONE_CODES_PER_ADDRESS = 20


def check_phone_code(ctx: ServiceContext, phone: str, address: str) -> None:
    """Count one request for an SMS code; refuse (429) past the hourly limit per phone or
    address."""
    wanted = {
        f"phone-code-phone:{phone}": PHONE_CODES_PER_PHONE,
        f"phone-code-address:{address}": PHONE_CODES_PER_ADDRESS,
    }
    refusal = _count(ctx, wanted, REGISTRATION_WINDOW_S)
    if refusal is not None:
        raise TooManyRequests(
            "phone_code_rate_limited",
            "too many codes for this phone or from here: wait "
            f"{math.ceil(refusal.retry_after_s / 60)} minutes and try again",
            "phone",
            details={"retry_after_s": refusal.retry_after_s},
        )


def _count(ctx: ServiceContext, wanted: dict[str, int], window_s: int) -> Refusal | None:
    """Bump each key's counter in the current window (one statement); a Refusal when any key is
    over its limit. Keys are stored as keyed hashes."""
    if not wanted:
        return None
    limit_of = {ctx.protector.identity_hash(key)[:32]: limit for key, limit in wanted.items()}
    now = ctx.clock.now().timestamp()
    # Windows are named by their start in epoch seconds, whatever their length, so one prune by
    # age clears them all.
    window = math.floor(now / window_s) * window_s
    keys = list(limit_of)
    params: dict[str, object] = {f"k{i}": key for i, key in enumerate(keys)} | {"w": window}
    with ctx.autocommit() as connection:
        counted = connection.execute(_COUNTS[len(keys)], params).all()
    if any(hits > limit_of[key] for key, hits in counted):
        return Refusal(max(1, math.ceil(window + window_s - now)))
    return None


def prune_rate_counters(ctx: ServiceContext) -> int:
    """Delete counters of windows that ended before the longest window could still count them."""
    oldest = math.floor(ctx.clock.now().timestamp()) - 2 * max(
        REGISTRATION_WINDOW_S, ctx.rate_limits.window_s
    )
    with ctx.autocommit() as connection:
        deleted = connection.execute(
            text("DELETE FROM rate_counters WHERE window_index < :oldest"), {"oldest": oldest}
        )
    return deleted.rowcount
