"""Resumable uploads for a slow phone connection: the file comes in pieces, each one acknowledged,
so a dropped connection resumes from the last piece instead of starting again.

The browser (static/app.js) asks for an upload, sends pieces of 256 KiB with their offset, asks
where to resume after an error, and finishes; the finished file is then streamed into
`services.evidence.add_evidence` like a one-shot upload. Without JavaScript the form posts the
whole file in one request, which works too.

Pieces wait on disk encrypted (AES-256-GCM under a key derived from the deployment secret), so no
document lies in clear text even half-uploaded. A partial upload belongs to one account and one
claim and is dropped after a day.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.context import ServiceContext

PIECE_BYTES = 256 * 1024
MAX_BYTES = 20 * 1024 * 1024
EXPIRY_S = 24 * 3600
_RECORD = struct.Struct(">I")
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

#: Shared by the workers of one machine. Several machines behind one name need a shared folder here.
UPLOAD_DIR = Path(tempfile.gettempdir()) / "mutualaid-partial-uploads"


@dataclass(frozen=True, slots=True)
class PartialUpload:
    upload_id: str
    account_id: int
    claim_ref: str
    size: int
    media_type: str
    label: str
    received: int


def _key(ctx: ServiceContext) -> bytes:
    return bytes.fromhex(ctx.protector.identity_hash("mutualaid partial upload key v1"))


def _paths(upload_id: str) -> tuple[Path, Path]:
    if not 16 <= len(upload_id) <= 64 or not set(upload_id) <= _ID_CHARS:
        raise NotFound("upload_not_found", "there is no such upload", "upload_id")
    return UPLOAD_DIR / f"{upload_id}.json", UPLOAD_DIR / f"{upload_id}.part"


def _sweep() -> None:
    cutoff = time.time() - EXPIRY_S
    for path in UPLOAD_DIR.glob("*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except OSError:
            continue


def start_upload(
    account_id: int, claim_ref: str, size: int, media_type: str, label: str
) -> PartialUpload:
    if size <= 0:
        raise DomainError("empty_file", "the file is empty", "file")
    if size > MAX_BYTES:
        raise DomainError("file_too_large", "the file is larger than the 20 MB limit", "file")
    UPLOAD_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sweep()
    upload_id = secrets.token_urlsafe(24)
    meta, part = _paths(upload_id)
    meta.write_text(
        json.dumps(
            {
                "account_id": account_id,
                "claim_ref": claim_ref,
                "size": size,
                "media_type": media_type[:100],
                "label": label[:100],
            }
        )
    )
    part.touch(mode=0o600)
    return PartialUpload(upload_id, account_id, claim_ref, size, media_type, label, 0)


def _received(handle: BinaryIO, aead: AESGCM, upload_id: str, *, repair: bool) -> int:
    """Plaintext bytes held (records are authenticated; a torn last record is cut off)."""
    handle.seek(0)
    total, good_end, counter = 0, 0, 0
    while True:
        header = handle.read(_RECORD.size)
        if len(header) < _RECORD.size:
            break
        (length,) = _RECORD.unpack(header)
        body = handle.read(length)
        if len(body) < length:
            break
        plain = aead.decrypt(_nonce(counter), body, upload_id.encode())
        total += len(plain)
        counter += 1
        good_end = handle.tell()
    if repair:
        handle.truncate(good_end)
    handle.seek(good_end)
    return total


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "big")


def find_upload(ctx: ServiceContext, account_id: int, upload_id: str) -> PartialUpload:
    meta_path, part_path = _paths(upload_id)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        raise NotFound("upload_not_found", "there is no such upload", "upload_id") from None
    if meta["account_id"] != account_id:
        raise NotFound("upload_not_found", "there is no such upload", "upload_id")
    aead = AESGCM(_key(ctx))
    with part_path.open("r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        received = _received(handle, aead, upload_id, repair=True)
    return PartialUpload(
        upload_id,
        account_id,
        meta["claim_ref"],
        meta["size"],
        meta["media_type"],
        meta["label"],
        received,
    )


def append_piece(
    ctx: ServiceContext, account_id: int, upload_id: str, offset: int, data: bytes
) -> PartialUpload:
    """Store one piece at `offset`; a piece sent twice (a retry) is acknowledged, not stored twice."""
    upload = find_upload(ctx, account_id, upload_id)
    if len(data) > PIECE_BYTES * 2:
        raise DomainError("piece_too_large", "send the file in smaller pieces", "file")
    _, part_path = _paths(upload_id)
    aead = AESGCM(_key(ctx))
    with part_path.open("r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        received = _received(handle, aead, upload_id, repair=True)
        counter = _count_records(handle)
        if offset + len(data) <= received:
            pass  # already have it
        elif offset != received:
            raise DomainError(
                "wrong_offset",
                f"resume from byte {received}",
                "offset",
                details={"received": received},
            )
        elif received + len(data) > upload.size:
            raise DomainError("file_too_large", "the file is larger than announced", "file")
        elif data:
            sealed = aead.encrypt(_nonce(counter), data, upload_id.encode())
            handle.write(_RECORD.pack(len(sealed)) + sealed)
            handle.flush()
            os.fsync(handle.fileno())
            received += len(data)
    return PartialUpload(
        upload.upload_id,
        account_id,
        upload.claim_ref,
        upload.size,
        upload.media_type,
        upload.label,
        received,
    )


def _count_records(handle: BinaryIO) -> int:
    end = handle.tell()
    handle.seek(0)
    count = 0
    while handle.tell() < end:
        (length,) = _RECORD.unpack(handle.read(_RECORD.size))
        handle.seek(length, os.SEEK_CUR)
        count += 1
    return count


def pieces(ctx: ServiceContext, upload: PartialUpload) -> Iterator[bytes]:
    """The whole file, piece by piece, for `add_evidence`."""
    if upload.received != upload.size:
        raise DomainError(
            "upload_incomplete", f"{upload.received} of {upload.size} bytes have arrived", "file"
        )
    _, part_path = _paths(upload.upload_id)
    aead = AESGCM(_key(ctx))
    with part_path.open("rb") as handle:
        counter = 0
        while header := handle.read(_RECORD.size):
            (length,) = _RECORD.unpack(header)
            yield aead.decrypt(_nonce(counter), handle.read(length), upload.upload_id.encode())
            counter += 1


def discard(upload_id: str) -> None:
    for path in _paths(upload_id):
        path.unlink(missing_ok=True)
