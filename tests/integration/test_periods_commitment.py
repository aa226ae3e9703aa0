"""The charges tree's ranged scan (issue 20) commits exactly what the row stream committed before.

Each generated plan (seeded: members joining in two cohorts, a suspended and a departed member,
cases, a uniform or banded rule, an annual cap that binds or not, blocks of 2 to 1,024 ids) is
closed with the current code; its root, leaf hashes, counts and totals are then compared with
three references computed from the same database: the pre-issue-20 row stream (kept below as
it was), the pre-issue-20 PostgreSQL aggregate (on PostgreSQL), and the domain's own
`charges_leaf` over every membership's charge worked out in Python.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, date, datetime

import numpy as np
import pytest
from sqlalchemy import Integer, LargeBinary, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session
from tests.builders.sharing_rules import use_rule
from tests.factories import (
    approved_claim,
    close_on,
    members,
    publish_demo_plans,
    staff,
    use_rules,
)

from mutualaid.clock import FixedClock
from mutualaid.db.models import Membership, Period, PeriodChargeException, Person
from mutualaid.domain.accounts import Role
from mutualaid.domain.apportionment import charges_leaf, charges_leaf_header
from mutualaid.domain.memberships import MembershipEvent
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import change_membership
from mutualaid.services.periods.charges import ChargeBlock, charge_blocks, stream_charges
from mutualaid.services.periods.sharing import EXCLUDED, ChargeRule, charge_rule, shares_in
from mutualaid.transparency.merkle import MemoryTree, hash_leaf

JANUARY_7, JANUARY_21 = date(2026, 1, 7), date(2026, 1, 21)


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


# --- the references ---------------------------------------------------------------------------------


def row_stream_blocks(
    session: Session, rule: ChargeRule, block_bits: int, chunk: int = 3
) -> list[ChargeBlock]:
    """The pre-issue-20 path on any database: every sharing row streamed (by default in chunks of
    3 rows, so that blocks straddle chunks), cut into blocks, each leaf hashed."""
    ids_chunks, charge_chunks = [], []
    for ids, charges in stream_charges(session, rule, chunk=chunk):
        ids_chunks.append(ids)
        charge_chunks.append(charges)
    if not ids_chunks:
        return []
    ids, charges = np.concatenate(ids_chunks), np.concatenate(charge_chunks)
    blocks = ids >> block_bits
    edges = [0, *(np.flatnonzero(np.diff(blocks)) + 1).tolist(), len(ids)]
    out = []
    for begin, end in itertools.pairwise(edges):
        block = int(blocks[begin])
        body = np.empty((end - begin, 2), dtype=">u8")
        body[:, 0], body[:, 1] = ids[begin:end], charges[begin:end]
        leaf = charges_leaf_header(rule.period_ref, block) + body.tobytes()
        out.append(ChargeBlock(block, hash_leaf(leaf), end - begin, int(charges[begin:end].sum())))
    return out


def aggregate_blocks(session: Session, rule: ChargeRule, block_bits: int) -> list[ChargeBlock]:
    """The pre-issue-20 PostgreSQL path, as it was: the leaves hashed by PostgreSQL per block."""
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    exception = PeriodChargeException
    charge = func.coalesce(exception.amount_fen, rule.charge_sql())
    block = Membership.id.op(">>")(literal_column(str(block_bits), Integer()))
    pairs = func.string_agg(
        func.int8send(Membership.id).op("||")(func.int8send(charge)),
        aggregate_order_by(literal(b"", LargeBinary()), Membership.id),
    )
    header = literal(b"\x00" + charges_leaf_header(rule.period_ref, 0)[:-8], LargeBinary())
    leaf_hash = func.sha256(header.op("||")(func.int8send(block)).op("||")(pairs))
    query = (
        select(block, leaf_hash, func.count(), func.sum(charge))
        .select_from(Membership)
        .outerjoin(
            exception,
            (exception.period_id == rule.period_id) & (exception.membership_id == Membership.id),
        )
        .where(*rule.where(session), or_(exception.kind.is_(None), exception.kind != EXCLUDED))
        .group_by(block)
        .order_by(block)
    )
    return [ChargeBlock(int(b), bytes(h), int(n), int(t)) for b, h, n, t in session.execute(query)]


def domain_leaves(session: Session, rule: ChargeRule, block_bits: int) -> list[bytes]:
    """Every membership read in Python, its charge worked out by the rule, the leaves built by
    the domain's `charges_leaf`."""
    blocks: dict[int, list[tuple[int, int]]] = defaultdict(list)
    rows = session.execute(
        select(
            Membership.id,
            Membership.plan_id,
            Membership.joined_at,
            Membership.ended_at,
            Membership.ages_out_on,
            Person.birth_on,
        )
        .join(Person, Person.id == Membership.person_id)
        .order_by(Membership.id)
    )
    for membership_id, plan_id, joined_at, ended_at, ages_out_on, born in rows:
        if plan_id != rule.plan_id or not shares_in(
            joined_at, ended_at, ages_out_on, rule.lock_at, rule.publicity_on
        ):
            continue
        charge = rule.charge_of(membership_id, joined_at, born)
        if charge is not None:
            blocks[membership_id >> block_bits].append((membership_id, charge))
    return [charges_leaf(rule.period_ref, b, pairs) for b, pairs in sorted(blocks.items())]


