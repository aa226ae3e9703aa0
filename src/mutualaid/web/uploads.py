"""Resumable uploads for a slow phone connection: the file comes in pieces, each one acknowledged,
so a dropped connection resumes from the last piece instead of starting again.

The browser (static/app.js) asks for an upload, sends pieces of 256 KiB with their offset, asks
where to resume after an error, and finishes; the finished file is then streamed into
`services.evidence.add_evidence` like a one-shot upload. Without JavaScript the form posts the
whole file in one request, which works too.

At rest (under ``data_dir/partial-uploads``, a 0700 folder of 0600 files), every upload has a key of
its own, derived (HKDF, as the evidence store derives its key) from the deployment secret and the
upload's random 192-bit id, and every piece a random 96-bit nonce stored with it: no two pieces of
any two uploads share a key and nonce, so XOR-ing two files reveals nothing. A piece's associated
data is the upload id and its index, so pieces cannot be reordered or moved between uploads. The
metadata (account, claim, label) is sealed under the same key. A file's name starts with a keyed
hash of its owner, so a member's open uploads can be counted and bounded without naming them.
A partial upload belongs to one account and one claim and is dropped after a day.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.context import ServiceContext
from mutualaid.services.personal_data import derive_key

PIECE_BYTES = 256 * 1024
MAX_BYTES = 20 * 1024 * 1024
#: A member has a handful of documents in flight at most; more is a runaway script or a disk-filler.
MAX_OPEN_UPLOADS = 5
MAX_OPEN_BYTES = 3 * MAX_BYTES
EXPIRY_S = 24 * 3600
NONCE_BYTES = 12
_RECORD = struct.Struct(">I")
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_NOT_FOUND = ("upload_not_found", "there is no such upload", "upload_id")


@dataclass(frozen=True, slots=True)
class PartialUpload:
    upload_id: str
    account_id: int
    claim_ref: str
    size: int
    media_type: str
    label: str
    received: int


def _folder(ctx: ServiceContext) -> Path:
    if ctx.upload_dir is None:
        raise DomainError("uploads_unavailable", "send the file in one piece", "file")
    ctx.upload_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ctx.upload_dir.chmod(0o700)  # mkdir's mode is cut by the umask and ignored for an old folder
    return ctx.upload_dir


def _aead(ctx: ServiceContext, upload_id: str) -> AESGCM:
    master = ctx.protector.identity_hash("mutualaid partial upload key v2")
    return AESGCM(derive_key(master, f"mutualaid partial upload {upload_id}".encode()))


def _owner(ctx: ServiceContext, account_id: int) -> str:
    return ctx.protector.identity_hash(f"mutualaid partial upload owner {account_id}")[:20]


def _paths(ctx: ServiceContext, account_id: int, upload_id: str) -> tuple[Path, Path]:
    if not 16 <= len(upload_id) <= 64 or not set(upload_id) <= _ID_CHARS:
        raise NotFound(*_NOT_FOUND)
    stem = f"{_owner(ctx, account_id)}.{upload_id}"
    folder = _folder(ctx)
    return folder / f"{stem}.json", folder / f"{stem}.part"


def _create(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _seal(aead: AESGCM, data: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, data, associated)


def _open_sealed(aead: AESGCM, sealed: bytes, associated: bytes) -> bytes:
    try:
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except InvalidTag:
        raise DomainError(
            "upload_corrupted", "the partial upload was damaged; send the file again", "file"
        ) from None


def _sweep(folder: Path) -> None:
    cutoff = time.time() - EXPIRY_S
    for path in folder.glob("*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except OSError:
            continue


def _check_open_uploads(ctx: ServiceContext, account_id: int, size: int) -> None:
    folder = _folder(ctx)
    open_ids = [
        path.stem.split(".", 1)[1] for path in folder.glob(f"{_owner(ctx, account_id)}.*.json")
    ]
    if len(open_ids) >= MAX_OPEN_UPLOADS:
        raise DomainError(
            "too_many_uploads",
            f"finish or wait out your {len(open_ids)} unfinished uploads first",
            "file",
            details={"max_open_uploads": MAX_OPEN_UPLOADS},
        )
    announced = 0
    for upload_id in open_ids:
        try:
            announced += _metadata(ctx, account_id, upload_id)["size"]
        except DomainError:
            continue  # dropped meanwhile, or damaged: it holds nothing
    if announced + size > MAX_OPEN_BYTES:
        raise DomainError(
            "uploads_too_large",
            "your unfinished uploads would pass the 60 MB limit; finish them first",
            "file",
            details={"max_open_bytes": MAX_OPEN_BYTES},
        )


def start_upload(
    ctx: ServiceContext, account_id: int, claim_ref: str, size: int, media_type: str, label: str
) -> PartialUpload:
    if size <= 0:
        raise DomainError("empty_file", "the file is empty", "file")
    if size > MAX_BYTES:
        raise DomainError(
            "file_too_large",
            "the file is larger than the 20 MB limit",
            "file",
            details={"max_bytes": MAX_BYTES},
        )
    _sweep(_folder(ctx))
    _check_open_uploads(ctx, account_id, size)
    upload_id = secrets.token_urlsafe(24)
    meta, part = _paths(ctx, account_id, upload_id)
    metadata = {
        "account_id": account_id,
        "claim_ref": claim_ref,
        "size": size,
        "media_type": media_type[:100],
        "label": label[:100],
    }
    aead = _aead(ctx, upload_id)
    _create(meta, _seal(aead, json.dumps(metadata).encode(), b"metadata " + upload_id.encode()))
    _create(part, b"")
    return PartialUpload(upload_id, account_id, claim_ref, size, media_type, label, 0)


def _metadata(ctx: ServiceContext, account_id: int, upload_id: str) -> dict[str, Any]:
    meta_path, _ = _paths(ctx, account_id, upload_id)
    try:
        sealed = meta_path.read_bytes()
    except OSError:
        raise NotFound(*_NOT_FOUND) from None
    meta: dict[str, Any] = json.loads(
        _open_sealed(_aead(ctx, upload_id), sealed, b"metadata " + upload_id.encode())
    )
    if meta["account_id"] != account_id:
        raise NotFound(*_NOT_FOUND)
    return meta


def _piece_data(upload_id: str, index: int) -> bytes:
    return upload_id.encode() + index.to_bytes(8, "big")


def _records(handle: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Each whole record's sealed bytes and the offset after it; a torn last record ends it."""
    handle.seek(0)
    while len(header := handle.read(_RECORD.size)) == _RECORD.size:
        (length,) = _RECORD.unpack(header)
        body = handle.read(length)
        if len(body) < length:
            return
        yield body, handle.tell()


