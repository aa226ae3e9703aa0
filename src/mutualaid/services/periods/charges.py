"""The charges tree: every sharing member's (id, charge) in blocks, its root committed to the log."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    Integer,
    LargeBinary,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Membership,
    Period,
    PeriodChargeException,
    PeriodChargeTree,
    Plan,
)
from mutualaid.db.queries.periods import hashes_charge_blocks, stream_rows
from mutualaid.domain.apportionment import (
    BLOCK_BITS,
    PeriodState,
    charges_leaf_header,
)
from mutualaid.domain.errors import Conflict
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.periods.sharing import (
    EXCLUDED,
    START_OF_TIME,
    STREAM_CHUNK,
    ChargeRule,
    Progress,
    StepHook,
    charge_rule,
)
from mutualaid.services.transparency.log import queue_leaf, unix_seconds
from mutualaid.transparency.merkle import EMPTY_ROOT, MemoryTree, hash_leaf

# --- the charges tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChargeBlock:
    index: int
    leaf_hash: bytes
    members: int
    total_fen: int


def _apply_exceptions(
    rule: ChargeRule, ids: np.ndarray, charges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if not rule.exceptions:
        return ids, charges
    exception_ids = np.fromiter(rule.exceptions, dtype=np.int64, count=len(rule.exceptions))
    hits = np.flatnonzero(np.isin(ids, exception_ids))
    if not len(hits):
        return ids, charges
    keep = np.ones(len(ids), dtype=bool)
    charges = charges.copy()
    for position in hits:
        kind, amount = rule.exceptions[int(ids[position])]
        if kind == EXCLUDED:
            keep[position] = False
        else:
            charges[position] = amount
    return ids[keep], charges[keep]


def stream_charges(
    session: Session,
    rule: ChargeRule,
    *,
    id_from: int | None = None,
    id_to: int | None = None,
    chunk: int = STREAM_CHUNK,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(membership ids, charges) of every sharing member, ascending by id, in chunks.

    Rows come straight from the driver's cursor into numpy arrays (no ORM row objects); when
    everyone pays the same, only the ids are read.
    """
    constant = rule.constant
    columns: list[Any] = (
        [Membership.id] if constant else [Membership.id, rule.charge_sql(person_joined=True)]
    )
    stmt = select(*columns).where(*rule.where(session))
    if not constant:
        stmt = rule.join_person(stmt)
    if id_from is not None:
        stmt = stmt.where(Membership.id >= id_from)
    if id_to is not None:
        stmt = stmt.where(Membership.id < id_to)
    width = len(columns)
    for rows in stream_rows(session, stmt.order_by(Membership.id), chunk, first_column=constant):
        flat = np.fromiter(
            rows if constant else itertools.chain.from_iterable(rows),
            dtype=np.int64,
            count=len(rows) * width,
        )
        if constant:
            ids, charges = (
                flat,
                np.full(len(flat), rule.cohort_charge(START_OF_TIME), dtype=np.int64),
            )
        else:
            pairs = flat.reshape(-1, 2)
            ids, charges = pairs[:, 0], pairs[:, 1]
        ids, charges = _apply_exceptions(rule, ids, charges)
        if len(ids):
            yield ids, charges


def _leaf_for(rule: ChargeRule, block: int, ids: np.ndarray, charges: np.ndarray) -> bytes:
    body = np.empty((len(ids), 2), dtype=">u8")
    body[:, 0] = ids
    body[:, 1] = charges
    return charges_leaf_header(rule.period_ref, block) + body.tobytes()


def charge_blocks_streamed(
    session: Session,
    rule: ChargeRule,
    progress: Progress | None = None,
    total: int = 0,
    *,
    chunk: int = STREAM_CHUNK,
) -> list[ChargeBlock]:
    """The tree's leaves, built in Python from a streamed scan (any database)."""
    blocks: list[ChargeBlock] = []
    carry_ids = np.empty(0, dtype=np.int64)
    carry_charges = np.empty(0, dtype=np.int64)
    done = 0

    def emit(ids: np.ndarray, charges: np.ndarray) -> None:
        block = int(ids[0]) >> BLOCK_BITS
        blocks.append(
            ChargeBlock(
                block, hash_leaf(_leaf_for(rule, block, ids, charges)), len(ids), int(charges.sum())
            )
        )

    for ids, charges in stream_charges(session, rule, chunk=chunk):
        ids = np.concatenate((carry_ids, ids))
        charges = np.concatenate((carry_charges, charges))
        block_of = ids >> BLOCK_BITS
        starts = np.flatnonzero(np.diff(block_of)) + 1
        edges = [0, *starts.tolist()]
        for begin, end in itertools.pairwise(edges):
            emit(ids[begin:end], charges[begin:end])
        carry_ids, carry_charges = ids[edges[-1] :], charges[edges[-1] :]
        done += len(ids) - len(carry_ids)
        if progress:
            progress(done, total)
    if len(carry_ids):
        emit(carry_ids, carry_charges)
    if progress:
        progress(total, total)
    return blocks


