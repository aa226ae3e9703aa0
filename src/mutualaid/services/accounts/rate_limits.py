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


def count_request(ctx: ServiceContext, token: str | None, address: str) -> Refusal | None:
    """Count one mutating request; a Refusal when the token or the address is over its limit."""
    limits = ctx.rate_limits
    wanted: dict[str, int] = {}
    if limits.per_address:
        wanted[ctx.protector.identity_hash(f"rate-address:{address}")[:32]] = limits.per_address
    if token and limits.per_token:
        wanted[ctx.protector.identity_hash(f"rate-token:{token}")[:32]] = limits.per_token
    if not wanted:
        return None
    now = ctx.clock.now().timestamp()
    window = math.floor(now / limits.window_s)
    keys = list(wanted)
    params: dict[str, object] = {f"k{i}": key for i, key in enumerate(keys)} | {"w": window}
    with ctx.autocommit() as connection:
        counted = connection.execute(_COUNTS[len(keys)], params).all()
    if any(hits > wanted[key] for key, hits in counted):
        return Refusal(max(1, math.ceil((window + 1) * limits.window_s - now)))
    return None