def _received(handle: BinaryIO, aead: AESGCM, upload_id: str) -> tuple[int, int]:
    """Plaintext bytes held and pieces stored; a torn last record (a crash mid-write) is cut off."""
    total, good_end, count = 0, 0, 0
    for sealed, end in _records(handle):
        total += len(_open_sealed(aead, sealed, _piece_data(upload_id, count)))
        count, good_end = count + 1, end
    handle.truncate(good_end)
    handle.seek(good_end)
    return total, count


def find_upload(ctx: ServiceContext, account_id: int, upload_id: str) -> PartialUpload:
    meta = _metadata(ctx, account_id, upload_id)
    _, part_path = _paths(ctx, account_id, upload_id)
    with part_path.open("r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        received, _ = _received(handle, _aead(ctx, upload_id), upload_id)
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
    _, part_path = _paths(ctx, account_id, upload_id)
    aead = _aead(ctx, upload_id)
    with part_path.open("r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        received, count = _received(handle, aead, upload_id)
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
            raise DomainError(
                "file_too_large",
                "the file is larger than announced",
                "file",
                details={"variant": "announced"},
            )
        elif data:
            sealed = _seal(aead, data, _piece_data(upload_id, count))
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


def pieces(ctx: ServiceContext, upload: PartialUpload) -> Iterator[bytes]:
    """The whole file, piece by piece, for `add_evidence`."""
    if upload.received != upload.size:
        raise DomainError(
            "upload_incomplete",
            f"{upload.received} of {upload.size} bytes have arrived",
            "file",
            details={"received_bytes": upload.received, "size_bytes": upload.size},
        )
    _, part_path = _paths(ctx, upload.account_id, upload.upload_id)
    aead = _aead(ctx, upload.upload_id)
    with part_path.open("rb") as handle:
        for index, (sealed, _) in enumerate(_records(handle)):
            yield _open_sealed(aead, sealed, _piece_data(upload.upload_id, index))


def discard(ctx: ServiceContext, upload: PartialUpload) -> None:
    for path in _paths(ctx, upload.account_id, upload.upload_id):
        path.unlink(missing_ok=True)