def charge_blocks_postgres(session: Session, rule: ChargeRule) -> list[ChargeBlock]:
    """The same leaves, hashed by PostgreSQL itself: only one row per 1,024 ids comes back."""
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    exception = PeriodChargeException
    charge = func.coalesce(exception.amount_fen, rule.charge_sql(person_joined=True))
    block = Membership.id.op(">>")(literal_column(str(BLOCK_BITS), Integer()))
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
    query = rule.join_person(query)
    return [ChargeBlock(int(b), bytes(h), int(n), int(t)) for b, h, n, t in session.execute(query)]


def charge_blocks(
    session: Session, rule: ChargeRule, progress: Progress | None = None, total: int = 0
) -> list[ChargeBlock]:
    if hashes_charge_blocks(session):
        blocks = charge_blocks_postgres(session, rule)
        if progress:
            progress(total, total)
        return blocks
    return charge_blocks_streamed(session, rule, progress, total)


def _commit(
    ctx: ServiceContext, actor: Actor, period_id: int, step: StepHook, progress: Progress | None
) -> None:
    # The long read happens outside any write transaction; the write re-checks the state.
    with ctx.reading() as session:
        period = session.get_one(Period, period_id)
        if period.state != PeriodState.COMPUTED:
            return
        blocks: list[ChargeBlock] = []
        if period.share_fen:
            step("tree")
            blocks = charge_blocks(
                session, charge_rule(session, period), progress, period.member_count or 0
            )
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        session = uow.session
        period = session.scalars(
            select(Period).where(Period.id == period_id).with_for_update()
        ).one()
        if period.state != PeriodState.COMPUTED:
            return
        now = ctx.clock.now()
        plan = session.get_one(Plan, period.plan_id)
        committed = sum(b.members for b in blocks)
        if blocks and (
            committed != period.member_count
            or sum(b.total_fen for b in blocks) != period.total_charged_fen
        ):
            raise Conflict(
                "charges_changed",
                f"the charges of {period.ref} no longer add up to the computed figures; "
                "memberships were changed behind the close",
                "period",
            )
        tree = MemoryTree(b.leaf_hash for b in blocks)
        root = tree.root() if blocks else EMPTY_ROOT
        session.add(
            PeriodChargeTree(
                period_id=period.id,
                block_bits=BLOCK_BITS,
                block_indexes=b"".join(b.index.to_bytes(8, "big") for b in blocks),
                leaf_hashes=b"".join(b.leaf_hash for b in blocks),
            )
        )
        period.charges_root = root.hex()
        period.charges_leaves = len(blocks)
        entry = queue_leaf(
            session,
            at=now,
            leaf_type="period_commitment",
            fields=commitment_fields(period, plan.code, committed),
            subject_type="period",
            subject_ref=period.ref,
        )
        session.flush()
        period.commitment_entry_id = entry.id
        period.state = PeriodState.COMMITTED
        period.committed_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="period_committed",
            subject_type="period",
            subject_id=period.id,
            ref=period.ref,
            charges_root=period.charges_root,
            leaves=len(blocks),
        )
        uow.commit(None)


def commitment_fields(period: Period, plan_code: str, committed: int) -> dict[str, Any]:
    return {
        "plan_ref": plan_code,
        "period_ref": period.ref,
        "charges_root": period.charges_root,
        "charges_count": committed,
        "total_charged_fen": period.total_charged_fen,
        "aid_fen": period.aid_fen,
        "fee_fen": period.fee_fen,
        "surplus_in_fen": period.surplus_in_fen,
        "surplus_out_fen": period.surplus_out_fen,
        "sponsor_fen": period.sponsor_fen,
        "prorated_fen": period.prorated_fen,
        "share_fen": period.share_fen,
        "member_count": period.member_count,
        "case_count": period.case_count,
        "charges_leaves": period.charges_leaves,
        "lock_at": unix_seconds(period.lock_at),
    }