# --- generated plans --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_the_ranged_scan_commits_the_same_root_and_charges_as_before(
    ctx: ServiceContext, clock: FixedClock, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mutualaid.domain.apportionment
    import mutualaid.services.periods.charges

    rng = random.Random(seed)
    block_bits = [1, 2, 10][seed % 3]
    for module in (mutualaid.domain.apportionment, mutualaid.services.periods.charges):
        monkeypatch.setattr(module, "BLOCK_BITS", block_bits)
    banded = seed % 2 == 1
    annual_fen = rng.choice([400, 10**9]) if not banded else rng.choice([3_000_000, 10**9])
    if banded:
        use_rule(ctx, "proportional", annual_fen=annual_fen)
    else:
        use_rules(ctx, annual_fen=annual_fen, fee_bp=rng.choice([0, 800]))
    early = members(ctx, clock, rng.randint(4, 12))
    payout = rng.choice([1200, 5_000_000]) if banded else rng.randint(500, 3000)
    approved_claim(ctx, early[0][1].id, payout, datetime(2026, 1, 2, tzinfo=UTC))
    close_on(ctx, clock, JANUARY_7)
    late = members(ctx, clock, rng.randint(3, 10), when=datetime(2026, 1, 10, tzinfo=UTC))
    operator = staff(ctx, Role.OPERATOR)
    change_membership(ctx, operator, rng.choice(early)[1].id, MembershipEvent.SUSPEND)
    change_membership(ctx, operator, late[-1][1].id, MembershipEvent.LEAVE)
    approved_claim(ctx, early[1][1].id, payout * 2, datetime(2026, 1, 15, tzinfo=UTC))
    closed = close_on(ctx, clock, JANUARY_21)

    with ctx.reading() as session:
        period = session.scalars(select(Period).where(Period.ref == closed.ref)).one()
        rule = charge_rule(session, period)
        assert not rule.constant or not banded
        ranged = charge_blocks(session, rule, range_block_bits=rng.choice([0, 1, 6]))
        # The ranges shared out among threads, each on its own connection, as the close does.
        threaded = charge_blocks(
            session, rule, range_block_bits=0, readers=ctx.reading, threads=rng.choice([2, 3])
        )
        before = row_stream_blocks(session, rule, block_bits)
        leaves = domain_leaves(session, rule, block_bits)
        if ctx.engine.dialect.name == "postgresql":
            assert aggregate_blocks(session, rule, block_bits) == before
    assert ranged == before
    assert threaded == before
    assert [b.leaf_hash for b in before] == [hash_leaf(leaf) for leaf in leaves]
    root = MemoryTree(b.leaf_hash for b in before).root().hex()
    assert closed.charges_root == root
    assert sum(b.members for b in ranged) == closed.member_count
    assert sum(b.total_fen for b in ranged) == closed.total_charged_fen


def test_ranges_that_hold_no_sharing_member_add_no_leaf(
    ctx: ServiceContext, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranges of one 2-id block each: the departed and the not-yet-joined leave holes."""
    import mutualaid.domain.apportionment
    import mutualaid.services.periods.charges

    for module in (mutualaid.domain.apportionment, mutualaid.services.periods.charges):
        monkeypatch.setattr(module, "BLOCK_BITS", 1)
    use_rules(ctx, fee_bp=0)
    people = members(ctx, clock, 9)
    operator = staff(ctx, Role.OPERATOR)
    clock.set(datetime(2025, 12, 1, tzinfo=UTC))  # they left before the lock
    for _, membership in people[2:6]:
        change_membership(ctx, operator, membership.id, MembershipEvent.LEAVE)
    members(ctx, clock, 4, when=datetime(2026, 1, 10, tzinfo=UTC))  # after the 7 January lock
    approved_claim(ctx, people[0][1].id, 1000, datetime(2026, 1, 2, tzinfo=UTC))
    closed = close_on(ctx, clock, JANUARY_7)
    with ctx.reading() as session:
        period = session.scalars(select(Period).where(Period.ref == closed.ref)).one()
        rule = charge_rule(session, period)
        ranged = charge_blocks(session, rule, range_block_bits=0)
        assert ranged == row_stream_blocks(session, rule, 1)
        assert [hash_leaf(leaf) for leaf in domain_leaves(session, rule, 1)] == [
            b.leaf_hash for b in ranged
        ]
    assert sum(b.members for b in ranged) == closed.member_count == 5
