"""Witnesses over HTTP (C2SP tlog-witness): each refusal has its status and its code, state
survives a restart, and a deployment publishes a checkpoint only with its quorum — also with real
witness processes on 127.0.0.1, one of which saw a forked log."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mutualaid.db.models import LogCheckpoint
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import (
    LogConfig,
    WitnessEndpoint,
    proof_bundle,
    publish_checkpoint,
    write_key_file,
)
from mutualaid.services.transparency.log import queue_leaf
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import SignerKey, generate_signer_key, open_note
from mutualaid.transparency.verification import TrustPolicy, verify_subject_bundle
from mutualaid.transparency.witness_server import (
    MAX_BODY_BYTES,
    WitnessStore,
    create_witness_app,
)
from mutualaid.transparency.witnesses import generate_witness_key

ORIGIN = "mutualaid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x42" * 32)
WITNESS_KEYS = [
    generate_witness_key(f"w{n}.example", seed=bytes([0x60 + n]) * 32) for n in range(3)
]
NOW = 1_770_000_000
TREE = MemoryTree.from_entries(f"leaf {n}".encode() for n in range(20))
FORK = MemoryTree.from_entries(f"forged {n}".encode() for n in range(20))


def note(size: int, tree: MemoryTree = TREE, key: SignerKey = LOG_KEY) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), key)


def body(
    old: int,
    new: int,
    tree: MemoryTree = TREE,
    proof: list[bytes] | None = None,
    checkpoint: str | None = None,
) -> bytes:
    hashes = tree.consistency_proof(old, new) if proof is None else proof
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
    return f"old {old}\n{lines}\n{checkpoint or note(new, tree)}".encode()


def content_types(response: httpx.Response) -> list[bytes]:
    """Every Content-Type header exactly as sent, bytes and all."""
    return [value for name, value in response.headers.raw if name.lower() == b"content-type"]


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[TestClient]:
    store = WitnessStore(tmp_path / "witness.sqlite")
    app = create_witness_app(WITNESS_KEYS[0], [LOG_KEY.verifier()], store, clock=lambda: NOW)
    with TestClient(app) as client:
        yield client
    store.close()


def test_witness_cosigns_a_growing_log_and_remembers_across_restarts(
    witness: TestClient, tmp_path: Path
) -> None:
    first = witness.post("/add-checkpoint", content=body(0, 5))
    assert first.status_code == 200, first.text
    opened = open_note(note(5) + first.text, [WITNESS_KEYS[0].verifier()])
    assert opened.verified_by(WITNESS_KEYS[0].verifier()) is not None
    assert witness.post("/add-checkpoint", content=body(5, 12)).status_code == 200
    # A new process over the same state file knows it is at 12.
    store = WitnessStore(tmp_path / "witness.sqlite")
    restarted = create_witness_app(WITNESS_KEYS[0], [LOG_KEY.verifier()], store)
    stale = TestClient(restarted).post("/add-checkpoint", content=body(5, 13))
    store.close()
    assert (stale.status_code, stale.content) == (409, b"12\n")
    assert content_types(stale) == [b"text/x.tlog.size"]
    assert witness.get("/").json()["logs"][0]["size"] == 12


@pytest.mark.parametrize(
    ("request_body", "status", "start"),
    [
        (lambda: body(8, 8, FORK), 409, "fork: checkpoint at size 8 has root"),
        (lambda: body(8, 12, FORK), 422, "bad_proof: cannot verify that size 12 extends size 8"),
        (lambda: body(8, 12, proof=TREE.consistency_proof(8, 12)[:-1]), 422, "bad_proof"),
        (
            lambda: body(8, 5, proof=[]),
            400,
            "shrink: checkpoint size 5 is smaller than the old size 8",
        ),
        (
            lambda: body(0, 5, checkpoint=note(5, key=generate_signer_key(ORIGIN))),
            403,
            "bad_signature: note has no signature by a known key",
        ),
        (
            lambda: body(
                0,
                5,
                checkpoint=sign_checkpoint(
                    Checkpoint("other.example/log", 5, TREE.root(5)),
                    generate_signer_key("other.example/log"),
                ),
            ),
            404,
            "unknown_origin: this witness does not follow the log 'other.example/log'",
        ),
        (lambda: b"old 08\n\n" + note(5).encode(), 400, "malformed: first line 'old 08'"),
        (lambda: b"old 0\n", 400, "malformed: request has no empty line before the checkpoint"),
        (lambda: b"old 0\n\n" + note(5).encode()[:-90], 400, "malformed: note"),
        (lambda: b"old 0\nAAAA\n\n" + note(5).encode(), 400, "malformed: proof line 1 is not"),
    ],
)
def test_witness_refuses_with_a_status_and_a_code(
    witness: TestClient, request_body: object, status: int, start: str
) -> None:
    assert witness.post("/add-checkpoint", content=body(0, 8)).status_code == 200
    assert callable(request_body)
    refused = witness.post("/add-checkpoint", content=request_body())
    assert refused.status_code == status, refused.text
    assert refused.text.startswith(start), refused.text
    assert refused.content.endswith(b"\n")
    # Only the size conflict is text/x.tlog.size: a fork is a 409 a client must not retry.
    assert content_types(refused) == [b"text/plain; charset=utf-8"]
    # A refusal changes nothing: the witness still extends its size-8 checkpoint.
    assert witness.post("/add-checkpoint", content=body(8, 9)).status_code == 200


def test_witness_answers_are_byte_exact_as_tlog_witness_requires(witness: TestClient) -> None:
    cosigned = witness.post("/add-checkpoint", content=body(0, 5))
    assert cosigned.status_code == 200
    assert content_types(cosigned) == [b"text/plain; charset=utf-8"]
    # One note signature line per key: an em dash, the witness name, base64, a newline.
    line = cosigned.content.decode("utf-8")
    assert line.startswith("\u2014 w0.example ") and line.endswith("\n") and line.count("\n") == 1

    # A client that does not know the witness's size asks with old 0 and learns it from the 409.
    for old in (0, 3):
        conflict = witness.post("/add-checkpoint", content=body(old, 8))
        assert (conflict.status_code, conflict.content) == (409, b"5\n")
        assert content_types(conflict) == [b"text/x.tlog.size"]
    assert witness.post("/add-checkpoint", content=body(5, 8)).status_code == 200

    # Only POST: a GET of add-checkpoint is not a way to read anything.
    assert witness.get("/add-checkpoint").status_code == 405


def test_a_first_checkpoint_with_a_proof_from_size_0_is_unprocessable(witness: TestClient) -> None:
    refused = witness.post("/add-checkpoint", content=body(0, 5, proof=[TREE.root(1)]))
    assert refused.status_code == 422, refused.text
    assert refused.text.startswith("bad_proof: ")
    assert content_types(refused) == [b"text/plain; charset=utf-8"]


def test_an_oversized_request_is_refused_without_reading_it_all(witness: TestClient) -> None:
    huge = b"old 0\n" + b"A" * (2 * MAX_BODY_BYTES)
    refused = witness.post("/add-checkpoint", content=huge)
    assert refused.status_code == 400
    assert refused.text == f"malformed: request body is over {MAX_BODY_BYTES} bytes\n"


def queue(ctx: ServiceContext, n: int) -> None:
    with ctx.sessions.begin() as session:
        queue_leaf(
            session,
            at=ctx.clock.now(),
            leaf_type="evidence",
            fields={
                "claim_ref": "claim-2026-000001",
                "size": n,
                "sha256": hashlib.sha256(str(n).encode()).hexdigest(),
                "media_type": "application/pdf",
            },
            subject_type="claim",
            subject_ref="claim-2026-000001",
        )


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[tuple[tuple[WitnessEndpoint, ...], httpx.Client]]:
    """Three witness apps reached through one httpx client, routed by host name; w2 is down."""
    stores = [WitnessStore(tmp_path / f"w{n}.sqlite") for n in range(3)]
    clients = {
        f"w{n}.test": TestClient(
            create_witness_app(key, [LOG_KEY.verifier()], stores[n], clock=lambda: NOW)
        )
        for n, key in enumerate(WITNESS_KEYS)
    }
    endpoints = tuple(
        WitnessEndpoint(f"w{n}", key.verifier(), f"http://w{n}.test")
        for n, key in enumerate(WITNESS_KEYS)
    )

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "w2.test":
            raise httpx.ConnectError("connection refused", request=request)
        answer = clients[request.url.host].post(request.url.path, content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with httpx.Client(transport=httpx.MockTransport(route)) as http:
        yield endpoints, http
    for store in stores:
        store.close()


def test_a_checkpoint_is_published_only_with_the_quorum(
    ctx: ServiceContext, in_process: tuple[tuple[WitnessEndpoint, ...], httpx.Client]
) -> None:
    witnesses, http = in_process
    for n in range(3):
        queue(ctx, n)
    strict = publish_checkpoint(ctx, LogConfig(LOG_KEY, witnesses, quorum=3), http=http)
    assert not strict.checkpoint.published and strict.checkpoint.cosigners == 2
    assert [o.cosigned for o in strict.outcomes] == [True, True, False]
    assert strict.outcomes[2].detail.startswith("unreachable: ConnectError")

    config = LogConfig(LOG_KEY, witnesses, quorum=2)
    queue(ctx, 3)
    result = publish_checkpoint(ctx, config, http=http)
    assert result.checkpoint.published and result.checkpoint.size == 4
    with ctx.reading() as session:
        rows = session.scalars(select(LogCheckpoint).order_by(LogCheckpoint.size)).all()
        assert [(r.size, r.published) for r in rows] == [(3, False), (4, True)]
    bundle = proof_bundle(ctx, "claim", "claim-2026-000001")
    trust = TrustPolicy(ORIGIN, LOG_KEY.verifier(), tuple(w.key for w in witnesses), 2)
    assert verify_subject_bundle(bundle, trust).ok


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def witness_processes(tmp_path: Path) -> Iterator[list[WitnessEndpoint]]:
    processes, endpoints = [], []
    for n, key in enumerate(WITNESS_KEYS):
        write_key_file(tmp_path / f"w{n}.key", key)
        port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mutualaid",
                    "witness",
                    "serve",
                    "--key",
                    str(tmp_path / f"w{n}.key"),
                    "--state",
                    str(tmp_path / f"w{n}.sqlite"),
                    "--log-key",
                    LOG_KEY.verifier().encode(),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ},
            )
        )
        endpoints.append(WitnessEndpoint(f"w{n}", key.verifier(), f"http://127.0.0.1:{port}"))
    try:
        deadline = time.monotonic() + 30
        for endpoint, process in zip(endpoints, processes, strict=True):
            while True:
                try:
                    if httpx.get(endpoint.url + "/", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, f"witness {endpoint.name} did not start"
                time.sleep(0.1)
        yield endpoints
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
            if process.stderr:
                process.stderr.close()


def test_real_witness_processes_publish_with_two_of_three_when_one_saw_a_fork(
    ctx: ServiceContext, witness_processes: list[WitnessEndpoint]
) -> None:
    # Witness w2 was shown a forked history at size 3, signed by the log's own key.
    forked = MemoryTree.from_entries(f"forged {n}".encode() for n in range(3))
    shown = httpx.post(witness_processes[2].url + "/add-checkpoint", content=body(0, 3, forked))
    assert shown.status_code == 200, shown.text

    for n in range(6):
        queue(ctx, n)
    result = publish_checkpoint(ctx, LogConfig(LOG_KEY, tuple(witness_processes), quorum=2))
    assert result.checkpoint.published, result.outcomes
    assert result.checkpoint.cosigners == 2
    refused = result.outcomes[2]
    assert not refused.cosigned
    assert refused.detail.startswith(
        "refused (HTTP 422): bad_proof: cannot verify that size 6 extends size 3 this witness "
        "cosigned (a fork of the log, or a bad proof)"
    ), refused.detail
    # The honest witnesses keep following the log.
    queue(ctx, 6)
    again = publish_checkpoint(ctx, LogConfig(LOG_KEY, tuple(witness_processes), quorum=2))
    assert again.checkpoint.published and again.checkpoint.size == 7
    assert [o.cosigned for o in again.outcomes] == [True, True, False]
