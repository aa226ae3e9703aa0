"""The public log over HTTP: checkpoint, tlog-tiles, JSON proofs that verify against the
checkpoint, leaves, and proof bundles."""

from __future__ import annotations

import base64
import gzip
import hashlib

from fastapi.testclient import TestClient

from mutualaid.api.app import create_app
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.services.transparency.log import PendingLeaf, append_leaves
from mutualaid.transparency.checkpoints import open_checkpoint
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import MemoryTree, NodeId, verify_consistency, verify_inclusion
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.tiles import decode_entry_bundle
from mutualaid.transparency.verification import parse_subject_bundle, verify_subject_bundle

LOG_KEY = generate_signer_key("mutualaid.example/log", seed=b"\x42" * 32)


def leaves(start: int, count: int) -> list[bytes]:
    return [
        canonical_leaf(
            "evidence",
            {
                "claim_ref": f"claim-2026-{n % 7:06d}",
                "size": n,
                "media_type": "image/jpeg",
                "sha256": hashlib.sha256(str(n).encode()).hexdigest(),
            },
        )
        for n in range(start, start + count)
    ]


def grow(ctx: ServiceContext, data: list[bytes]) -> None:
    with ctx.sessions.begin() as session:
        append_leaves(
            session,
            at=ctx.clock.now(),
            leaves=[
                PendingLeaf("evidence", d, "claim", f"claim-2026-{n % 7:06d}")
                for n, d in enumerate(data, start=0)
            ],
        )
    publish_checkpoint(ctx, LogConfig(LOG_KEY))


def b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_an_empty_log_has_no_checkpoint(ctx: ServiceContext) -> None:
    client = TestClient(create_app(ctx))
    assert client.get("/log/checkpoint").status_code == 404
    answer = client.get("/api/v1/log/proofs/inclusion", params={"index": 0})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "no_checkpoint"


def test_the_public_log_serves_verifiable_checkpoints_tiles_proofs_and_bundles(
    ctx: ServiceContext,
) -> None:
    data = leaves(0, 300)
    grow(ctx, data[:200])
    older = TestClient(create_app(ctx)).get("/log/checkpoint").text
    # Leaves for claim n % 7, so indexes 200.. continue the same pattern.
    with ctx.sessions.begin() as session:
        append_leaves(
            session,
            at=ctx.clock.now(),
            leaves=[
                PendingLeaf("evidence", d, "claim", f"claim-2026-{n % 7:06d}")
                for n, d in enumerate(data[200:], start=200)
            ],
        )
    publish_checkpoint(ctx, LogConfig(LOG_KEY))
    tree = MemoryTree.from_entries(data)
    client = TestClient(create_app(ctx))

    note = client.get("/log/checkpoint")
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    checkpoint = open_checkpoint(note.text, LOG_KEY.verifier()).checkpoint
    assert (checkpoint.size, checkpoint.root_hash) == (300, tree.root())
    summary = client.get("/api/v1/log/checkpoint").json()
    assert summary["size"] == 300 and summary["root_hash_hex"] == tree.root().hex()

    # C2SP tlog-tiles.
    full = client.get("/log/tile/0/000")
    assert full.content == b"".join(tree.leaf_hash(i) for i in range(256))
    assert "immutable" in full.headers["cache-control"]
    assert client.get("/log/tile/0/001.p/44").content == b"".join(
        tree.leaf_hash(i) for i in range(256, 300)
    )
    assert client.get("/log/tile/1/000.p/1").content == tree.read_nodes([NodeId(8, 0)])[0]
    assert decode_entry_bundle(client.get("/log/tile/entries/000").content) == data[:256]
    for missing in ("0/001", "0/1", "0/x000/001", "0/000.p/256", "64/000", "entries/001.p/45"):
        assert client.get(f"/log/tile/{missing}").status_code == 404, missing

    # Inclusion by index and by hash, consistency: all verify against the checkpoint.
    by_index = client.get("/api/v1/log/proofs/inclusion", params={"index": 123}).json()
    assert by_index["checkpoint"] == note.text and by_index["tree_size"] == 300
    verify_inclusion(
        leaf_hash=tree.leaf_hash(123),
        index=123,
        size=300,
        proof=b64(by_index["proof"]),
        root=checkpoint.root_hash,
    )
    by_hash = client.get(
        "/api/v1/log/proofs/inclusion", params={"leaf_hash": tree.leaf_hash(299).hex(), "size": 300}
    ).json()
    assert by_hash["leaf_index"] == 299
    consistency = client.get("/api/v1/log/proofs/consistency", params={"old": 200}).json()
    old = open_checkpoint(older, LOG_KEY.verifier()).checkpoint
    assert consistency["old_checkpoint"] == older
    verify_consistency(
        old_size=200,
        new_size=300,
        old_root=old.root_hash,
        new_root=checkpoint.root_hash,
        proof=b64(consistency["proof"]),
    )

    # Leaves, a page at a time.
    page = client.get("/api/v1/log/leaves", params={"start": 250}).json()
    assert [leaf["index"] for leaf in page["leaves"]] == list(range(250, 300))
    assert page["next"] is None
    assert page["leaves"][0]["leaf"]["claim_ref"] == "claim-2026-000005"
    assert base64.b64decode(page["leaves"][0]["leaf_data"]) == data[250]
    first = client.get("/api/v1/log/leaves", params={"start": 0, "end": 5000}).json()
    assert len(first["leaves"]) == 300 and first["next"] is None

    # A member's bundle: every leaf of their claim, each proven at the checkpoint.
    answer = client.get("/api/v1/log/bundles/claim/claim-2026-000003", params={"older_size": 200})
    assert answer.status_code == 200
    assert "proof-claim-claim-2026-000003.json" in answer.headers["content-disposition"]
    bundle = parse_subject_bundle(answer.content)
    assert [e.leaf_index for e in bundle.entries] == list(range(3, 300, 7))
    assert verify_subject_bundle(bundle).ok


