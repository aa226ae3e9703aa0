"""Partial uploads at rest: a fresh key per upload, encrypted metadata, owner-only files, bounds.

The attack this pins: with one key and the piece counter as nonce, piece 0 of every upload shared a
nonce, so XOR-ing two `.part` files gave the XOR of two members' documents.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mutualaid.domain.errors import DomainError
from mutualaid.services.context import ServiceContext
from mutualaid.web import uploads

DOCUMENT = b"\xff\xd8\xff\xe0 diagnosis: leukaemia, patient Wang " * 200
OTHER = b"\xff\xd8\xff\xe0 diagnosis: fracture, patient Li     " * 200


def _files(ctx: ServiceContext, upload_id: str) -> tuple[Path, Path]:
    assert ctx.upload_dir is not None
    (meta,) = ctx.upload_dir.glob(f"*{upload_id}*.json")
    (part,) = ctx.upload_dir.glob(f"*{upload_id}*.part")
    return meta, part


def _upload(ctx: ServiceContext, account_id: int, data: bytes, label: str = "病历") -> str:
    upload = uploads.start_upload(ctx, account_id, "CL-2026-000123", len(data), "image/jpeg", label)
    uploads.append_piece(ctx, account_id, upload.upload_id, 0, data)
    return upload.upload_id


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=False))


def test_two_uploads_never_share_a_key_and_nonce(ctx: ServiceContext) -> None:
    same_a = _files(ctx, _upload(ctx, 7, DOCUMENT))[1].read_bytes()
    same_b = _files(ctx, _upload(ctx, 8, DOCUMENT))[1].read_bytes()
    other = _files(ctx, _upload(ctx, 9, OTHER))[1].read_bytes()

    # Equal plaintext, unequal ciphertext: the keystreams differ.
    assert same_a != same_b
    assert DOCUMENT[16:400] not in same_a
    # XOR of two stored files is not the XOR of the two documents.
    leak = _xor(DOCUMENT, OTHER)
    for offset in range(0, 64):
        assert leak[:200] not in _xor(same_a[offset:], other[offset:])


def test_the_metadata_holds_no_account_claim_or_label_in_clear(ctx: ServiceContext) -> None:
    upload_id = _upload(ctx, 424242, DOCUMENT, label="诊断证明")

    meta, _ = _files(ctx, upload_id)
    raw = meta.read_bytes()
    for clear in (b"424242", b"CL-2026-000123", "诊断证明".encode(), b"image/jpeg", b"account"):
        assert clear not in raw
    assert uploads.find_upload(ctx, 424242, upload_id).label == "诊断证明"


def test_a_tampered_piece_is_refused(ctx: ServiceContext) -> None:
    upload_id = _upload(ctx, 7, DOCUMENT)
    _, part = _files(ctx, upload_id)
    stored = bytearray(part.read_bytes())
    stored[len(stored) // 2] ^= 0x01
    part.write_bytes(bytes(stored))

    with pytest.raises(DomainError) as refused:
        upload = uploads.find_upload(ctx, 7, upload_id)
        b"".join(uploads.pieces(ctx, upload))
    assert refused.value.code == "upload_corrupted"


def test_partial_uploads_live_under_the_data_directory_owner_only(ctx: ServiceContext) -> None:
    upload_id = _upload(ctx, 7, DOCUMENT)

    assert ctx.upload_dir is not None
    assert stat.S_IMODE(ctx.upload_dir.stat().st_mode) == 0o700
    for path in _files(ctx, upload_id):
        assert path.parent == ctx.upload_dir
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_member_cannot_hold_too_many_open_uploads(ctx: ServiceContext) -> None:
    for _ in range(uploads.MAX_OPEN_UPLOADS):
        uploads.start_upload(ctx, 7, "CL-2026-000123", 1000, "image/jpeg", "")

    with pytest.raises(DomainError) as refused:
        uploads.start_upload(ctx, 7, "CL-2026-000123", 1000, "image/jpeg", "")
    assert refused.value.code == "too_many_uploads"
    # Another member is not held up by it.
    uploads.start_upload(ctx, 8, "CL-2026-000123", 1000, "image/jpeg", "")


def test_a_member_cannot_announce_more_than_the_open_upload_bytes(ctx: ServiceContext) -> None:
    taken = 0
    while taken + uploads.MAX_BYTES <= uploads.MAX_OPEN_BYTES:
        uploads.start_upload(ctx, 7, "CL-2026-000123", uploads.MAX_BYTES, "image/jpeg", "")
        taken += uploads.MAX_BYTES

    with pytest.raises(DomainError) as refused:
        uploads.start_upload(
            ctx, 7, "CL-2026-000123", uploads.MAX_OPEN_BYTES - taken + 1, "image/jpeg", ""
        )
    assert refused.value.code == "uploads_too_large"
