"""The transparency log as seen by the other services, and its operation.

Services queue a leaf inside their own transaction (`queue_leaf`): log_entries is the outbox, so a
leaf commits or rolls back with the change it records. The sequencer (`integrate_pending`, one at a
time under a lock on the one-row log_state table) then gives queued leaves consecutive indexes and
stores the Merkle nodes that became complete; `publish_checkpoint` signs the tree head, gathers
witness cosignatures (C2SP tlog-witness) and publishes it once the quorum is met. Proofs are read
from the stored nodes: O(log n) rows in one query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mutualaid.db.models import LogEntry, LogState
from mutualaid.db.queries.log import (
    insert_log_state,
    insert_numbered_leaves,
    insert_queued_leaves,
    read_tiles,
    store_tiles,
)
from mutualaid.domain.errors import DomainError
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.transparency.errors import TreeError
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import (
    EMPTY_ROOT,
    CompactRange,
    RawNode,
    hash_leaf,
    hash_leaves,
)
from mutualaid.transparency.tiles import (
    STORAGE_HEIGHT,
    STORAGE_WIDTH,
    storage_tile_layout,
)

LOG_STATE_ID = 1
DEFAULT_BATCH = 50_000
MAX_LEAVES_PAGE = 1000
WITNESS_TIMEOUT_S = 10.0


def queue_leaf(
    session: Session,
    *,
    at: datetime,
    leaf_type: str,
    fields: Mapping[str, Any],
    subject_type: str,
    subject_ref: str,
) -> LogEntry:
    data = canonical_leaf(leaf_type, fields)
    entry = LogEntry(
        leaf_type=leaf_type,
        leaf_data=data,
        leaf_hash=hash_leaf(data),
        subject_type=subject_type,
        subject_ref=subject_ref,
        queued_at=at,
    )
    session.add(entry)
    return entry


def unix_seconds(at: datetime) -> int:
    return int(at.timestamp())


class LogError(DomainError):
    """The log cannot do what was asked (a size beyond the log, no checkpoint yet, bad config)."""


# --------------------------------------------------------------------------------------------
# Bulk appends and the sequencer


class PendingLeaf(NamedTuple):
    """An already-encoded canonical leaf for `queue_leaves` / `append_leaves` (bulk producers,
    imports). Build it with `PendingLeaf.of` unless the bytes came from `canonical_leaf`.

    A NamedTuple rather than a dataclass: bulk appends make millions, and a tuple is several
    times cheaper to create.
    """

    leaf_type: str
    leaf_data: bytes
    subject_type: str
    subject_ref: str

    @classmethod
    def of(
        cls, leaf_type: str, fields: Mapping[str, Any], subject_type: str, subject_ref: str
    ) -> PendingLeaf:
        return cls(leaf_type, canonical_leaf(leaf_type, fields), subject_type, subject_ref)


def queue_leaves(session: Session, *, at: datetime, leaves: Sequence[PendingLeaf]) -> int:
    """Queue many leaves in the caller's transaction with one round trip (COPY on PostgreSQL).

    The bytes must be canonical leaves (`canonical_leaf`); they are hashed here.
    """
    if not leaves:
        return 0
    insert_queued_leaves(session, at, leaves, hash_leaves([leaf.leaf_data for leaf in leaves]))
    return len(leaves)


def append_leaves(
    session: Session, *, at: datetime, leaves: Sequence[PendingLeaf]
) -> IntegrationResult:
    """Append a batch directly, in the caller's transaction: take the sequencer lock, write the
    leaves already numbered (after the current size) and the tree tiles they change.

    The fast path for bulk work (imports, period commitments over many members): one COPY for
    the leaves, one for the tiles, no second pass over the rows. Queued (outbox) leaves are not
    affected; they get the indexes after these when the sequencer next runs.
    """
    state = _lock_state(session, at)
    base = state.size
    if not leaves:
        return IntegrationResult(0, base, base, state.root_hash)
    hashes = hash_leaves([leaf.leaf_data for leaf in leaves])
    insert_numbered_leaves(session, at, leaves, hashes, base)
    return _grow(session, state, hashes, at)


def _grow(
    session: Session, state: LogState, hashes: Sequence[bytes], at: datetime
) -> IntegrationResult:
    """Extend the compact range by leaves numbered from state.size; store nodes and state."""
    base = state.size
    compact = CompactRange.from_bytes(state.size, state.compact_range)
    new_range, nodes = compact.extend(hashes)
    _update_tiles(session, base, hashes, nodes)
    state.size = new_range.size
    state.compact_range = new_range.to_bytes()
    state.root_hash = new_range.root()
    state.updated_at = at
    session.flush()
    return IntegrationResult(len(hashes), base, new_range.size, state.root_hash)


@dataclass(frozen=True, slots=True)
class IntegrationResult:
    #: How many queued leaves this run gave an index.
    integrated: int
    #: The index of the first of them (the log's size before the run).
    first_index: int
    size: int
    root_hash: bytes


def integrate_pending(ctx: ServiceContext, *, max_batch: int = DEFAULT_BATCH) -> IntegrationResult:
    """Sequence up to `max_batch` queued leaves in one transaction (see `integrate_in_session`)."""
    uow: UnitOfWork[IntegrationResult] = ctx.unit_of_work()
    with uow:
        uow.commit(integrate_in_session(uow.session, at=ctx.clock.now(), max_batch=max_batch))
    return uow.result


def integrate_all(ctx: ServiceContext, *, max_batch: int = DEFAULT_BATCH) -> IntegrationResult:
    """Sequence every queued leaf, `max_batch` per transaction."""
    first = integrate_pending(ctx, max_batch=max_batch)
    result, total = first, first.integrated
    while result.integrated == max_batch:
        result = integrate_pending(ctx, max_batch=max_batch)
        total += result.integrated
    return IntegrationResult(total, first.first_index, result.size, result.root_hash)


def integrate_in_session(session: Session, *, at: datetime, max_batch: int) -> IntegrationResult:
    """The sequencer: lock log_state, number queued leaves in id order, store the new tiles.

    The lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
    whole database) makes sequencers take turns, so indexes never repeat and never skip; numbering
    and node storage commit together with the new tree size, or not at all.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch {max_batch} must be at least 1")
    state = _lock_state(session, at)
    base = state.size
    numbered = sorted(
        (int(index), bytes(value))
        for index, value in session.execute(_ASSIGN_INDEXES, {"base": base, "limit": max_batch})
    )
    if not numbered:
        return IntegrationResult(0, base, base, state.root_hash)
    if numbered[0][0] != base or numbered[-1][0] != base + len(numbered) - 1:
        raise TreeError(  # unreachable while the lock holds; refuse rather than store a gap
            f"sequencer numbered leaves {numbered[0][0]}..{numbered[-1][0]} after size {base}"
        )
    return _grow(session, state, [value for _, value in numbered], at)


