"""The charges tree: every sharing member's (id, charge) in blocks, its root committed to the log."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, bindparam, func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Membership,
    Period,
    PeriodChargeTree,
    Plan,
)
from mutualaid.db.queries.periods import packed_int8, stream_rows, unpacked
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


def _exception_ids(rule: ChargeRule) -> np.ndarray:
    """The ids of the period's exceptions, sorted (looked up per chunk by binary search)."""
    return np.sort(np.fromiter(rule.exceptions, dtype=np.int64, count=len(rule.exceptions)))


def _apply_exceptions(
    rule: ChargeRule, ids: np.ndarray, charges: np.ndarray, exception_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`ids` (ascending) and their charges with the period's exceptions applied: the excluded
    taken out, a charge of its own put in. Only the exceptions within the chunk's id span are
    looked at (`exception_ids`: `_exception_ids(rule)`, made once per scan)."""
    if not rule.exceptions or not len(ids):
        return ids, charges
    if exception_ids is None:
        exception_ids = _exception_ids(rule)
    low = int(np.searchsorted(exception_ids, ids[0], side="left"))
    high = int(np.searchsorted(exception_ids, ids[-1], side="right"))
    candidates = exception_ids[low:high]
    positions = np.searchsorted(ids, candidates)
    hits = positions[ids[np.minimum(positions, len(ids) - 1)] == candidates]
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


#: Makes a read session (`ServiceContext.reading`) for one of the scan's threads.
Readers = Callable[[], AbstractContextManager[Session]]

#: Blocks per range of the charges tree's scan: one query and one row per 2^6 blocks (65,536 ids).
RANGE_BLOCK_BITS = 6


def _sorted_pairs(
    flat: np.ndarray, constant: bool, rule: ChargeRule, exception_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, charges) of one range's packed values, ascending by id (the aggregate promises no
    order: sorted here, usually a no-op check), exceptions applied."""
    if constant:
        ids = flat
        charges = np.full(len(ids), rule.cohort_charge(START_OF_TIME), dtype=np.int64)
    else:
        pairs = flat.reshape(-1, 2)
        ids, charges = pairs[:, 0], pairs[:, 1]
    if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        order = np.argsort(ids, kind="stable")
        ids, charges = ids[order], charges[order]
    return _apply_exceptions(rule, ids, charges, exception_ids)


def charge_blocks(
    session: Session,
    rule: ChargeRule,
    progress: Progress | None = None,
    total: int = 0,
    *,
    range_block_bits: int = RANGE_BLOCK_BITS,
    readers: Readers | None = None,
    threads: int = 1,
) -> list[ChargeBlock]:
    """The tree's leaves from one scan in id ranges of whole blocks (any database).

    Each range is one query whose single row is the range's (id, charge) values packed by the
    database (`packed_int8`: no Python object per member, no sort of the whole plan, memory flat):
    the ranges walk the primary key, and each block is hashed as soon as its range arrives. When
    everyone pays the same, only the ids are read. Exceptions are applied from `rule`.

    With `readers` (a factory of read sessions) and `threads` > 1 the ranges are shared out
    among that many threads, each on its own connection, so the database scans on every core as
    its parallel `count(*)` does (the drivers release the GIL while a query runs). Each range is
    one statement either way, so the leaves are the same; a change behind the scan is caught
    by the commit's check of the computed figures.
    """
    constant = rule.constant
    columns: list[Any] = (
        [Membership.id] if constant else [Membership.id, rule.charge_sql(person_joined=True)]
    )
    # Two subqueries: SQLite answers a lone min() or max() of the key from the B-tree's edge,
    # but both in one SELECT from a scan of the table.
    low_id, high_id = session.execute(
        select(
            select(func.min(Membership.id)).scalar_subquery(),
            select(func.max(Membership.id)).scalar_subquery(),
        )
    ).one()
    if low_id is None:
        return []
    span = 1 << (BLOCK_BITS + range_block_bits)
    stmt = select(packed_int8(session, *columns)).where(
        *rule.where(session),
        Membership.id >= bindparam("low", type_=BigInteger()),
        Membership.id < bindparam("high", type_=BigInteger()),
    )
    stmt = rule.join_person(stmt)  # a banded charge reads the birth date through one join
    exception_ids = _exception_ids(rule)
    lows = list(range(low_id - low_id % span, high_id + 1, span))
    report = _Tally(progress, total)

    def scan(reader: Session, stripe: list[int]) -> list[ChargeBlock]:
        blocks: list[ChargeBlock] = []
        for low in stripe:
            packed = unpacked(reader.execute(stmt, {"low": low, "high": low + span}).scalar())
            if packed:
                flat = np.frombuffer(packed, dtype=">i8").astype(np.int64)
                ids, charges = _sorted_pairs(flat, constant, rule, exception_ids)
                blocks.extend(_blocks_of(rule, ids, charges))
                report.add(len(ids))
        return blocks

    threads = max(1, min(threads, len(lows))) if readers is not None else 1
    if threads == 1:
        blocks = scan(session, lows)
    else:

        def stripe(number: int) -> list[ChargeBlock]:
            assert readers is not None
            with readers() as reader:
                return scan(reader, lows[number::threads])

        with ThreadPoolExecutor(threads, thread_name_prefix="charges") as pool:
            striped = list(pool.map(stripe, range(threads)))
        blocks = sorted(itertools.chain.from_iterable(striped), key=lambda b: b.index)
    report.finish()
    return blocks


def _blocks_of(rule: ChargeRule, ids: np.ndarray, charges: np.ndarray) -> Iterator[ChargeBlock]:
    """The leaves of one range's (ids, charges), ascending: one per 2^BLOCK_BITS-id block."""
    edges = [0, *(np.flatnonzero(np.diff(ids >> BLOCK_BITS)) + 1).tolist(), len(ids)]
    for begin, end in itertools.pairwise(edges):
        if begin == end:
            continue
        block_ids, block_charges = ids[begin:end], charges[begin:end]
        block = int(block_ids[0]) >> BLOCK_BITS
        leaf = _leaf_for(rule, block, block_ids, block_charges)
        yield ChargeBlock(block, hash_leaf(leaf), len(block_ids), int(block_charges.sum()))


class _Tally:
    """Members scanned so far, reported to `progress` from whichever thread scanned them."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress, self._total, self._done = progress, total, 0
        self._lock = threading.Lock()

    def add(self, members: int) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._done += members
            self._progress(self._done, self._total)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress(self._total, self._total)


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
                session,
                charge_rule(session, period),
                progress,
                period.member_count or 0,
                readers=ctx.reading,
                threads=ctx.parallel_readers,
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
