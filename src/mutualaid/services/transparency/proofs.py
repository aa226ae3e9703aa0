"""Proofs from the stored tree nodes: inclusion, consistency, roots, leaves, tiles, bundles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from mutualaid.db.models import LogEntry, LogState
from mutualaid.db.queries.log import read_size_and_tiles
from mutualaid.domain.errors import NotFound
from mutualaid.services.transparency.log import LOG_STATE_ID, MAX_LEAVES_PAGE, LogError
from mutualaid.transparency.errors import TreeError
from mutualaid.transparency.merkle import (
    NodeId,
    consistency_proof,
    inclusion_proof,
    root_hash,
)
from mutualaid.transparency.tiles import (
    STORAGE_HEIGHT,
    STORAGE_WIDTH,
    TILE_HEIGHT,
    TILE_WIDTH,
    storage_tile_layout,
    storage_tile_width,
)

# --------------------------------------------------------------------------------------------
# Reading the tree


class StoredNodes:
    """A `NodeReader` over the database's stored tiles: every node of a proof in one query
    (one tile row per 4 tree levels).

    With `within`, the same query also reads the log's size and refuses (`LogError`) a tree
    size beyond it, so a proof costs one round trip.
    """

    def __init__(self, session: Session, *, within: int | None = None) -> None:
        self._connection = session.connection()
        self._within = within

    def read_nodes(self, node_ids: Sequence[NodeId]) -> list[bytes]:
        if not node_ids:
            return []
        # (tile level, tile index, row, position) of each node; see tiles.storage_slot.
        slots = []
        for node_id in node_ids:
            tile_level, row = divmod(node_id.level, STORAGE_HEIGHT)
            shift = STORAGE_HEIGHT - row
            slots.append(
                (tile_level, node_id.index >> shift, row, node_id.index & ((1 << shift) - 1))
            )
        wanted = sorted({(slot[0], slot[1]) for slot in slots})
        rows = read_size_and_tiles(self._connection, wanted)
        tiles: dict[tuple[int, int], tuple[bytes, int, tuple[int, ...]]] = {}
        integrated = 0
        for level, index, data in rows:
            if level < 0:
                integrated = index
            else:
                tiles[(level, index)] = (data, *storage_tile_layout(data))
        if self._within is not None and self._within > integrated:
            raise _beyond(self._within, integrated)
        hashes: list[bytes] = []
        for node_id, (tile_level, tile_index, row, position) in zip(node_ids, slots, strict=True):
            tile = tiles.get((tile_level, tile_index))
            if tile is None or position >= tile[1] >> row:
                raise TreeError(
                    f"node (level {node_id.level}, index {node_id.index}) is not stored: the log "
                    "has not integrated that far"
                )
            offset = (tile[2][row] + position) * 32
            hashes.append(bytes(tile[0][offset : offset + 32]))
        return hashes


def _beyond(size: int, integrated: int) -> LogError:
    return LogError(
        "size_beyond_log", f"tree size {size} is beyond the log's size {integrated}", "size"
    )


def log_size(session: Session) -> int:
    """How many leaves the sequencer has integrated."""
    return session.scalar(select(LogState.size).where(LogState.id == LOG_STATE_ID)) or 0


def _check_size(session: Session, size: int) -> None:
    integrated = log_size(session)
    if not 0 <= size <= integrated:
        raise _beyond(size, integrated)


def inclusion_proof_at(session: Session, index: int, size: int) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree of `size`, from stored nodes (one query)."""
    if not 0 <= index < size:
        _check_size(session, size)
        raise LogError(
            "index_out_of_range",
            f"leaf index {index} is out of range for tree size {size}",
            "index",
        )
    if size == 1:  # the proof is empty: no stored node is read that would show the size missing
        _check_size(session, size)
    return inclusion_proof(StoredNodes(session, within=size), index, size)


def consistency_proof_between(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof from `old_size` to `new_size`, from stored nodes (one query)."""
    if not 0 <= old_size <= new_size:
        _check_size(session, new_size)
        raise LogError(
            "bad_sizes", f"no consistency proof from size {old_size} to size {new_size}", "old"
        )
    if old_size in (0, new_size):  # nothing to prove: no nodes to read
        _check_size(session, new_size)
    return consistency_proof(StoredNodes(session, within=new_size), old_size, new_size)


def root_at(session: Session, size: int) -> bytes:
    if size == 0:
        _check_size(session, size)
    return root_hash(StoredNodes(session, within=size), size)


def leaf_index_of(session: Session, hash_value: bytes, size: int) -> int:
    """The first index at which a leaf with this hash sits in the tree of `size`."""
    index = session.scalar(
        select(func.min(LogEntry.leaf_index)).where(
            LogEntry.leaf_hash == hash_value, LogEntry.leaf_index < size
        )
    )
    if index is None:
        raise NotFound(
            "leaf_not_found",
            f"no leaf with hash {hash_value.hex()} in the tree of size {size}",
            "leaf_hash",
        )
    return int(index)


@dataclass(frozen=True, slots=True)
class LeafView:
    index: int
    leaf_hash: bytes
    leaf_data: bytes
    leaf_type: str
    subject_type: str
    subject_ref: str


def leaves_between(session: Session, start: int, end: int) -> list[LeafView]:
    """Integrated leaves with index in [start, end), at most MAX_LEAVES_PAGE of them."""
    end = min(end, start + MAX_LEAVES_PAGE)
    rows = session.execute(
        select(
            LogEntry.leaf_index,
            LogEntry.leaf_hash,
            LogEntry.leaf_data,
            LogEntry.leaf_type,
            LogEntry.subject_type,
            LogEntry.subject_ref,
        )
        .where(LogEntry.leaf_index >= start, LogEntry.leaf_index < end)
        .order_by(LogEntry.leaf_index)
    ).all()
    return [LeafView(cast(int, r[0]), bytes(r[1]), bytes(r[2]), r[3], r[4], r[5]) for r in rows]


def hash_tile(session: Session, level: int, index: int, width: int) -> list[bytes]:
    """The hashes of a C2SP tlog-tiles hash tile: nodes at tree level 8·`level`, indexes
    256·`index` to 256·`index` + `width` − 1. Empty if the log has not integrated that far.

    They are the bottom rows of stored tiles at tile level 2·`level`.
    """
    per = TILE_HEIGHT // STORAGE_HEIGHT
    first = index * TILE_WIDTH
    rows = session.execute(
        text(
            "SELECT idx, hashes FROM log_tiles WHERE level = :level AND idx >= :first "
            "AND idx < :end ORDER BY idx"
        ),
        {
            "level": level * per,
            "first": first // STORAGE_WIDTH,
            "end": (first + width + STORAGE_WIDTH - 1) // STORAGE_WIDTH,
        },
    ).all()
    hashes: list[bytes] = []
    for _, data in rows:
        blob = bytes(data)
        hashes.extend(blob[i * 32 : i * 32 + 32] for i in range(storage_tile_width(blob)))
    return hashes[:width] if len(hashes) >= width else []


def entry_bundle(session: Session, index: int, width: int) -> list[bytes]:
    """The leaves of a tlog-tiles entry bundle (empty if not integrated that far)."""
    rows = [view.leaf_data for view in leaves_between(session, index * 256, index * 256 + width)]
    return rows if len(rows) == width else []