# Number the oldest queued leaves base, base+1, ... in id order and hand back their hashes; one
# statement, so what is hashed is exactly what was numbered.
_ASSIGN_INDEXES = text(
    """
    WITH batch AS (
        SELECT id, row_number() OVER (ORDER BY id) AS n
        FROM (SELECT id FROM log_entries WHERE leaf_index IS NULL ORDER BY id LIMIT :limit)
            AS pending
    )
    UPDATE log_entries SET leaf_index = :base + batch.n - 1
    FROM batch WHERE log_entries.id = batch.id
    RETURNING leaf_index, leaf_hash
    """
)


def _lock_state(session: Session, at: datetime) -> LogState:
    query = (
        select(LogState)
        .where(LogState.id == LOG_STATE_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    state = session.scalars(query).one_or_none()
    if state is None:
        values = {
            "id": LOG_STATE_ID,
            "size": 0,
            "compact_range": b"",
            "root_hash": EMPTY_ROOT,
            "updated_at": at,
        }
        insert_log_state(session, values)
        state = session.scalars(query).one()
    return state


def _update_tiles(
    session: Session, base: int, leaf_hashes: Sequence[bytes], nodes: Sequence[RawNode]
) -> None:
    """Write every stored tile that gained nodes when leaves [base, base + n) were appended.

    The rightmost tile of each tile level may already exist, partial: it is read, merged and
    rewritten; all other affected tiles are new. `nodes` are the interior nodes that became
    complete (`CompactRange.extend`).

    The nodes of one tree level that became complete are consecutive: level L gained indexes
    ``base >> L`` to ``(size >> L) - 1``, and `extend` creates each level's in index order. So
    each level is kept as one list starting at a known index (preceded by the partial tile's
    row for that level, which ends right where the new nodes start), and a tile's rows are
    slices of those lists.
    """
    if not leaf_hashes:
        return
    size = base + len(leaf_hashes)
    # levels[L]: the new complete nodes of tree level L, in index order, from index base >> L.
    levels: list[list[bytes]] = [list(leaf_hashes)]
    for level, _index, value in nodes:
        while len(levels) <= level:
            levels.append([])
        levels[level].append(value)
    tile_levels = range((len(levels) - 1) // STORAGE_HEIGHT + 1)
    # Every level the affected tiles hold (a partial tile's upper rows may have no new node).
    levels += [[] for _ in range(len(tile_levels) * STORAGE_HEIGHT - len(levels))]
    first = [base >> level for level in range(len(levels))]
    # The partial tile each tile level had before this append, if any, to be rewritten.
    partial = [
        (t, (base >> (STORAGE_HEIGHT * t)) >> STORAGE_HEIGHT)
        for t in tile_levels
        if (base >> (STORAGE_HEIGHT * t)) % STORAGE_WIDTH
    ]
    if partial:
        for (t, j), data in read_tiles(session, partial).items():
            width, offsets = storage_tile_layout(data)
            for row in range(STORAGE_HEIGHT):
                level = t * STORAGE_HEIGHT + row
                start = j * (STORAGE_WIDTH >> row)
                stored = [
                    data[32 * position : 32 * position + 32]
                    for position in range(offsets[row], offsets[row] + (width >> row))
                ]
                if start + len(stored) != first[level]:
                    raise TreeError(  # unreachable: a stored partial tile ends at the old size
                        f"stored tile ({t}, {j}) does not end at the log's size {base}"
                    )
                levels[level][:0] = stored
                first[level] = start
    tiles: list[tuple[int, int, bytes]] = []
    for t in tile_levels:
        bottom = t * STORAGE_HEIGHT
        complete = size >> bottom  # nodes of the tile's bottom level in the tree of `size`
        for j in range(first[bottom] >> STORAGE_HEIGHT, ((complete - 1) >> STORAGE_HEIGHT) + 1):
            width = min(STORAGE_WIDTH, complete - j * STORAGE_WIDTH)
            parts: list[bytes] = []
            for row in range(STORAGE_HEIGHT):
                count = width >> row
                if not count:
                    break
                offset = j * (STORAGE_WIDTH >> row) - first[bottom + row]
                parts += levels[bottom + row][offset : offset + count]
            tiles.append((t, j, b"".join(parts)))
    store_tiles(session, partial, tiles)