def test_bad_proof_requests_name_the_parameter(ctx: ServiceContext) -> None:
    grow(ctx, leaves(0, 10))
    client = TestClient(create_app(ctx))

    def error(path: str, **params: object) -> tuple[int, str, str | None]:
        answer = client.get(path, params=params)
        body = answer.json()["error"]
        return answer.status_code, body["code"], body["field"]

    inclusion = "/api/v1/log/proofs/inclusion"
    assert error(inclusion) == (400, "bad_query", "index")
    assert error(inclusion, index=10) == (400, "index_out_of_range", "index")
    assert error(inclusion, index=0, size=11) == (400, "size_beyond_log", "size")
    assert error(inclusion, leaf_hash="00" * 32) == (404, "leaf_not_found", "leaf_hash")
    assert error(inclusion, leaf_hash="XYZ")[:2] == (422, "invalid_request")
    assert error("/api/v1/log/proofs/consistency", old=11) == (400, "bad_sizes", "old")
    assert error("/api/v1/log/bundles/claim/claim-2026-999999") == (404, "no_leaves", "subject_ref")


IMMUTABLE = "public, max-age=31536000, immutable"


def raw_get(
    client: TestClient, path: str, accept_encoding: str
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the body exactly as sent (httpx would otherwise decompress it)."""
    with client.stream("GET", path, headers={"Accept-Encoding": accept_encoding}) as answer:
        return answer.status_code, dict(answer.headers), b"".join(answer.iter_raw())


def test_tiles_and_entry_bundles_are_immutable_and_the_checkpoint_is_not(
    ctx: ServiceContext,
) -> None:
    """tlog-tiles: tile and entry bundle paths never change content (a partial one names its
    width), so caches may keep them for a year; the checkpoint must be fetched fresh."""
    grow(ctx, leaves(0, 300))
    client = TestClient(create_app(ctx))
    assert client.get("/log/checkpoint").headers["cache-control"] == "no-cache"
    for path in ("0/000", "0/001.p/44", "1/000.p/1", "entries/000", "entries/001.p/44"):
        answer = client.get(f"/log/tile/{path}", headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == IMMUTABLE, path
        assert answer.headers["content-type"] == "application/octet-stream", path
    # A partial tile's bytes are the first W hashes of the full one, as the path promises.
    assert (
        client.get("/log/tile/0/000.p/17").content
        == client.get("/log/tile/0/000").content[: 17 * 32]
    )
    # What does not exist yet must not be cached as if it were final.
    missing = client.get("/log/tile/entries/001.p/45")
    assert missing.status_code == 404 and "immutable" not in missing.headers.get(
        "cache-control", ""
    )


def test_entry_bundles_are_gzipped_when_the_client_accepts_gzip(ctx: ServiceContext) -> None:
    data = leaves(0, 300)
    grow(ctx, data)
    client = TestClient(create_app(ctx))
    for path, entries in (("entries/000", data[:256]), ("entries/001.p/44", data[256:])):
        status, plain_headers, plain = raw_get(client, f"/log/tile/{path}", "identity")
        assert status == 200 and "content-encoding" not in plain_headers
        assert plain_headers["vary"] == "Accept-Encoding"
        assert decode_entry_bundle(plain) == entries
        for accepted in ("gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.5", "*", "x-gzip"):
            status, headers, sent = raw_get(client, f"/log/tile/{path}", accepted)
            assert status == 200, accepted
            assert headers["content-encoding"] == "gzip", accepted
            assert headers["vary"] == "Accept-Encoding"
            assert headers["cache-control"] == IMMUTABLE
            assert int(headers["content-length"]) == len(sent) < len(plain)
            assert gzip.decompress(sent) == plain, accepted
        for refused in ("identity", "br", "gzip;q=0, identity", "*;q=0", "gzip;q=0.000, *"):
            _, headers, sent = raw_get(client, f"/log/tile/{path}", refused)
            assert "content-encoding" not in headers and sent == plain, refused
    # Hash tiles are random bytes: never compressed, whatever the client accepts.
    _, headers, tile = raw_get(client, "/log/tile/0/000", "gzip")
    assert "content-encoding" not in headers and len(tile) == 256 * 32
