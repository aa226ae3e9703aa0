"""The transparency log as seen by the other services, and its operation.

Services queue a leaf inside their own transaction (`queue_leaf`): log_entries is the outbox, so a
leaf commits or rolls back with the change it records. The sequencer (`integrate_pending`, one at a
time under a lock on the one-row log_state table) then gives queued leaves consecutive indexes and
stores the Merkle nodes that became complete; `publish_checkpoint` signs the tree head, gathers
witness cosignatures (C2SP tlog-witness) and publishes it once the quorum is met. Proofs are read
from the stored nodes: O(log n) rows in one query.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mutualaid.db.models import LogCheckpoint, LogEntry, LogState, LogWitnessState
from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.context import ServiceContext
from mutualaid.settings import Settings
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.errors import KeyFormatError, TransparencyError, TreeError
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    RawNode,
    consistency_proof,
    inclusion_proof,
    root_hash,
)
from mutualaid.transparency.notes import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
    NoteSignature,
    SignerKey,
    VerifierKey,
    add_signatures,
    generate_signer_key,
    open_note,
    parse_signer_key,
    parse_verifier_key,
)
from mutualaid.transparency.tiles import (
    STORAGE_HEIGHT,
    STORAGE_WIDTH,
    TILE_HEIGHT,
    TILE_WIDTH,
    encode_storage_tile,
    storage_tile_layout,
    storage_tile_node,
    storage_tile_width,
)
from mutualaid.transparency.verification import BundleEntry, SubjectBundle

LOG_STATE_ID = 1
DEFAULT_BATCH = 50_000
MAX_LEAVES_PAGE = 1000
WITNESS_TIMEOUT_S = 10.0


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


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
        leaf_hash=leaf_hash(data),
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
    rows = [
        (
            leaf.leaf_type,
            leaf.leaf_data,
            leaf_hash(leaf.leaf_data),
            leaf.subject_type,
            leaf.subject_ref,
            at,
        )
        for leaf in leaves
    ]
    if not rows:
        return 0
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    columns = "leaf_type, leaf_data, leaf_hash, subject_type, subject_ref, queued_at"
    if connection.dialect.name == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY log_entries ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["varchar", "bytea", "bytea", "varchar", "varchar", "timestamptz"])
            for row in rows:
                copy.write_row(row)
    else:
        stamp = _sqlite_instant(connection.dialect, at)
        cursor = raw.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO log_entries ({columns}) VALUES (?, ?, ?, ?, ?, ?)",
                [(*row[:5], stamp) for row in rows],
            )
        finally:
            cursor.close()
    return len(rows)


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
    hashes = [leaf_hash(leaf.leaf_data) for leaf in leaves]
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    columns = "leaf_type, leaf_data, leaf_hash, leaf_index, subject_type, subject_ref, queued_at"
    if connection.dialect.name == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY log_entries ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(
                ["varchar", "bytea", "bytea", "int8", "varchar", "varchar", "timestamptz"]
            )
            for position, leaf in enumerate(leaves):
                copy.write_row(
                    (
                        leaf.leaf_type,
                        leaf.leaf_data,
                        hashes[position],
                        base + position,
                        leaf.subject_type,
                        leaf.subject_ref,
                        at,
                    )
                )
    else:
        stamp = _sqlite_instant(connection.dialect, at)
        cursor = raw.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO log_entries ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        leaf.leaf_type,
                        leaf.leaf_data,
                        hashes[position],
                        base + position,
                        leaf.subject_type,
                        leaf.subject_ref,
                        stamp,
                    )
                    for position, leaf in enumerate(leaves)
                ],
            )
        finally:
            cursor.close()
    return _grow(session, state, hashes, at)


def _sqlite_instant(dialect: Any, at: datetime) -> Any:
    """`at` as SQLAlchemy would bind it to log_entries.queued_at (a text instant on SQLite)."""
    column_type = LogEntry.__table__.c.queued_at.type
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process(at) if process else at


def _grow(
    session: Session, state: LogState, hashes: Sequence[bytes], at: datetime
) -> IntegrationResult:
    """Extend the compact range by leaves numbered from state.size; store nodes and state."""
    base = state.size
    compact = CompactRange.from_bytes(state.size, state.compact_range)
    new_range, nodes = compact.extend(hashes)
    _store_tiles(session, base, hashes, nodes)
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
    with ctx.transaction() as session:
        return integrate_in_session(session, at=ctx.clock.now(), max_batch=max_batch)


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
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(LogState).values(**values).on_conflict_do_nothing())
        state = session.scalars(query).one()
    return state


def _store_tiles(
    session: Session, base: int, leaf_hashes: Sequence[bytes], nodes: Sequence[RawNode]
) -> None:
    """Write every stored tile that gained nodes when leaves [base, base + n) were appended.

    The rightmost tile of each tile level may already exist, partial: it is read, merged and
    rewritten; all other affected tiles are new. `nodes` are the interior nodes that became
    complete (`CompactRange.extend`).
    """
    if not leaf_hashes:
        return
    size = base + len(leaf_hashes)
    by_level: dict[int, dict[int, bytes]] = {
        0: dict(zip(range(base, size), leaf_hashes, strict=True))
    }
    for level, index, value in nodes:
        by_level.setdefault(level, {})[index] = value
    tile_levels = range(max(by_level) // STORAGE_HEIGHT + 1)
    # The partial tile each tile level had before this append, if any, to be rewritten.
    partial = [
        (t, (base >> (STORAGE_HEIGHT * t)) >> STORAGE_HEIGHT)
        for t in tile_levels
        if (base >> (STORAGE_HEIGHT * t)) % STORAGE_WIDTH
    ]
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    postgres = connection.dialect.name == "postgresql"
    if partial:
        for (t, j), data in _read_tiles(raw, postgres, partial).items():
            for row in range(STORAGE_HEIGHT):
                level = t * STORAGE_HEIGHT + row
                first = j * (STORAGE_WIDTH >> row)
                for position in range(storage_tile_width(data) >> row):
                    stored = storage_tile_node(data, row, position)
                    assert stored is not None  # a position below the row's width is complete
                    by_level.setdefault(level, {})[first + position] = stored
    tiles: list[tuple[int, int, bytes]] = []
    for t in tile_levels:
        bottom = t * STORAGE_HEIGHT
        complete = size >> bottom  # nodes of the tile's bottom level in the tree of `size`
        new_bottom = by_level.get(bottom)
        if not new_bottom:
            continue
        for j in range(min(new_bottom) >> STORAGE_HEIGHT, ((complete - 1) >> STORAGE_HEIGHT) + 1):
            width = min(STORAGE_WIDTH, complete - j * STORAGE_WIDTH)
            rows = [
                [
                    by_level[bottom + row][j * (STORAGE_WIDTH >> row) + position]
                    for position in range(width >> row)
                ]
                for row in range(STORAGE_HEIGHT)
            ]
            tiles.append((t, j, encode_storage_tile(rows)))
    if postgres:
        with raw.cursor() as cursor:
            if partial:
                cursor.execute(
                    "DELETE FROM log_tiles WHERE (level, idx) IN "
                    "(SELECT * FROM unnest(%s::integer[], %s::bigint[]))",
                    ([t for t, _ in partial], [j for _, j in partial]),
                )
            with cursor.copy(
                "COPY log_tiles (level, idx, hashes) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int4", "int8", "bytea"])
                for tile in tiles:
                    copy.write_row(tile)
    else:
        cursor = raw.cursor()
        try:
            cursor.executemany(
                "INSERT OR REPLACE INTO log_tiles (level, idx, hashes) VALUES (?, ?, ?)", tiles
            )
        finally:
            cursor.close()


def _read_tiles(
    raw: Any, postgres: bool, wanted: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """Stored tiles by (tile level, tile index); missing ones are left out."""
    if postgres:
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT t.level, t.idx, t.hashes FROM log_tiles AS t "
                "JOIN unnest(%s::integer[], %s::bigint[]) AS wanted(level, idx) "
                "ON t.level = wanted.level AND t.idx = wanted.idx",
                ([t for t, _ in wanted], [j for _, j in wanted]),
            )
            rows = cursor.fetchall()
    else:
        cursor = raw.cursor()
        try:
            rows = cursor.execute(
                "SELECT level, idx, hashes FROM log_tiles WHERE "
                + " OR ".join(["(level = ? AND idx = ?)"] * len(wanted)),
                [value for pair in wanted for value in pair],
            ).fetchall()
        finally:
            cursor.close()
    return {(level, index): bytes(data) for level, index, data in rows}


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
        raw: Any = self._connection.connection.driver_connection
        if self._connection.dialect.name == "postgresql":
            with raw.cursor() as cursor:
                cursor.execute(_PG_READ_TILES, ([t for t, _ in wanted], [j for _, j in wanted]))
                rows = cursor.fetchall()
        else:
            cursor = raw.cursor()
            try:
                rows = cursor.execute(
                    "SELECT -1, size, NULL FROM log_state UNION ALL "
                    "SELECT level, idx, hashes FROM log_tiles WHERE "
                    + " OR ".join(["(level = ? AND idx = ?)"] * len(wanted)),
                    [value for pair in wanted for value in pair],
                ).fetchall()
            finally:
                cursor.close()
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


_PG_READ_TILES = (
    "SELECT -1, size, NULL::bytea FROM log_state "
    "UNION ALL "
    "SELECT t.level, t.idx, t.hashes FROM log_tiles AS t "
    "JOIN unnest(%s::integer[], %s::bigint[]) AS wanted(level, idx) "
    "ON t.level = wanted.level AND t.idx = wanted.idx"
)


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


# --------------------------------------------------------------------------------------------
# Keys and configuration


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness of the consortium: a name for messages, its cosigning key, its base URL."""

    name: str
    key: VerifierKey
    url: str


