"""A witness server speaking C2SP tlog-witness (https://c2sp.org/tlog-witness) ``add-checkpoint``.

This module is the package's one adapter (HTTP and its own SQLite file); the decision itself is
`witnesses.cosign`. Run it with ``mutualaid witness serve``. It keeps, per log origin, the last
checkpoint it cosigned, in its own SQLite file (never the operator's database), and updates it in
the same SQLite transaction that decides to cosign, so a crash can never make it forget a
checkpoint it vouched for.

Request body: ``old <size>\\n``, one base64 consistency-proof hash per line, an empty line, then
the signed checkpoint note. Answers (each error body is ``<refusal code>: <message>``):

=====  =========================================================================================
200    one cosignature line ``— <witness name> <base64>`` (text/plain)
400    ``malformed`` request or checkpoint, or ``shrink``: the checkpoint is smaller than old size
403    ``bad_signature``: not validly signed by the log's key
404    ``unknown_origin``: this witness does not follow that log
409    old size is not the size this witness last cosigned: the body is that size and a newline,
       ``Content-Type: text/x.tlog.size`` exactly, with no charset parameter (the client retries
       with a proof from it); or ``fork``: same size as the one cosigned, different root hash
422    ``bad_proof``: the consistency proof does not verify (a fork with a larger size shows so)
=====  =========================================================================================

Every other answer is ``text/plain; charset=utf-8`` (a cosignature line holds U+2014). The
Content-Type header is written byte for byte as given: Starlette would add ``; charset=utf-8`` to
any ``text/`` media type, which turns the conflict's ``text/x.tlog.size`` into something a strict
client does not recognise.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from mutualaid.transparency.checkpoints import parse_checkpoint
from mutualaid.transparency.errors import RefusalCode, VerificationError, WitnessRefusal
from mutualaid.transparency.merkle import HASH_SIZE
from mutualaid.transparency.notes import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SignerKey,
    VerifierKey,
    open_note,
    parse_note,
)
from mutualaid.transparency.witnesses import WitnessState, cosign

MAX_BODY_BYTES = 64 * 1024
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")

_STATUS = {
    RefusalCode.MALFORMED: 400,
    RefusalCode.SHRINK: 400,
    RefusalCode.BAD_SIGNATURE: 403,
    RefusalCode.UNKNOWN_ORIGIN: 404,
    RefusalCode.FORK: 409,
    RefusalCode.BAD_PROOF: 422,
}


class WitnessStore:
    """The witness's memory: per origin, the last cosigned size, root hash and note."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")  # a forgotten cosignature is a hole
        self._connection.execute("PRAGMA busy_timeout=30000")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS witnessed (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " root_hash BLOB NOT NULL, note TEXT NOT NULL, updated_at INTEGER NOT NULL)"
        )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Serialise deciders in this process (lock) and across processes (BEGIN IMMEDIATE)."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def state(self, origin: str, connection: sqlite3.Connection | None = None) -> WitnessState:
        row = (
            (connection or self._connection)
            .execute("SELECT size, root_hash FROM witnessed WHERE origin = ?", (origin,))
            .fetchone()
        )
        return WitnessState.initial(origin) if row is None else WitnessState(origin, row[0], row[1])

    def states(self) -> list[tuple[str, int, bytes]]:
        with self._lock:
            return [
                (o, s, bytes(r))
                for o, s, r in self._connection.execute(
                    "SELECT origin, size, root_hash FROM witnessed ORDER BY origin"
                )
            ]

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True, slots=True)
class WitnessReply:
    status: int
    body: str
    content_type: str = TEXT_CONTENT_TYPE

    def response(self) -> Response:
        """The HTTP answer, its Content-Type exactly `content_type` (no parameter added)."""
        return Response(
            self.body.encode("utf-8"),
            status_code=self.status,
            headers={"Content-Type": self.content_type},
        )


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    note: str


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse a tlog-witness add-checkpoint body, refusing anything non-canonical."""
    if len(body) > MAX_BODY_BYTES:
        raise VerificationError(f"request body is over {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise VerificationError(f"request body is not UTF-8 (byte {error.start})") from None
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise VerificationError("request has no empty line before the checkpoint")
    lines = head.split("\n")
    old = lines[0].removeprefix("old ")
    if not lines[0].startswith("old ") or not _DECIMAL.fullmatch(old):
        raise VerificationError(f"first line {lines[0]!r} is not 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise VerificationError(
            f"consistency proof has {len(lines) - 1} lines, more than {MAX_PROOF_LINES}"
        )
    proof = []
    for number, line in enumerate(lines[1:], 1):
        try:
            value = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise VerificationError(f"proof line {number} is not base64") from None
        if len(value) != HASH_SIZE or base64.b64encode(value).decode() != line:
            raise VerificationError(f"proof line {number} is not canonical base64 of 32 bytes")
        proof.append(value)
    return AddCheckpointRequest(int(old), tuple(proof), note)


def add_checkpoint(
    body: bytes,
    store: WitnessStore,
    logs: dict[str, VerifierKey],
    signer: SignerKey,
    now_unix: int,
) -> WitnessReply:
    """Decide on one add-checkpoint request; persist the new state before answering."""

    def refuse(code: RefusalCode, message: str) -> WitnessReply:
        return WitnessReply(_STATUS[code], f"{code.value}: {message}\n")

    try:
        request = parse_add_checkpoint(body)
        checkpoint = parse_checkpoint(parse_note(request.note).text)
    except VerificationError as error:
        return refuse(RefusalCode.MALFORMED, error.message)
    log_key = logs.get(checkpoint.origin)
    if log_key is None:
        return refuse(
            RefusalCode.UNKNOWN_ORIGIN,
            f"this witness does not follow the log '{checkpoint.origin}'",
        )
    try:
        open_note(request.note, [log_key])
    except VerificationError as error:
        return refuse(RefusalCode.BAD_SIGNATURE, error.message)
    if request.old_size > checkpoint.size:
        return refuse(
            RefusalCode.SHRINK,
            f"checkpoint size {checkpoint.size} is smaller than "
            f"the old size {request.old_size}: a log can only grow",
        )
    with store.transaction() as connection:
        state = store.state(checkpoint.origin, connection)
        if request.old_size != state.size:
            return WitnessReply(409, f"{state.size}\n", SIZE_CONTENT_TYPE)
        try:
            result = cosign(state, request.note, request.proof, log_key, signer, now_unix)
        except WitnessRefusal as refusal:
            message = refusal.message
            if refusal.code is RefusalCode.BAD_PROOF:
                message = (
                    f"cannot verify that size {checkpoint.size} extends size {state.size} "
                    f"this witness cosigned (a fork of the log, or a bad proof): {message}"
                )
            return refuse(refusal.code, message)
        connection.execute(
            "INSERT INTO witnessed (origin, size, root_hash, note, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
            "root_hash = excluded.root_hash, note = excluded.note, updated_at = excluded.updated_at",
            (checkpoint.origin, result.state.size, result.state.root_hash, request.note, now_unix),
        )
    return WitnessReply(200, result.line)


def create_witness_app(
    signer: SignerKey,
    log_keys: Sequence[VerifierKey],
    store: WitnessStore,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The witness's HTTP app: POST /add-checkpoint, and GET / describing the witness."""
    if signer.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
        raise ValueError(
            f"witness key '{signer.label}' is not a cosignature/v1 (0x04) key; "
            "create one with `mutualaid witness keygen`"
        )
    logs = {key.name: key for key in log_keys}
    app = FastAPI(title="mutualaid witness", description=__doc__)

    @app.post("/add-checkpoint", response_class=Response)
    async def add(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:  # refused by parse_add_checkpoint; read no further
                break
        reply = await run_in_threadpool(
            add_checkpoint, bytes(body), store, logs, signer, int(clock())
        )
        return reply.response()

    @app.get("/")
    def describe() -> dict[str, Any]:
        """The witness's verifier key and, per followed log, the last size it cosigned."""
        seen = {origin: (size, root) for origin, size, root in store.states()}
        return {
            "witness": signer.name,
            "verifier_key": signer.verifier().encode(),
            "logs": [
                {
                    "origin": origin,
                    "log_key": key.encode(),
                    "size": seen.get(origin, (0, b""))[0],
                    "root_hash": base64.b64encode(seen[origin][1]).decode()
                    if origin in seen
                    else None,
                }
                for origin, key in logs.items()
            ],
        }

    return app
