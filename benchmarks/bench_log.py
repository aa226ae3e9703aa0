"""Transparency log benchmarks (issue 3): durable batched appends on SQLite and PostgreSQL against
raw SHA-256 of the same leaves; proofs from stored nodes on a 10,000,000-leaf log; bytes per leaf.

    python benchmarks/bench_log.py                       # both backends, 1M appends, 10M log
    python benchmarks/bench_log.py --backend sqlite --leaves 200000 --big 1000000   # quick look

PostgreSQL: the script creates (and at the end drops, unless --keep) its own database (--pg-database, `bench_log` unless told)
through --pg-url's server; it never touches the `test` database. SQLite: a file under --workdir.
Both run with full durability: PostgreSQL fsync=on, synchronous_commit=on (the server's
settings, printed); SQLite WAL with synchronous=FULL (an fsync per commit).

What is timed:
1. raw: ``hashlib.sha256(b"\\x00" + leaf).digest()`` over each batch's leaves (the RFC 9162 leaf
   hash), right before that batch is appended: the ratio append/raw is taken under the same load.
2. append: `services.transparency.append_leaves` in one transaction per batch, commit included
   (making the leaf bytes is the producer's work and is not timed):
   leaf rows (with every index of the real schema), the Merkle nodes that became complete, the
   sequencer state. Also the outbox path: `queue_leaves` then `integrate_pending`, two commits.
   The bare COPY of the same leaf rows (hashes made before the timing) into a table with
   log_entries' columns and no key follows each batch: the ratio append/COPY (issue 20).
   Wall and CPU (this process + our PostgreSQL backends) are printed: CPU is the steadier one
   on a shared machine.
   --ablation first shows where the append's time goes: the same COPY into tables with each of
   log_entries' keys alone, all of them, and cheaper variants; the real append timed by part;
   a cProfile of its Python side.
3. The log is grown to --big leaves with the same `append_leaves` (the leaf-hash and subject
   indexes dropped during the build and rebuilt after it: the allowed fast path), then
   --proofs random inclusion proofs (random leaf, tree size = --big) and consistency proofs
   (random old size, new size = --big) through `inclusion_proof_at` /
   `consistency_proof_between` (what the API calls: the size check and one query for all the
   proof's stored nodes), each verified against the root outside the timing.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from databases import backend_cpu_s
from psycopg.types.string import BytesBinaryDumper
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.schema import upgrade
from mutualaid.services.transparency.log import (
    PendingLeaf,
    append_leaves,
    integrate_in_session,
    queue_leaves,
)
from mutualaid.services.transparency.proofs import (
    consistency_proof_between,
    inclusion_proof_at,
    root_at,
)
from mutualaid.transparency.leaves import decode_leaf
from mutualaid.transparency.merkle import verify_consistency, verify_inclusion

AT = datetime(2026, 11, 24, tzinfo=UTC)
SUBJECT_TYPE = "claim"
#: Secondary indexes rebuilt after the bulk build (random keys make per-row maintenance slow).
DEFERRED_INDEXES = ("ix_log_entries_leaf_hash", "ix_log_entries_subject")


def leaf(i: int) -> bytes:
    """A canonical evidence leaf (the most common kind), 4 per claim."""
    digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest().encode()
    return (
        b'{"claim_ref":"claim-2026-%07d","media_type":"application/pdf","sha256":"%s",'
        b'"size":%d,"type":"evidence","v":1}' % (i // 4, digest, 10_000 + i % 90_000)
    )


def pending(start: int, count: int) -> list[PendingLeaf]:
    return [
        PendingLeaf("evidence", leaf(i), SUBJECT_TYPE, f"claim-2026-{i // 4:07d}")
        for i in range(start, start + count)
    ]


def log(message: str) -> None:
    print(message, flush=True)


def load() -> str:
    """The machine's load average: these numbers are only comparable on a quiet machine."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


# --- backends ---------------------------------------------------------------------------------


