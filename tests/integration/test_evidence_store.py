from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tests.refusals import refused

from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.evidence_store import (
    CHUNK_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    EvidenceCorrupted,
    EvidenceStore,
    FileSystemEvidenceStore,
    _EncryptingWriter,
    evidence_key,
)

KEY = bytes(range(32))
MAGIC = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "image/webp": b"RIFF\x24\x00\x01\x00WEBPVP8 ",
    "image/heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
}


def sample(media_type: str, size: int) -> bytes:
    head = MAGIC[media_type]
    return head + os.urandom(size - len(head))


def pieces(data: bytes, size: int = 8 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def blob_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256[2:4] / sha256


def read_back(store: EvidenceStore, sha256: str) -> bytes:
    return b"".join(store.open(sha256))


@pytest.fixture
def store(tmp_path: Path) -> FileSystemEvidenceStore:
    return FileSystemEvidenceStore(tmp_path, KEY)


@pytest.mark.parametrize("media_type", list(MAGIC))
def test_stored_file_reads_back_identical_under_its_sha256(
    store: FileSystemEvidenceStore, tmp_path: Path, media_type: str
) -> None:
    content = sample(media_type, 150_000)
    stored = store.put(pieces(content), media_type)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert (stored.size_bytes, stored.media_type, stored.deduplicated) == (
        len(content),
        media_type,
        False,
    )
    assert store.exists(stored.sha256)
    assert blob_path(tmp_path, stored.sha256).is_file()
    assert read_back(store, stored.sha256) == content


@pytest.mark.parametrize(
    "size", [3, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 7]
)
def test_files_ending_on_and_around_chunk_boundaries_read_back_whole(
    store: FileSystemEvidenceStore, size: int
) -> None:
    content = b"\xff\xd8\xff" + os.urandom(size - 3)
    stored = store.put(pieces(content, 10_000), "image/jpeg")
    assert read_back(store, stored.sha256) == content


def test_upload_arriving_byte_by_byte_is_recognised_and_stored(
    store: FileSystemEvidenceStore,
) -> None:
    content = sample("image/png", 5_000)
    stored = store.put((content[i : i + 1] for i in range(len(content))), "image/png")
    assert read_back(store, stored.sha256) == content


def test_upload_in_one_large_piece_is_stored(store: FileSystemEvidenceStore) -> None:
    content = sample("application/pdf", 5 * CHUNK_SIZE + 123)
    stored = store.put([content], "application/pdf")
    assert read_back(store, stored.sha256) == content


def test_declared_type_parameters_case_and_jpg_alias_are_accepted(
    store: FileSystemEvidenceStore,
) -> None:
    assert store.put([sample("image/jpeg", 100)], "Image/JPG").media_type == "image/jpeg"
    assert store.put([sample("application/pdf", 100)], "application/pdf; q=1").media_type == (
        "application/pdf"
    )


def test_blob_on_disk_does_not_contain_the_plaintext(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    content = sample("image/jpeg", 3 * CHUNK_SIZE)
    stored = store.put(pieces(content), "image/jpeg")
    blob = blob_path(tmp_path, stored.sha256).read_bytes()
    assert MAGIC["image/jpeg"] not in blob
    for start in range(0, len(content), 10_000):
        assert content[start : start + 16] not in blob
    assert len(blob) == HEADER_SIZE + len(content) + 3 * TAG_SIZE


def test_identical_content_is_stored_once_and_reported_deduplicated(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    content = sample("image/png", 200_000)
    first = store.put(pieces(content), "image/png")
    blob_before = blob_path(tmp_path, first.sha256).read_bytes()
    again = store.put(pieces(content, 777), "image/png")
    assert (again.sha256, first.deduplicated, again.deduplicated) == (first.sha256, False, True)
    assert stored_files(tmp_path) == [blob_path(tmp_path, first.sha256)]
    assert blob_path(tmp_path, first.sha256).read_bytes() == blob_before


def test_damaged_blob_is_replaced_when_the_same_content_is_uploaded_again(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    content = sample("image/png", 1_000)
    stored = store.put([content], "image/png")
    blob_path(tmp_path, stored.sha256).write_bytes(b"garbage")
    assert store.put([content], "image/png").deduplicated is False
    assert read_back(store, stored.sha256) == content


def test_file_over_the_limit_is_refused_at_once_and_leaves_no_file(tmp_path: Path) -> None:
    store = FileSystemEvidenceStore(tmp_path, KEY, max_bytes=1024 * 1024)
    pulled = 0

    def endless_upload() -> Iterator[bytes]:
        nonlocal pulled
        yield MAGIC["image/jpeg"]
        while True:
            pulled += 1
            yield os.urandom(CHUNK_SIZE)

    with pytest.raises(DomainError) as refused:
        store.put(endless_upload(), "image/jpeg")
    assert (refused.value.code, refused.value.field) == ("file_too_large", "file")
    assert "1 MB" in refused.value.message
    assert pulled == 16  # the piece that crossed the limit is the last one read
    assert stored_files(tmp_path) == []


def test_file_exactly_at_the_limit_is_accepted(tmp_path: Path) -> None:
    store = FileSystemEvidenceStore(tmp_path, KEY, max_bytes=100_000)
    assert store.put(pieces(sample("image/jpeg", 100_000)), "image/jpeg").size_bytes == 100_000


def test_content_of_another_type_than_declared_is_refused_from_its_first_bytes(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    def png_upload() -> Iterator[bytes]:
        yield sample("image/png", 1_000)
        raise AssertionError("read past the first piece")

    with pytest.raises(DomainError) as refused:
        store.put(png_upload(), "application/pdf")
    assert (refused.value.code, refused.value.field) == ("media_type_mismatch", "file")
    assert refused.value.message == "the file is a PNG image but was sent as application/pdf"
    assert stored_files(tmp_path) == []


def test_content_of_no_accepted_type_is_refused(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    with pytest.raises(DomainError) as refused:
        store.put([b"GIF89a" + os.urandom(500)], "image/jpeg")
    assert refused.value.code == "unsupported_media_type"
    assert stored_files(tmp_path) == []


def test_declared_type_outside_the_allowed_list_is_refused_before_reading(
    store: FileSystemEvidenceStore,
) -> None:
    def unread() -> Iterator[bytes]:
        raise AssertionError("the upload was read")
        yield b""

    with pytest.raises(DomainError) as refused:
        store.put(unread(), "image/gif")
    assert (refused.value.code, refused.value.field) == ("unsupported_media_type", "file")


def test_type_left_out_of_the_allowed_list_is_refused(tmp_path: Path) -> None:
    store = FileSystemEvidenceStore(tmp_path, KEY, allowed_media_types=("application/pdf",))
    with pytest.raises(DomainError) as refused:
        store.put([sample("image/jpeg", 100)], "image/jpeg")
    assert refused.value.code == "unsupported_media_type"
    assert "PDF" in refused.value.message


@pytest.mark.parametrize("upload", [[], [b"", b""]], ids=["no pieces", "empty pieces"])
def test_empty_file_is_refused(
    store: FileSystemEvidenceStore, tmp_path: Path, upload: list[bytes]
) -> None:
    with pytest.raises(DomainError) as refused:
        store.put(upload, "image/jpeg")
    assert (refused.value.code, refused.value.field) == ("empty_file", "file")
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize(
    "offset",
    [0, 3, 12, HEADER_SIZE + 100, HEADER_SIZE + CHUNK_SIZE + TAG_SIZE + 5, -1],
    ids=["version", "nonce prefix", "address tag", "first chunk", "second chunk", "final tag"],
)
def test_flipped_byte_in_a_blob_is_detected_on_read(
    store: FileSystemEvidenceStore, tmp_path: Path, offset: int
) -> None:
    stored = store.put(pieces(sample("image/jpeg", 3 * CHUNK_SIZE)), "image/jpeg")
    path = blob_path(tmp_path, stored.sha256)
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x01
    path.write_bytes(blob)
    with pytest.raises(EvidenceCorrupted) as corrupted:
        read_back(store, stored.sha256)
    assert stored.sha256 in str(corrupted.value)


def test_blob_missing_its_final_chunk_is_reported_truncated(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    stored = store.put(pieces(sample("image/jpeg", 2 * CHUNK_SIZE + 500)), "image/jpeg")
    path = blob_path(tmp_path, stored.sha256)
    path.write_bytes(path.read_bytes()[: HEADER_SIZE + 2 * (CHUNK_SIZE + TAG_SIZE)])
    with pytest.raises(EvidenceCorrupted, match="truncated"):
        read_back(store, stored.sha256)


def test_blob_cut_down_to_its_header_is_reported_truncated(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    stored = store.put([sample("image/jpeg", 500)], "image/jpeg")
    path = blob_path(tmp_path, stored.sha256)
    path.write_bytes(path.read_bytes()[:HEADER_SIZE])
    with pytest.raises(EvidenceCorrupted, match="truncated"):
        read_back(store, stored.sha256)


@pytest.mark.parametrize(
    ("size", "reason"),
    [(2 * CHUNK_SIZE, "after its final chunk"), (500, "chunk 0 failed authentication")],
    ids=["after a full final chunk", "merged into a short final chunk"],
)
def test_data_appended_to_a_blob_is_detected(
    store: FileSystemEvidenceStore, tmp_path: Path, size: int, reason: str
) -> None:
    stored = store.put(pieces(sample("image/jpeg", size)), "image/jpeg")
    path = blob_path(tmp_path, stored.sha256)
    path.write_bytes(path.read_bytes() + os.urandom(100))
    with pytest.raises(EvidenceCorrupted, match=reason):
        read_back(store, stored.sha256)


def test_blobs_swapped_between_addresses_are_refused_before_any_plaintext(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    first = store.put([sample("image/jpeg", 5_000)], "image/jpeg")
    second = store.put([sample("image/jpeg", 5_000)], "image/jpeg")
    first_path, second_path = blob_path(tmp_path, first.sha256), blob_path(tmp_path, second.sha256)
    first_blob, second_blob = first_path.read_bytes(), second_path.read_bytes()
    first_path.write_bytes(second_blob)
    second_path.write_bytes(first_blob)
    for sha256 in (first.sha256, second.sha256):
        with pytest.raises(EvidenceCorrupted, match="another address"):
            store.open(sha256)


def test_blob_whose_content_does_not_hash_to_its_address_is_refused(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    # Only a holder of the key can make such a blob; open() still re-hashes what it decrypted.
    claimed = hashlib.sha256(b"something else").digest()
    path = blob_path(tmp_path, claimed.hex())
    path.parent.mkdir(parents=True)
    with path.open("wb") as file:
        writer = _EncryptingWriter(file, AESGCM(KEY))
        writer.feed(sample("image/jpeg", 1_000))
        writer.finish(claimed)
    with pytest.raises(EvidenceCorrupted, match="hashes to"):
        read_back(store, claimed.hex())


def test_blob_is_unreadable_with_another_key(
    store: FileSystemEvidenceStore, tmp_path: Path
) -> None:
    stored = store.put([sample("image/png", 1_000)], "image/png")
    other = FileSystemEvidenceStore(tmp_path, evidence_key("another deployment secret"))
    with pytest.raises(EvidenceCorrupted):
        other.open(stored.sha256)


def test_store_reopened_with_the_same_secret_reads_earlier_uploads(tmp_path: Path) -> None:
    content = sample("application/pdf", 10_000)
    stored = FileSystemEvidenceStore(tmp_path, evidence_key("deployment secret")).put(
        [content], "application/pdf"
    )
    reopened = FileSystemEvidenceStore(tmp_path, evidence_key("deployment secret"))
    assert read_back(reopened, stored.sha256) == content


@pytest.mark.parametrize("address", ["0" * 64, "../../etc/passwd", "AB" * 32, ""])
def test_unknown_or_malformed_address_is_not_found(
    store: FileSystemEvidenceStore, address: str
) -> None:
    assert not store.exists(address)
    with refused("evidence_not_found", NotFound):
        store.open(address)


def test_50_mb_upload_and_read_back_stay_within_a_small_memory_bound(tmp_path: Path) -> None:
    size = 50 * 1024 * 1024
    store = FileSystemEvidenceStore(tmp_path, KEY, max_bytes=size)
    uploaded = hashlib.sha256()

    def phone_upload() -> Iterable[bytes]:
        piece = MAGIC["image/jpeg"] + os.urandom(CHUNK_SIZE - len(MAGIC["image/jpeg"]))
        for _ in range(size // CHUNK_SIZE):
            uploaded.update(piece)
            yield piece
            piece = os.urandom(CHUNK_SIZE)

    tracemalloc.start()
    try:
        stored = store.put(phone_upload(), "image/jpeg")
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        downloaded = hashlib.sha256()
        for plaintext in store.open(stored.sha256):
            downloaded.update(plaintext)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size_bytes == size
    assert stored.sha256 == uploaded.hexdigest() == downloaded.hexdigest()
    assert upload_peak < 5 * 1024 * 1024
    assert download_peak < 5 * 1024 * 1024
