"""The log's sequencer and stored tree over SQLite and PostgreSQL: outbox atomicity, no gaps or
duplicates under concurrency, proofs from stored nodes equal to the in-memory reference."""

from __future__ import annotations

import hashlib
import random
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mutualaid.clock import FixedClock
from mutualaid.db.models import LogEntry, LogTile
from mutualaid.domain.errors import DomainError
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import (
    LogConfig,
    latest_checkpoint,
    load_log_config,
    parse_witnesses,
    proof_bundle,
    publish_checkpoint,
    read_key_file,
    write_key_file,
)
from mutualaid.services.transparency.log import (
    LogError,
    PendingLeaf,
    append_leaves,
    integrate_all,
    integrate_pending,
    queue_leaf,
    queue_leaves,
)
from mutualaid.services.transparency.proofs import (
    consistency_proof_between,
    hash_tile,
    inclusion_proof_at,
    leaf_index_of,
    root_at,
)
from mutualaid.settings import Settings
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import MemoryTree, NodeId, hash_leaf
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.tiles import STORAGE_HEIGHT, STORAGE_WIDTH, encode_storage_tile
from mutualaid.transparency.verification import parse_subject_bundle, verify_subject_bundle
from mutualaid.transparency.witnesses import generate_witness_key

ORIGIN = "mutualaid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x42" * 32)


def evidence(n: int, claim: str = "claim-2026-000001") -> dict[str, object]:
    return {
        "claim_ref": claim,
        "sha256": hashlib.sha256(f"scan {n}".encode()).hexdigest(),
        "size": 1000 + n,
        "media_type": "image/jpeg",
    }


def queue(ctx: ServiceContext, n: int, claim: str = "claim-2026-000001") -> None:
    with ctx.sessions.begin() as session:
        queue_leaf(
            session,
            at=ctx.clock.now(),
            leaf_type="evidence",
            fields=evidence(n, claim),
            subject_type="claim",
            subject_ref=claim,
        )


def bulk(ctx: ServiceContext, count: int, start: int = 0) -> list[bytes]:
    data = [canonical_leaf("evidence", evidence(n)) for n in range(start, start + count)]
    with ctx.sessions.begin() as session:
        queue_leaves(
            session,
            at=ctx.clock.now(),
            leaves=[PendingLeaf("evidence", d, "claim", "claim-2026-000001") for d in data],
        )
    return data


def indexed_hashes(ctx: ServiceContext) -> list[tuple[int, bytes]]:
    with ctx.reading() as session:
        rows = session.execute(
            select(LogEntry.leaf_index, LogEntry.leaf_hash)
            .where(LogEntry.leaf_index.is_not(None))
            .order_by(LogEntry.leaf_index)
        ).all()
    return [(int(i), bytes(h)) for i, h in rows]