@dataclass(frozen=True, slots=True)
class LogConfig:
    signer: SignerKey
    witnesses: tuple[WitnessEndpoint, ...] = ()
    quorum: int = 0

    def __post_init__(self) -> None:
        if self.signer.signature_type != SIGNATURE_TYPE_ED25519:
            raise LogError(
                "log_key",
                f"log key '{self.signer.label}' is not an Ed25519 (0x01) "
                "note key; create one with `mutualaid log keygen`",
            )
        if not 0 <= self.quorum <= len(self.witnesses):
            raise LogError(
                "witness_quorum",
                f"a quorum of {self.quorum} can never be met with {len(self.witnesses)} witnesses",
                "MUTUALAID_WITNESS_QUORUM",
            )
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names):
            raise LogError("witnesses", "two witnesses have the same name", "MUTUALAID_WITNESSES")

    @property
    def origin(self) -> str:
        return self.signer.name

    @property
    def verifier(self) -> VerifierKey:
        return self.signer.verifier()


def parse_witnesses(spec: str) -> tuple[WitnessEndpoint, ...]:
    """Parse ``name=verifierkey@url, ...`` (MUTUALAID_WITNESSES)."""
    witnesses = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, equals, rest = item.partition("=")
        key_text, at, url = rest.partition("@")
        if not equals or not at or not name or not url.startswith(("http://", "https://")):
            raise LogError(
                "witnesses",
                f"witness {item!r} is not name=verifierkey@http(s)://url",
                "MUTUALAID_WITNESSES",
            )
        try:
            key = parse_verifier_key(key_text.strip())
        except KeyFormatError as error:
            raise LogError(
                "witnesses", f"witness {name!r}: {error.message}", "MUTUALAID_WITNESSES"
            ) from None
        if key.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
            raise LogError(
                "witnesses",
                f"witness {name!r} key is not a cosignature/v1 (0x04) key",
                "MUTUALAID_WITNESSES",
            )
        witnesses.append(WitnessEndpoint(name.strip(), key, url.strip().rstrip("/")))
    return tuple(witnesses)