def sqlite_engine(path: Path) -> Engine:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _durable(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA cache_size=-262144")  # a 256 MiB page cache
        cursor.close()

    upgrade(engine)
    return engine


def postgres_engine(server_url: str, database: str) -> Engine:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        connection.execute(text(f"CREATE DATABASE {database}"))
        settings = {
            name: connection.execute(text(f"SHOW {name}")).scalar()
            for name in ("fsync", "synchronous_commit", "shared_buffers", "server_version")
        }
    admin.dispose()
    log(f"  PostgreSQL settings: {settings}")
    base = server_url.rsplit("/", 1)[0]
    engine = make_engine(f"{base}/{database}")
    upgrade(engine)
    return engine


def drop_postgres(server_url: str, database: str) -> None:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {database}"))
    admin.dispose()


def storage_bytes(engine: Engine, sqlite_path: Path | None) -> dict[str, int]:
    if sqlite_path is None:
        with engine.connect() as connection:
            return {
                table: int(
                    connection.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar()
                    or 0
                )
                for table in ("log_entries", "log_tiles", "log_state")
            }
    raw = engine.raw_connection()  # autocommit: no BEGIN IMMEDIATE around the checkpoint
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes: dict[str, int] = {}
        try:
            for name, size in cursor.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                for table in ("log_tiles", "log_entries"):
                    if table in name:
                        sizes[table] = sizes.get(table, 0) + int(size)
        except sqlite3.OperationalError:  # dbstat is an optional SQLite module
            sizes = {}
        cursor.close()
    finally:
        raw.close()
    sizes["file"] = sqlite_path.stat().st_size
    return sizes


# --- 1. appends -----------------------------------------------------------------------------


BASELINE_TABLE = "leaf_copy_baseline"
LEAF_COLUMNS = "leaf_type, leaf_data, leaf_hash, leaf_index, subject_type, subject_ref, queued_at"


def make_baseline_table(engine: Engine) -> None:
    """A table with log_entries' columns and defaults, and no index or key (issue 20's baseline)."""
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {BASELINE_TABLE}"))
        if engine.dialect.name == "postgresql":
            connection.execute(
                text(f"CREATE TABLE {BASELINE_TABLE} (LIKE log_entries INCLUDING DEFAULTS)")
            )
        else:
            connection.execute(
                text(f"CREATE TABLE {BASELINE_TABLE} AS SELECT * FROM log_entries WHERE 0")
            )


def leaf_rows(engine: Engine, leaves: list[PendingLeaf], first_index: int) -> list[tuple[Any, ...]]:
    """The rows `append_leaves` writes for `leaves`, hashes included (made here, not timed)."""
    stamp = AT if engine.dialect.name == "postgresql" else AT.isoformat()
    return [
        (
            item.leaf_type,
            item.leaf_data,
            hashlib.sha256(b"\x00" + item.leaf_data).digest(),
            first_index + i,
            item.subject_type,
            item.subject_ref,
            stamp,
        )
        for i, item in enumerate(leaves)
    ]


def copy_rows(engine: Engine, table: str, rows: list[tuple[Any, ...]]) -> float:
    """Seconds to write `rows` into `table` in one transaction, commit included: PostgreSQL's
    binary COPY, as `append_leaves` uses, each row through psycopg's `write_row`; on SQLite (no
    COPY) one executemany."""
    raw: Any = engine.raw_connection()
    try:
        start = time.perf_counter()
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            # bytes through psycopg's compiled bytea dumper, not dbapi20's Python subclass that
            # set_types would pick (as `append_leaves` does since issue 20; the same bytes).
            cursor.adapters.register_dumper(bytes, BytesBinaryDumper)
            with cursor.copy(f"COPY {table} ({LEAF_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(
                    ["varchar", "bytea", "bytea", "int8", "varchar", "varchar", "timestamptz"]
                )
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        else:
            # One explicit transaction (SQLAlchemy's pysqlite connections do not open one).
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO {table} ({LEAF_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            cursor.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        raw.close()


def bench_appends(
    name: str, sessions: sessionmaker[Session], total: int, batch: int
) -> dict[str, float]:
    """Durable batched appends, each batch preceded by raw SHA-256 of the same leaves and
    followed by a bare COPY of the same leaf rows into an unindexed table, so the ratios compare
    them under the same momentary machine load."""
    raw_elapsed = 0.0
    sha256 = hashlib.sha256
    engine = sessions.kw["bind"]
    appends, copies = Meter(engine), Meter(engine)
    make_baseline_table(engine)
    for first in range(0, total, batch):
        leaves = pending(first, min(batch, total - first))  # the producer's work: not timed
        start = time.perf_counter()
        for item in leaves:
            sha256(b"\x00" + item.leaf_data).digest()
        raw_elapsed += time.perf_counter() - start
        with appends.measure(), sessions.begin() as session:
            append_leaves(session, at=AT, leaves=leaves)
        rows = leaf_rows(engine, leaves, first)
        with copies.measure():
            copy_rows(engine, BASELINE_TABLE, rows)
    elapsed, copy_elapsed = appends.wall, copies.wall
    rate, raw_rate, copy_rate = total / elapsed, total / raw_elapsed, total / copy_elapsed
    log(
        f"  {name}: append_leaves {total:,} leaves in batches of {batch:,}: {elapsed:.2f} s = "
        f"{rate:,.0f} leaves/s; raw SHA-256 of the same leaves {raw_rate:,.0f} leaves/s; "
        f"ratio {rate / raw_rate:.4f} (SHA-256 alone is {raw_rate / rate:.0f}x faster)"
    )
    log(
        f"  {name}: bare {'COPY' if engine.dialect.name == 'postgresql' else 'executemany'} of "
        f"the same leaf rows into an unindexed table: {copy_elapsed:.2f} s = {copy_rate:,.0f} "
        f"rows/s; append / copy ratio {rate / copy_rate:.3f} ({load()})"
    )
    log(
        f"  {name}: CPU µs a leaf (this process + our PostgreSQL backends): append_leaves "
        f"{appends.client / total * 1e6:.2f} + {appends.server / total * 1e6:.2f}, bare copy "
        f"{copies.client / total * 1e6:.2f} + {copies.server / total * 1e6:.2f}; CPU ratio "
        f"{copies.cpu() / appends.cpu():.3f}"
    )
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {BASELINE_TABLE}"))
    return {"append_rate": rate, "raw_rate": raw_rate, "copy_rate": copy_rate}


def bench_outbox(
    name: str, sessions: sessionmaker[Session], first: int, total: int, batch: int
) -> float:
    elapsed = 0.0
    for offset in range(first, first + total, batch):
        leaves = pending(offset, min(batch, first + total - offset))
        start = time.perf_counter()
        with sessions.begin() as session:
            queue_leaves(session, at=AT, leaves=leaves)
        with sessions.begin() as session:
            integrate_in_session(session, at=AT, max_batch=batch)
        elapsed += time.perf_counter() - start
    log(
        f"  {name}: outbox path (queue_leaves, commit, integrate_pending, commit) {total:,} "
        f"leaves: {elapsed:.2f} s = {total / elapsed:,.0f} leaves/s"
    )
    return total / elapsed


# --- 1b. where the append's time goes (--ablation) -------------------------------------------


ABLATION_TABLE = "leaf_copy_ablation"
#: The real log_entries' indexes besides the primary key, as (name, columns and options).
ABLATION_INDEXES = {
    "unique leaf_index": "UNIQUE INDEX {t}_leaf_index ON {t} (leaf_index)",
    "(subject_type, subject_ref)": "INDEX {t}_subject ON {t} (subject_type, subject_ref)",
    "leaf_hash": "INDEX {t}_leaf_hash ON {t} (leaf_hash)",
    "unsequenced (partial)": "INDEX {t}_unsequenced ON {t} (id) WHERE leaf_index IS NULL",
}
REAL_INDEXES = tuple(ABLATION_INDEXES)
#: Cheaper keys tried in place of one of log_entries' indexes: (the index replaced, DDL).
CANDIDATE_INDEXES: dict[str, dict[str, tuple[str, str]]] = {
    "postgresql": {
        "leaf_hash as a hash index (log_entries from 0021)": (
            "leaf_hash",
            "INDEX {t}_leaf_hash ON {t} USING hash (leaf_hash)",
        ),
        "leaf_hash's first 8 bytes": (
            "leaf_hash",
            "INDEX {t}_leaf_hash ON {t} ((substring(leaf_hash FROM 1 FOR 8)))",
        ),
        'the subject index in collation "C"': (
            "(subject_type, subject_ref)",
            'INDEX {t}_subject ON {t} (subject_type COLLATE "C", subject_ref COLLATE "C")',
        ),
        "the subject index on subject_ref alone": (
            "(subject_type, subject_ref)",
            "INDEX {t}_subject ON {t} (subject_ref)",
        ),
    },
    "sqlite": {
        "leaf_hash's first 8 bytes": (
            "leaf_hash",
            "INDEX {t}_leaf_hash ON {t} (substr(leaf_hash, 1, 8))",
        ),
        "the subject index on subject_ref alone": (
            "(subject_type, subject_ref)",
            "INDEX {t}_subject ON {t} (subject_ref)",
        ),
    },
}


def ablation_steps(dialect: str) -> list[tuple[str, bool, list[str]]]:
    """(label, primary key on id, index DDL): the bare table, then each of log_entries' keys
    alone, then all of them (= log_entries), then all with one index made cheaper."""
    steps: list[tuple[str, bool, list[str]]] = [("bare COPY (no key, no index)", False, [])]
    steps.append(("+ primary key (id)", True, []))
    for name in REAL_INDEXES:
        steps.append((f"+ {name}", False, [ABLATION_INDEXES[name]]))
    everything = [ABLATION_INDEXES[name] for name in REAL_INDEXES]
    steps.append(("all of log_entries' keys (leaf_hash a B-tree, as up to 0020)", True, everything))
    for name, (replaced, ddl) in CANDIDATE_INDEXES[dialect].items():
        others = [ABLATION_INDEXES[n] for n in REAL_INDEXES if n != replaced]
        steps.append((f"all, with {name}", True, [*others, ddl]))
    return steps


def create_ablation_table(engine: Engine, primary_key: bool, indexes: list[str]) -> None:
    table = ABLATION_TABLE
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"CREATE TABLE {table} (LIKE log_entries INCLUDING DEFAULTS)"))
            if primary_key:
                connection.execute(text(f"ALTER TABLE {table} ADD PRIMARY KEY (id)"))
        else:
            connection.execute(
                text(
                    f"CREATE TABLE {table} (id INTEGER{' PRIMARY KEY' if primary_key else ''}, "
                    "leaf_type VARCHAR(40) NOT NULL, leaf_data BLOB NOT NULL, "
                    "leaf_hash BLOB NOT NULL, leaf_index BIGINT, subject_type VARCHAR(30) "
                    "NOT NULL, subject_ref VARCHAR(80) NOT NULL, queued_at DATETIME NOT NULL)"
                )
            )
        for ddl in indexes:
            connection.execute(text("CREATE " + ddl.format(t=table)))


def empty(connection: Connection, table: str) -> None:
    postgres = connection.dialect.name == "postgresql"
    connection.execute(text(f"{'TRUNCATE' if postgres else 'DELETE FROM'} {table}"))


def reset_log(engine: Engine) -> None:
    """An empty log, as at the start of the run."""
    with engine.begin() as connection:
        for table in ("log_entries", "log_tiles", "log_state"):
            empty(connection, table)
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("VACUUM")
        finally:
            raw.close()


class AppendParts:
    """Seconds spent in each part of `append_leaves` (the log module's steps, wrapped)."""

    PARTS = ("lock", "leaf COPY", "extend", "tiles: build", "tiles: read", "tiles: store")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.PARTS, 0.0)

    @contextmanager
    def wrapped(self) -> Iterator[None]:
        import mutualaid.services.transparency.log as log_module

        def timed(part: str, function: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.seconds[part] += time.perf_counter() - start

            return call

        names = {
            "_lock_state": "lock",
            "insert_numbered_leaves": "leaf COPY",
            "_update_tiles": "tiles: build",
            "read_tiles": "tiles: read",
            "store_tiles": "tiles: store",
        }
        saved = {name: getattr(log_module, name) for name in names}
        saved_extend = log_module.CompactRange.extend
        try:
            for name, part in names.items():
                setattr(log_module, name, timed(part, saved[name]))
            log_module.CompactRange.extend = timed("extend", saved_extend)  # type: ignore[method-assign]
            yield
        finally:
            for name, function in saved.items():
                setattr(log_module, name, function)
            log_module.CompactRange.extend = saved_extend  # type: ignore[method-assign]
        # _update_tiles' time includes the reads and the store: keep only its own work.
        self.seconds["tiles: build"] -= self.seconds["tiles: read"] + self.seconds["tiles: store"]


class Meter:
    """Wall seconds, this process's CPU seconds and our PostgreSQL backends' CPU seconds."""

    def __init__(self, engine: Engine) -> None:
        self.url = engine.url.render_as_string(hide_password=False)
        self.wall = self.client = self.server = 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        server, client, start = backend_cpu_s(self.url), time.process_time(), time.perf_counter()
        yield
        self.wall += time.perf_counter() - start
        self.client += time.process_time() - client
        self.server += backend_cpu_s(self.url) - server

    def cpu(self) -> float:
        return self.client + self.server


def bench_ablation(
    name: str, engine: Engine, sessions: sessionmaker[Session], total: int, batch: int
) -> None:
    """Each step writes the same leaf rows as `append_leaves` (one transaction per batch, commit
    included) into a table with log_entries' columns and some of its keys; each batch of a step
    is preceded by the bare COPY of the same rows, so every step's ratio is taken under the same
    momentary load. Then the real `append_leaves`, its parts timed. Wall and CPU (this process
    + our PostgreSQL backends) are both given: on a shared machine CPU is the steadier one."""
    dialect = engine.dialect.name
    make_baseline_table(engine)
    results: list[tuple[str, Meter, Meter]] = []  # (label, step, the bare COPY beside it)
    # Warm up (the first COPY of a run pays for the server's and the file's first pages).
    copy_rows(engine, BASELINE_TABLE, leaf_rows(engine, pending(0, min(batch, total)), 0))
    with engine.begin() as connection:
        empty(connection, BASELINE_TABLE)
    for label, primary_key, indexes in ablation_steps(dialect):
        before = load()
        create_ablation_table(engine, primary_key, indexes)
        step, bare = Meter(engine), Meter(engine)
        for first in range(0, total, batch):
            rows = leaf_rows(engine, pending(first, min(batch, total - first)), first)
            with bare.measure():
                copy_rows(engine, BASELINE_TABLE, rows)
            with step.measure():
                copy_rows(engine, ABLATION_TABLE, rows)
        results.append((label, step, bare))
        log(
            f"  {name} ablation: {label}: {total / step.wall:,.0f} leaves/s, bare COPY beside "
            f"it {total / bare.wall:,.0f}/s, ratio {bare.wall / step.wall:.3f}; CPU ratio "
            f"{bare.cpu() / step.cpu():.3f} ({before} -> {load()})"
        )
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {ABLATION_TABLE}"))
            empty(connection, BASELINE_TABLE)
    # The real append, on an empty log, its parts timed.
    reset_log(engine)
    before = load()
    parts = AppendParts()
    step, bare, inside = Meter(engine), Meter(engine), Meter(engine)
    with parts.wrapped():
        for first in range(0, total, batch):
            leaves = pending(first, min(batch, total - first))
            rows = leaf_rows(engine, leaves, first)
            with bare.measure():
                copy_rows(engine, BASELINE_TABLE, rows)
            with step.measure(), sessions() as session:
                session.begin()
                with inside.measure():
                    append_leaves(session, at=AT, leaves=leaves)
                session.commit()
    results.append(("append_leaves (the real table, tiles, state)", step, bare))
    log(
        f"  {name} ablation: append_leaves: {total / step.wall:,.0f} leaves/s, bare COPY "
        f"beside it {total / bare.wall:,.0f}/s, ratio {bare.wall / step.wall:.3f}; CPU ratio "
        f"{bare.cpu() / step.cpu():.3f} ({before} -> {load()})"
    )
    known = sum(parts.seconds.values())
    shares = {**parts.seconds, "rest (hashing, state row)": inside.wall - known}
    log(
        f"  {name} append_leaves by part, wall µs a leaf: "
        + ", ".join(f"{part} {seconds / total * 1e6:.2f}" for part, seconds in shares.items())
        + f", commit {(step.wall - inside.wall) / total * 1e6:.2f}"
    )
    # The table: µs a leaf above the paired bare COPY, and that as a share of append's gap.
    _, last, last_bare = results[-1]
    gap_wall = (last.wall - last_bare.wall) / total
    gap_cpu = (last.cpu() - last_bare.cpu()) / total
    log(
        f"\n  {name} ablation ({total:,} leaves, batches of {batch:,}; µs a leaf; CPU = this "
        "process + our PostgreSQL backends)\n"
        "  | step | leaves/s | bare COPY beside it /s | ratio | wall µs above bare | share of "
        "the gap (wall) | CPU µs: client + server | CPU µs above bare | share of the gap (CPU) |"
    )
    for label, meter, paired in results:
        extra_wall = (meter.wall - paired.wall) / total
        extra_cpu = (meter.cpu() - paired.cpu()) / total
        log(
            f"  | {label} | {total / meter.wall:,.0f} | {total / paired.wall:,.0f} | "
            f"{paired.wall / meter.wall:.3f} | {extra_wall * 1e6:.2f} | {extra_wall / gap_wall:.0%} "
            f"| {meter.client / total * 1e6:.2f} + {meter.server / total * 1e6:.2f} | "
            f"{extra_cpu * 1e6:.2f} | {extra_cpu / gap_cpu:.0%} |"
        )
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {BASELINE_TABLE}"))


def profile_appends(
    name: str, engine: Engine, sessions: sessionmaker[Session], total: int, batch: int
) -> None:
    """cProfile of `append_leaves` (the Python side; time waiting on the database shows as the
    driver's calls), on an empty log."""
    import cProfile
    import pstats

    reset_log(engine)
    batches = [pending(first, min(batch, total - first)) for first in range(0, total, batch)]
    profiler = cProfile.Profile()
    for leaves in batches:
        with sessions.begin() as session:
            profiler.enable()
            append_leaves(session, at=AT, leaves=leaves)
            profiler.disable()
    log(
        f"\n  {name}: cProfile of append_leaves ({total:,} leaves, commit not included), by own time:"
    )
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime")
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:18]  # type: ignore[attr-defined]
    for (filename, line, function), (calls, _, tottime, cumtime, _) in rows:
        where = f"{Path(filename).name}:{line}" if line else filename
        log(
            f"    {tottime / total * 1e6:6.2f} µs/leaf own, {cumtime / total * 1e6:6.2f} "
            f"cumulative, {calls:>9,} calls  {function} ({where})"
        )