def test_sequencer_numbers_queued_leaves_in_order_and_stores_the_tree(ctx: ServiceContext) -> None:
    data = bulk(ctx, 37)
    result = integrate_pending(ctx, max_batch=10)
    assert (result.integrated, result.first_index, result.size) == (10, 0, 10)
    rest = integrate_all(ctx, max_batch=10)
    assert (rest.integrated, rest.first_index, rest.size) == (27, 10, 37)
    tree = MemoryTree.from_entries(data)
    assert rest.root_hash == tree.root()
    assert integrate_pending(ctx).integrated == 0
    with ctx.reading() as session:
        first = session.scalars(select(LogEntry).where(LogEntry.leaf_index == 0)).one()
        assert (first.leaf_data, first.queued_at) == (data[0], ctx.clock.now())
        assert first.subject_ref == "claim-2026-000001"
        assert root_at(session, 37) == tree.root()
        assert root_at(session, 20) == tree.root(20)
        # Tiles of 4 levels: 3 at the bottom (16 + 16 + 5 leaves), 1 above (2 nodes of level 4).
        tiles = session.execute(select(LogTile.level, LogTile.idx, LogTile.hashes)).all()
        assert sorted((t, j, len(h) // 32) for t, j, h in tiles) == [
            (0, 0, 30),
            (0, 1, 30),
            (0, 2, 5 + 2 + 1),
            (1, 0, 2 + 1),
        ]


def test_proofs_from_stored_nodes_equal_the_reference_for_random_sizes(ctx: ServiceContext) -> None:
    rng = random.Random(9162)
    data: list[bytes] = []
    for chunk in (1, 2, 5, 64, 129, 300):  # integrated in uneven batches
        data += bulk(ctx, chunk, start=len(data))
        integrate_pending(ctx)
    tree = MemoryTree.from_entries(data)
    with ctx.reading() as session:
        for _ in range(150):
            size = rng.randint(1, len(data))
            index = rng.randrange(size)
            old = rng.randint(0, size)
            assert inclusion_proof_at(session, index, size) == tree.inclusion_proof(index, size)
            assert consistency_proof_between(session, old, size) == tree.consistency_proof(
                old, size
            )
        assert leaf_index_of(session, hash_leaf(data[77]), len(data)) == 77
        assert hash_tile(session, 0, 0, 256) == [tree.leaf_hash(i) for i in range(256)]
        assert hash_tile(session, 0, 1, 245) == [tree.leaf_hash(i) for i in range(256, 501)]
        assert hash_tile(session, 0, 1, 256) == []  # only 501 leaves
        assert hash_tile(session, 1, 0, 1) == tree.read_nodes([NodeId(8, 0)])
        assert hash_tile(session, 1, 0, 2) == []
        with pytest.raises(LogError, match="tree size 502 is beyond the log's size 501"):
            inclusion_proof_at(session, 0, 502)
        with pytest.raises(DomainError, match="no leaf with hash"):
            leaf_index_of(session, b"\x00" * 32, len(data))


def test_growing_a_leaf_at_a_time_rewrites_partial_tiles_correctly(ctx: ServiceContext) -> None:
    data = [canonical_leaf("evidence", evidence(n)) for n in range(70)]
    tree = MemoryTree.from_entries(data)
    for size in range(1, 71):
        with ctx.sessions.begin() as session:
            append_leaves(
                session,
                at=ctx.clock.now(),
                leaves=[PendingLeaf("evidence", data[size - 1], "claim", "claim-2026-000001")],
            )
        with ctx.reading() as session:
            assert root_at(session, size) == tree.root(size)
            assert inclusion_proof_at(session, size // 2, size) == tree.inclusion_proof(
                size // 2, size
            )
            assert consistency_proof_between(session, size // 3, size) == (
                tree.consistency_proof(size // 3, size)
            )


def reference_tiles(tree: MemoryTree) -> dict[tuple[int, int], bytes]:
    """Every stored tile of `tree`, built from the in-memory reference tree: tile (t, j) holds
    the complete nodes of levels 4t .. 4t + 3 over bottom nodes 16j .. 16j + 15."""
    size, tiles = tree.size, {}
    t = 0
    while size >> (STORAGE_HEIGHT * t):
        complete = size >> (STORAGE_HEIGHT * t)
        for j in range((complete + STORAGE_WIDTH - 1) // STORAGE_WIDTH):
            width = min(STORAGE_WIDTH, complete - j * STORAGE_WIDTH)
            rows = [
                tree.read_nodes(
                    [
                        NodeId(STORAGE_HEIGHT * t + row, j * (STORAGE_WIDTH >> row) + position)
                        for position in range(width >> row)
                    ]
                )
                for row in range(STORAGE_HEIGHT)
            ]
            tiles[(t, j)] = encode_storage_tile(rows)
        t += 1
    return tiles


def stored_tiles(ctx: ServiceContext) -> dict[tuple[int, int], bytes]:
    with ctx.reading() as session:
        rows = session.execute(select(LogTile.level, LogTile.idx, LogTile.hashes)).all()
    return {(int(t), int(j)): bytes(h) for t, j, h in rows}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_appends_in_generated_batches_store_the_reference_tiles_roots_and_proofs(
    ctx: ServiceContext, seed: int
) -> None:
    """Bulk appends and sequencer runs in generated batch sizes (single leaves, tile-sized and
    tile-crossing batches, larger ones) store byte for byte the tiles, roots and proofs of the
    reference tree, after every batch."""
    rng = random.Random(seed)
    tree = MemoryTree()
    sizes = [1, 1, 2, 3, 15, 16, 17, 31, 255, 256, 257, 1, 4095, 4097, 600]
    rng.shuffle(sizes)
    sizes += [rng.randint(1, 300) for _ in range(12)]
    data: list[bytes] = []
    for count in sizes:
        batch = [
            canonical_leaf("evidence", evidence(n)) for n in range(len(data), len(data) + count)
        ]
        data += batch
        if rng.random() < 0.3:  # the outbox path: queued, then sequenced
            bulk(ctx, count, start=len(data) - count)
            integrate_pending(ctx)
        else:
            with ctx.sessions.begin() as session:
                append_leaves(
                    session,
                    at=ctx.clock.now(),
                    leaves=[
                        PendingLeaf("evidence", d, "claim", "claim-2026-000001") for d in batch
                    ],
                )
        for entry in batch:
            tree.append_entry(entry)
        assert stored_tiles(ctx) == reference_tiles(tree)
        with ctx.reading() as session:
            assert root_at(session, tree.size) == tree.root()
    with ctx.reading() as session:
        for _ in range(100):
            size = rng.randint(1, tree.size)
            index, old = rng.randrange(size), rng.randint(0, size)
            assert inclusion_proof_at(session, index, size) == tree.inclusion_proof(index, size)
            assert consistency_proof_between(session, old, size) == tree.consistency_proof(
                old, size
            )


def test_proofs_have_at_most_ceil_log2_n_hashes(ctx: ServiceContext) -> None:
    bulk(ctx, 1000)
    integrate_all(ctx)
    with ctx.reading() as session:
        assert max(len(inclusion_proof_at(session, i, 1000)) for i in range(0, 1000, 7)) == 10


def test_a_rolled_back_transaction_leaves_no_leaf(ctx: ServiceContext) -> None:
    queue(ctx, 1)
    with pytest.raises(RuntimeError), ctx.sessions.begin() as session:
        queue_leaf(
            session,
            at=ctx.clock.now(),
            leaf_type="evidence",
            fields=evidence(2),
            subject_type="claim",
            subject_ref="claim-2026-000001",
        )
        raise RuntimeError("the decision failed after its leaf was queued")
    queue(ctx, 3)
    assert integrate_all(ctx).size == 2
    expected = [hash_leaf(canonical_leaf("evidence", evidence(n))) for n in (1, 3)]
    assert [h for _, h in indexed_hashes(ctx)] == expected


def test_concurrent_producers_and_sequencers_never_duplicate_or_skip_an_index(
    ctx: ServiceContext,
) -> None:
    producers, per_producer, sequencers = 4, 40, 3
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce(worker: int) -> None:
        try:
            for n in range(per_producer):
                queue(ctx, worker * 1000 + n, claim=f"claim-2026-{worker:06d}")
        except BaseException as error:
            errors.append(error)

    def sequence() -> None:
        try:
            while not stop.is_set():
                integrate_pending(ctx, max_batch=7)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(producers)]
    threads += [threading.Thread(target=sequence) for _ in range(sequencers)]
    for thread in threads:
        thread.start()
    for thread in threads[:producers]:
        thread.join(timeout=60)
    stop.set()
    for thread in threads[producers:]:
        thread.join(timeout=60)
    assert errors == []
    final = integrate_all(ctx)
    rows = indexed_hashes(ctx)
    total = producers * per_producer
    assert [i for i, _ in rows] == list(range(total))
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).where(LogEntry.leaf_index.is_(None))) == 0
        assert root_at(session, total) == final.root_hash
    assert final.root_hash == MemoryTree(h for _, h in rows).root()