def write_key_file(path: Path, signer: SignerKey) -> None:
    """Write a signer key, readable by its owner only; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(signer.encode() + "\n")


def read_key_file(path: Path) -> SignerKey:
    try:
        return parse_signer_key(path.read_text(encoding="ascii").strip())
    except (KeyFormatError, UnicodeDecodeError) as error:
        message = error.message if isinstance(error, KeyFormatError) else "not ASCII"
        raise LogError("log_key", f"key file {path}: {message}", "key_file") from None


def load_log_config(settings: Settings) -> LogConfig:
    """The log's key, witnesses and quorum from MUTUALAID_* settings.

    In demo mode a missing key is generated under data_dir (named after MUTUALAID_LOG_ORIGIN).
    """
    path = settings.log_key_file
    if path is None:
        if not settings.demo:
            raise LogError(
                "log_key",
                "MUTUALAID_LOG_KEY_FILE is not set; create a key with "
                "`mutualaid log keygen --name <origin> --out <file>`",
                "MUTUALAID_LOG_KEY_FILE",
            )
        path = settings.data_dir / "log-signer.key"
        if not path.exists():
            write_key_file(path, generate_signer_key(settings.log_origin))
    signer = read_key_file(path)
    if "log_origin" in settings.model_fields_set and settings.log_origin != signer.name:
        raise LogError(
            "log_key",
            f"the log key is named '{signer.name}' but MUTUALAID_LOG_ORIGIN "
            f"is '{settings.log_origin}': a checkpoint's origin is its key's name",
            "MUTUALAID_LOG_ORIGIN",
        )
    return LogConfig(signer, parse_witnesses(settings.witnesses), settings.witness_quorum)


# --------------------------------------------------------------------------------------------
# Checkpoints and witnesses


@dataclass(frozen=True, slots=True)
class CheckpointView:
    size: int
    root_hash: bytes
    note: str
    cosigners: int
    quorum: int
    published: bool
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class WitnessOutcome:
    name: str
    cosigned: bool
    #: What happened, e.g. "cosigned at size 12" or "refused (HTTP 422): bad_proof: ...".
    detail: str


@dataclass(frozen=True, slots=True)
class PublishResult:
    checkpoint: CheckpointView
    integrated: int
    outcomes: tuple[WitnessOutcome, ...]


def _view(row: LogCheckpoint) -> CheckpointView:
    return CheckpointView(
        row.size,
        bytes(row.root_hash),
        row.note,
        row.cosigners,
        row.quorum,
        row.published,
        row.created_at,
        row.published_at,
    )


def latest_checkpoint(ctx: ServiceContext) -> CheckpointView | None:
    """The newest published (quorum-cosigned) checkpoint, or None before the first.

    Its root is unpredictable before it is published: the jury draw uses one published after a
    referral as its seed.
    """
    with ctx.reading() as session:
        return latest_published(session)


def latest_published(session: Session) -> CheckpointView | None:
    row = session.scalars(
        select(LogCheckpoint)
        .where(LogCheckpoint.published)
        .order_by(LogCheckpoint.size.desc())
        .limit(1)
    ).first()
    return None if row is None else _view(row)


def checkpoint_at(session: Session, size: int) -> CheckpointView | None:
    row = session.scalars(select(LogCheckpoint).where(LogCheckpoint.size == size)).first()
    return None if row is None else _view(row)


def publish_checkpoint(
    ctx: ServiceContext,
    config: LogConfig,
    *,
    http: httpx.Client | None = None,
    max_batch: int = DEFAULT_BATCH,
) -> PublishResult:
    """Integrate queued leaves, sign a checkpoint at the new size, ask every witness to cosign it
    (tlog-witness add-checkpoint, outside any database transaction), store what came back, and
    mark it published once `config.quorum` witnesses cosigned.

    Idempotent: a checkpoint already published at the current size is returned as it is.
    """
    integrated = integrate_all(ctx, max_batch=max_batch)
    now = ctx.clock.now()
    with ctx.transaction() as session:
        size = log_size(session)
        root = root_at(session, size)
        row = _checkpoint_row(session, size, root, config, now)
        if row.published or not config.witnesses:
            if not row.published:  # quorum 0 and no witnesses: the log's signature suffices
                row.published, row.published_at = True, now
            return PublishResult(_view(row), integrated.integrated, ())
        note = row.note
        known = {w.name: w.size for w in session.scalars(select(LogWitnessState))}

    client = http or httpx.Client(timeout=WITNESS_TIMEOUT_S)
    try:
        asked = [
            _ask_witness(ctx, client, witness, note, size, known.get(witness.name, 0))
            for witness in config.witnesses
        ]
    finally:
        if http is None:
            client.close()

    with ctx.transaction() as session:
        row = session.scalars(
            select(LogCheckpoint).where(LogCheckpoint.size == size).with_for_update()
        ).one()
        fresh = [signature for _, signature, _ in asked if signature is not None]
        if fresh:
            row.note = add_signatures(row.note, fresh)
        row.cosigners = _count_cosigners(row.note, config)
        if row.cosigners >= config.quorum and not row.published:
            row.published, row.published_at = True, now
        for outcome, _, witness_size in asked:
            if witness_size is not None:
                _remember_witness_size(session, outcome.name, witness_size, now)
        return PublishResult(_view(row), integrated.integrated, tuple(o for o, _, _ in asked))


def _checkpoint_row(
    session: Session, size: int, root: bytes, config: LogConfig, now: datetime
) -> LogCheckpoint:
    row = session.scalars(
        select(LogCheckpoint).where(LogCheckpoint.size == size).with_for_update()
    ).first()
    witness_keys = [w.key.encode() for w in config.witnesses]
    if row is None:
        note = sign_checkpoint(Checkpoint(config.origin, size, root), config.signer)
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(LogCheckpoint)
            .values(
                size=size,
                root_hash=root,
                note=note,
                log_key=config.verifier.encode(),
                witness_keys=witness_keys,
                quorum=config.quorum,
                cosigners=0,
                published=False,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        row = session.scalars(
            select(LogCheckpoint).where(LogCheckpoint.size == size).with_for_update()
        ).one()
    if bytes(row.root_hash) != root:
        raise LogError(
            "log_forked",
            f"the stored checkpoint at size {size} has root "
            f"{bytes(row.root_hash).hex()}, but the tree's root is {root.hex()}",
        )
    if row.log_key != config.verifier.encode():
        raise LogError(
            "log_key",
            f"the checkpoint at size {size} was signed by "
            f"'{row.log_key.split('+')[0]}', not by the configured log key",
        )
    if not row.published and (row.witness_keys != witness_keys or row.quorum != config.quorum):
        row.witness_keys, row.quorum = witness_keys, config.quorum
        row.cosigners = _count_cosigners(row.note, config)
    return row


def _count_cosigners(note: str, config: LogConfig) -> int:
    opened = open_note(note, [config.verifier, *(w.key for w in config.witnesses)])
    keys = {w.key.public_key for w in config.witnesses if opened.verified_by(w.key) is not None}
    return len(keys)


def _remember_witness_size(session: Session, name: str, size: int, now: datetime) -> None:
    state = session.get(LogWitnessState, name, with_for_update=True)
    if state is None:
        session.add(LogWitnessState(name=name, size=size, updated_at=now))
    else:
        state.size, state.updated_at = size, now


def _ask_witness(
    ctx: ServiceContext,
    client: httpx.Client,
    witness: WitnessEndpoint,
    note: str,
    size: int,
    old_size: int,
) -> tuple[WitnessOutcome, NoteSignature | None, int | None]:
    """One witness's answer: the outcome, its verified cosignature, the size it is now known at."""
    learned: int | None = None

    def refused(detail: str) -> tuple[WitnessOutcome, None, int | None]:
        return WitnessOutcome(witness.name, False, detail), None, learned

    for _attempt in range(2):
        if old_size > size:
            return refused(
                f"refused: the witness already cosigned size {old_size}, larger than "
                f"this checkpoint's size {size} (the log would have shrunk)"
            )
        with ctx.reading() as session:
            proof = consistency_proof_between(session, old_size, size)
        body = (
            f"old {old_size}\n"
            + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
            + "\n"
            + note
        )
        try:
            response = client.post(
                f"{witness.url}/add-checkpoint",
                content=body.encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as error:
            return refused(f"unreachable: {type(error).__name__}: {error}")
        content_type = response.headers.get("content-type", "")
        if response.status_code == 409 and content_type.startswith("text/x.tlog.size"):
            reported = response.text.strip()
            if not reported.isdigit():
                return refused(f"refused (HTTP 409) with a malformed size {reported!r}")
            old_size = learned = int(reported)
            continue
        if response.status_code != 200:
            return refused(
                f"refused (HTTP {response.status_code}): "
                f"{response.text.strip()[:500] or response.reason_phrase}"
            )
        try:
            opened = open_note(note + response.text, [witness.key])
        except TransparencyError as error:
            return refused(f"answered with an invalid cosignature: {error.message}")
        signature = opened.verified_by(witness.key)
        if signature is None:  # pragma: no cover - open_note requires one verified signature
            return refused("answered without a cosignature by its key")
        return WitnessOutcome(witness.name, True, f"cosigned at size {size}"), signature, size
    return refused(f"refused twice with a changing size (last {old_size})")


# --------------------------------------------------------------------------------------------
# Proof bundles


def proof_bundle(
    ctx: ServiceContext,
    subject_type: str,
    subject_ref: str,
    *,
    older_size: int | None = None,
) -> SubjectBundle:
    """Every leaf about a subject (e.g. ``"claim"``, its ref) with its inclusion proof at the
    latest published checkpoint: a self-contained file `mutualaid verify bundle` checks offline.

    With `older_size`, also the published checkpoint at that size and a consistency proof from it.
    """
    with ctx.reading() as session:
        checkpoint = latest_published(session)
        if checkpoint is None:
            raise NotFound("no_checkpoint", "the log has not published a checkpoint yet")
        row = session.scalars(
            select(LogCheckpoint).where(LogCheckpoint.size == checkpoint.size)
        ).one()
        entries = session.execute(
            select(LogEntry.leaf_index, LogEntry.leaf_data)
            .where(
                LogEntry.subject_type == subject_type,
                LogEntry.subject_ref == subject_ref,
                LogEntry.leaf_index < checkpoint.size,
            )
            .order_by(LogEntry.leaf_index)
        ).all()
        if not entries:
            raise NotFound(
                "no_leaves",
                f"the log holds no leaf about {subject_type} "
                f"{subject_ref!r} at size {checkpoint.size}",
                "subject_ref",
            )
        reader = StoredNodes(session)
        bundle_entries = tuple(
            BundleEntry(
                cast(int, index),
                bytes(data),
                tuple(inclusion_proof(reader, cast(int, index), checkpoint.size)),
            )
            for index, data in entries
        )
        older_note: str | None = None
        older_proof: tuple[bytes, ...] = ()
        if older_size is not None:
            older = checkpoint_at(session, older_size)
            if older is None or not older.published or older_size > checkpoint.size:
                raise NotFound(
                    "no_checkpoint", f"no published checkpoint at size {older_size}", "older_size"
                )
            older_note = older.note
            older_proof = tuple(consistency_proof(reader, older_size, checkpoint.size))
        return SubjectBundle(
            subject_type=subject_type,
            subject_ref=subject_ref,
            origin=row.note.split("\n", 1)[0],
            log_key=row.log_key,
            witness_keys=tuple(row.witness_keys),
            quorum=row.quorum,
            checkpoint=row.note,
            entries=bundle_entries,
            older_checkpoint=older_note,
            consistency_proof=older_proof,
        )