# --- 2. the big log and its proofs ----------------------------------------------------------


@contextmanager
def deferred_indexes(engine: Engine) -> Iterator[None]:
    """Drop the random-key secondary indexes for the bulk build, then rebuild them."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            definitions = {
                row[0]: row[1]
                for row in connection.execute(
                    text(
                        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'log_entries'"
                    )
                )
            }
        else:
            definitions = {
                row[0]: row[1]
                for row in connection.execute(
                    text(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                        "AND tbl_name = 'log_entries' AND sql IS NOT NULL"
                    )
                )
            }
        for index in DEFERRED_INDEXES:
            connection.execute(text(f"DROP INDEX {index}"))
    yield
    start = time.perf_counter()
    with engine.begin() as connection:
        for index in DEFERRED_INDEXES:
            connection.execute(text(definitions[index]))
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE log_entries"))
            connection.execute(text("ANALYZE log_tiles"))
        else:
            connection.execute(text("ANALYZE"))
    log(f"  rebuilt {', '.join(DEFERRED_INDEXES)} in {time.perf_counter() - start:.1f} s")


def grow_to(
    name: str, engine: Engine, sessions: sessionmaker[Session], size: int, target: int, batch: int
) -> None:
    start = time.perf_counter()
    with deferred_indexes(engine):
        for first in range(size, target, batch):
            with sessions.begin() as session:
                append_leaves(session, at=AT, leaves=pending(first, min(batch, target - first)))
            if (first // batch) % 10 == 0:
                done = min(first + batch, target)
                log(f"    {done:,} leaves, {time.perf_counter() - start:.0f} s")
    elapsed = time.perf_counter() - start
    log(
        f"  {name}: grew the log from {size:,} to {target:,} leaves in {elapsed:.0f} s "
        f"({(target - size) / elapsed:,.0f} leaves/s, index build included)"
    )


def time_calls(
    session: Session, calls: list[Callable[[Session], list[bytes]]]
) -> tuple[list[float], list[list[bytes]]]:
    timings, results = [], []
    for call in calls:
        start = time.perf_counter()
        results.append(call(session))
        timings.append((time.perf_counter() - start) * 1000)
    return timings, results


def _inclusion(session: Session, index: int, size: int) -> list[bytes]:
    return inclusion_proof_at(session, index, size)


def _consistency(session: Session, old: int, size: int) -> list[bytes]:
    return consistency_proof_between(session, old, size)


def bench_proofs(
    name: str, sessions: sessionmaker[Session], size: int, count: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    indexes = [rng.randrange(size) for _ in range(count)]
    olds = [rng.randrange(1, size) for _ in range(count)]
    with sessions() as session:
        state_root = session.execute(text("SELECT root_hash FROM log_state")).scalar_one()
        # Warm up: the first queries load the tables' upper B-tree pages.
        for i in range(200):
            inclusion_proof_at(session, indexes[i], size)
        inclusion_ms, inclusion = time_calls(
            session, [partial(_inclusion, index=i, size=size) for i in indexes]
        )
        consistency_ms, consistency = time_calls(
            session, [partial(_consistency, old=o, size=size) for o in olds]
        )
        leaf_hashes: dict[int, bytes] = dict(
            session.execute(
                text(
                    "SELECT leaf_index, leaf_hash FROM log_entries WHERE leaf_index IN "
                    f"({', '.join(str(i) for i in set(indexes))})"
                )
            ).all()
        )
        old_roots = {}
        for old in olds[:200]:
            old_roots[old] = root_at(session, old)
    for index, proof in zip(indexes, inclusion, strict=True):
        verify_inclusion(
            leaf_hash=bytes(leaf_hashes[index]),
            index=index,
            size=size,
            proof=proof,
            root=bytes(state_root),
        )
    for old, proof in list(zip(olds, consistency, strict=True))[:200]:
        verify_consistency(
            old_size=old,
            new_size=size,
            old_root=old_roots[old],
            new_root=bytes(state_root),
            proof=proof,
        )
    bound = math.ceil(math.log2(size))
    result: dict[str, Any] = {
        "inclusion_median_ms": statistics.median(inclusion_ms),
        "inclusion_p99_ms": percentile(inclusion_ms, 0.99),
        "consistency_median_ms": statistics.median(consistency_ms),
        "consistency_p99_ms": percentile(consistency_ms, 0.99),
        "inclusion_len": (min(map(len, inclusion)), max(map(len, inclusion))),
        "consistency_len": (min(map(len, consistency)), max(map(len, consistency))),
        "bound": bound,
    }
    log(
        f"  {name}: {count:,} inclusion proofs at size {size:,}: median "
        f"{result['inclusion_median_ms']:.3f} ms, p99 {result['inclusion_p99_ms']:.3f} ms, "
        f"{result['inclusion_len'][0]}-{result['inclusion_len'][1]} hashes "
        f"(ceil(log2 n) = {bound}); all verified against the root"
    )
    log(
        f"  {name}: {count:,} consistency proofs to size {size:,}: median "
        f"{result['consistency_median_ms']:.3f} ms, p99 {result['consistency_p99_ms']:.3f} ms, "
        f"{result['consistency_len'][0]}-{result['consistency_len'][1]} hashes; "
        f"200 verified against stored roots"
    )
    return result


def report_storage(name: str, engine: Engine, sqlite_path: Path | None, size: int) -> None:
    sizes = storage_bytes(engine, sqlite_path)
    leaf_bytes = sum(len(leaf(i)) for i in range(0, size, max(1, size // 10_000)))
    average = leaf_bytes / len(range(0, size, max(1, size // 10_000)))
    parts = ", ".join(f"{table} {value / size:,.1f}" for table, value in sizes.items())
    total = sizes.get("file") or sum(sizes.values())
    log(
        f"  {name}: storage at {size:,} leaves: {total / size:,.1f} bytes/leaf in all "
        f"({parts} bytes/leaf; the leaf itself averages {average:.0f} bytes)"
    )


# --- main -------------------------------------------------------------------------------------


def run_backend(
    name: str, engine: Engine, sqlite_path: Path | None, args: argparse.Namespace
) -> None:
    sessions = make_sessionmaker(engine)
    log(f"\n== {name} == ({load()})")
    if args.ablation:
        bench_ablation(name, engine, sessions, args.leaves, args.batch)
        profile_appends(name, engine, sessions, args.leaves, args.batch)
        reset_log(engine)
    bench_appends(name, sessions, args.leaves, args.batch)
    bench_outbox(name, sessions, args.leaves, args.outbox, args.batch)
    report_storage(name, engine, sqlite_path, args.leaves + args.outbox)
    if args.big:
        grow_to(name, engine, sessions, args.leaves + args.outbox, args.big, args.build_batch)
        report_storage(name, engine, sqlite_path, args.big)
        log(f"  cold: the tree's pages are wherever the previous steps left them ({load()})")
        bench_proofs(name, sessions, args.big, args.proofs, args.seed)
        log(f"  warm: the tree's tiles read into memory first, new random proofs ({load()})")
        prewarm(engine)
        bench_proofs(name, sessions, args.big, args.proofs, args.seed + 1)
    engine.dispose()


def prewarm(engine: Engine) -> None:
    """Read log_tiles (the whole stored tree, ~70 bytes a leaf) so it sits in memory, as on a
    proof server whose RAM holds it."""
    start = time.perf_counter()
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
            for relation in ("log_tiles", "pk_log_tiles"):
                connection.execute(text(f"SELECT pg_prewarm('{relation}', 'read')"))
            connection.commit()
        else:
            connection.execute(text("SELECT sum(length(hashes)) FROM log_tiles")).scalar()
            connection.execute(
                text("SELECT count(*) FROM log_tiles INDEXED BY sqlite_autoindex_log_tiles_1")
            ).scalar()
            connection.rollback()
    log(f"  read the tiles in {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaves appended (timed)")
    parser.add_argument("--batch", type=int, default=100_000, help="leaves per transaction")
    parser.add_argument("--outbox", type=int, default=200_000, help="leaves via the outbox path")
    parser.add_argument("--big", type=int, default=10_000_000, help="log size for proofs (0: skip)")
    parser.add_argument("--build-batch", type=int, default=200_000)
    parser.add_argument("--proofs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=9162)
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a maintenance database on the server (--pg-database is created there)",
    )
    parser.add_argument(
        "--pg-database",
        default="bench_log",
        help="the database the script creates, and drops at the end unless --keep",
    )
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="first, where the append's time goes: the bare COPY with each of log_entries' keys "
        "added, the real append by part, and a cProfile of it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args()

    log(f"python {sys.version.split()[0]}, {platform.platform()}, {os.cpu_count()} CPUs")
    sample = [leaf(i) for i in (0, 1, 999_999, 9_999_999)]
    for data in sample:
        decode_leaf(data)  # the generated leaves are canonical mutualaid leaves
    average = sum(len(leaf(i)) for i in range(10_000)) / 10_000
    log(f"leaves: canonical evidence leaves of {average:.0f} bytes on average")

    if args.backend in ("both", "sqlite"):
        args.workdir.mkdir(parents=True, exist_ok=True)
        path = args.workdir / "bench_log.db"
        run_backend("SQLite", sqlite_engine(path), path, args)
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    if args.backend in ("both", "postgresql"):
        run_backend("PostgreSQL", postgres_engine(args.pg_url, args.pg_database), None, args)
        if not args.keep:
            drop_postgres(args.pg_url, args.pg_database)


if __name__ == "__main__":
    main()