def test_publishing_without_witnesses_signs_and_serves_a_bundle(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    config = LogConfig(LOG_KEY)
    for n in range(5):
        queue(ctx, n, claim="claim-2026-000007" if n % 2 else "claim-2026-000008")
    first = publish_checkpoint(ctx, config)
    assert (first.integrated, first.checkpoint.size, first.checkpoint.published) == (5, 5, True)
    assert first.checkpoint.note.startswith(f"{ORIGIN}\n5\n")
    clock.advance(timedelta(minutes=5))
    again = publish_checkpoint(ctx, config)
    assert again.checkpoint == first.checkpoint  # nothing new: the same checkpoint
    latest = latest_checkpoint(ctx)
    assert latest is not None and latest.size == 5

    queue(ctx, 9, claim="claim-2026-000007")
    publish_checkpoint(ctx, config)
    bundle = proof_bundle(ctx, "claim", "claim-2026-000007", older_size=5)
    assert [e.leaf_index for e in bundle.entries] == [1, 3, 5]
    report = verify_subject_bundle(parse_subject_bundle(bundle.to_json()))
    assert report.ok, report.failures
    assert len(report.checks) == 5  # signatures, three leaves, consistency
    with pytest.raises(DomainError, match="no leaf about claim 'claim-2026-999999'"):
        proof_bundle(ctx, "claim", "claim-2026-999999")


def test_no_bundle_before_the_first_checkpoint(ctx: ServiceContext) -> None:
    queue(ctx, 1)
    with pytest.raises(DomainError, match="has not published a checkpoint"):
        proof_bundle(ctx, "claim", "claim-2026-000001")
    assert latest_checkpoint(ctx) is None


def test_key_files_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    write_key_file(path, LOG_KEY)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_key_file(path) == LOG_KEY
    with pytest.raises(FileExistsError):
        write_key_file(path, LOG_KEY)
    witness = generate_witness_key("w1.example", seed=b"\x01" * 32).verifier()
    settings = Settings(
        secret_key="test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd",
        log_key_file=path,
        witnesses=f"w1={witness.encode()}@http://127.0.0.1:9/",
        witness_quorum=1,
    )
    config = load_log_config(settings)
    assert config.origin == ORIGIN and config.witnesses[0].url == "http://127.0.0.1:9"
    with pytest.raises(LogError, match="quorum of 2 can never be met with 1 witnesses"):
        load_log_config(settings.model_copy(update={"witness_quorum": 2}))
    with pytest.raises(LogError, match="MUTUALAID_LOG_KEY_FILE is not set"):
        load_log_config(Settings(secret_key="test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd"))
    demo = load_log_config(Settings(demo=True, data_dir=tmp_path / "demo"))
    assert demo.origin == "mutualaid.example/log"
    assert load_log_config(Settings(demo=True, data_dir=tmp_path / "demo")).signer == demo.signer
    with pytest.raises(LogError, match="is not name=verifierkey@http"):
        parse_witnesses("w1=nokey")
    with pytest.raises(LogError, match="is not a cosignature/v1"):
        parse_witnesses(f"w1={LOG_KEY.verifier().encode()}@http://127.0.0.1:9")
    with pytest.raises(LogError, match="but MUTUALAID_LOG_ORIGIN is 'other'"):
        load_log_config(
            Settings(
                secret_key="test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd",
                log_key_file=path,
                log_origin="other",
            )
        )
