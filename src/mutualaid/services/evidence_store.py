"""Evidence files at rest: streamed in, checked, hashed, encrypted, stored under their SHA-256.

Members upload ID cards, diagnosis certificates and photos from phones; a file is never held whole in
memory. `put` reads the upload chunk by chunk, refuses it as soon as it passes the size limit, checks
that its first bytes are the type the client declared, hashes the plaintext and encrypts it on the way
to a temp file, then renames the temp file to ``root/ab/cd/<sha256>``. `open` streams it back,
authenticating every chunk.

On-disk format (version 1)::

    offset  size  field
    0       1     format version, 0x01
    1       7     nonce prefix, random per blob
    8       16    address tag: AES-256-GCM tag over no plaintext,
                  nonce = prefix ‖ 00000000 ‖ 02, associated data = bytes 0..8 ‖ raw SHA-256 (32 bytes)
    24      ...   chunks: AES-256-GCM ciphertext ‖ 16-byte tag of 64 KiB of plaintext each (the last
                  chunk 1..64 KiB), nonce = prefix ‖ chunk counter (4 bytes, big-endian) ‖ last flag
                  (00, or 01 on the final chunk), associated data = bytes 0..8

Format version 2 is the same with the secret key version (2 bytes, big-endian) after the format
byte, so the header is 26 bytes and the associated data bytes 0..10; a blob under key version 1
is written in format 1. `mutualaid keys rotate` re-encrypts every blob under an older key version
into the current one (`reencrypt`), one file at a time, each replaced atomically.

The chunks follow the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, 2015): the counter
stops reordering, the last flag stops truncation and appending, the prefix stops splicing chunks of
two blobs. The SHA-256 is only known once the whole upload has passed, so it cannot be in the
chunks' associated data; the address tag, written into the header after the last chunk, binds the
blob to its address instead. A blob copied to another address fails in `open` before one byte of
plaintext is returned.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.personal_data import derive_key

FORMAT_VERSION = 1
#: The format whose header names the key version (any key version but 1).
KEYED_FORMAT_VERSION = 2
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
PREFIX_SIZE = 7
HEADER_SIZE = 1 + PREFIX_SIZE + TAG_SIZE
_MAX_CHUNKS = 2**32
_SNIFF_SIZE = 12
_ADDRESS = re.compile(r"[0-9a-f]{64}")

_DESCRIPTIONS = {
    "image/jpeg": "a JPEG image",
    "image/png": "a PNG image",
    "application/pdf": "a PDF document",
    "image/webp": "a WebP image",
    "image/heic": "an HEIC image",
}
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


def evidence_key(secret_key: str) -> bytes:
    """The 32-byte evidence encryption key, derived from the deployment secret (HKDF-SHA256)."""
    return derive_key(secret_key, b"mutualaid evidence encryption v1")


def evidence_keys(secret_keys: Mapping[int, str]) -> dict[int, bytes]:
    """The evidence key of every key version of the ring."""
    return {version: evidence_key(secret) for version, secret in secret_keys.items()}


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str  # hex SHA-256 of the plaintext; also the file's address in the store
    size_bytes: int
    media_type: str
    deduplicated: bool  # the same content was already stored


class EvidenceCorrupted(Exception):
    """A stored blob failed authentication or its hash check: tampered, truncated or misplaced."""

    def __init__(self, sha256: str, message: str) -> None:
        super().__init__(f"evidence {sha256}: {message}")
        self.sha256 = sha256


class EvidenceStore(Protocol):
    def put(self, chunks: Iterable[bytes], declared_media_type: str) -> StoredFile: ...

    def open(self, sha256: str) -> Iterator[bytes]: ...

    def exists(self, sha256: str) -> bool: ...


def sniff_media_type(head: bytes) -> str | None:
    """The media type the first bytes of a file show, or None when they match no known type."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "image/heic"
    return None


def _normalise_media_type(media_type: str) -> str:
    essence = media_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(essence, essence)


def _chunk_nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


def _address_nonce(prefix: bytes) -> bytes:
    return prefix + struct.pack(">IB", 0, 2)


def _format_megabytes(size_bytes: int) -> str:
    megabytes = size_bytes / (1024 * 1024)
    return f"{megabytes:g} MB" if megabytes >= 1 else f"{size_bytes // 1024} KB"


class _EncryptingWriter:
    """Cuts the plaintext into 64 KiB chunks and writes each one encrypted.

    A full chunk is only written once more data is known to follow, so the final chunk is the one
    left in the buffer when the upload ends, and it is never empty.
    """

    def __init__(self, file: BinaryIO, aead: AESGCM, key_version: int = 1) -> None:
        self._file = file
        self._aead = aead
        self._prefix = os.urandom(PREFIX_SIZE)
        if key_version == 1:
            self._header = bytes([FORMAT_VERSION]) + self._prefix
        else:
            self._header = (
                bytes([KEYED_FORMAT_VERSION]) + key_version.to_bytes(2, "big") + self._prefix
            )
        self._counter = 0
        self._buffer = bytearray()
        file.write(self._header + bytes(TAG_SIZE))  # address tag placeholder, filled in by finish

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if len(self._buffer) == CHUNK_SIZE:
                self._write_chunk(last=False)
            room = CHUNK_SIZE - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]

    def finish(self, sha256: bytes) -> None:
        self._write_chunk(last=True)
        tag = self._aead.encrypt(_address_nonce(self._prefix), b"", self._header + sha256)
        self._file.seek(len(self._header))
        self._file.write(tag)

    def _write_chunk(self, *, last: bool) -> None:
        if self._counter >= _MAX_CHUNKS:
            raise ValueError("too many chunks for one blob")
        nonce = _chunk_nonce(self._prefix, self._counter, last)
        self._file.write(self._aead.encrypt(nonce, bytes(self._buffer), self._header))
        self._buffer.clear()
        self._counter += 1


class FileSystemEvidenceStore:
    """Evidence blobs as encrypted files under ``root``, addressed by the SHA-256 of the plaintext.

    Two concurrent uploads of the same content both succeed; the later rename replaces the earlier
    blob with an equally valid one, and readers holding the old file keep reading it.
    """

    def __init__(
        self,
        root: Path,
        key: bytes | Mapping[int, bytes],
        max_bytes: int = 20 * 1024 * 1024,
        allowed_media_types: Iterable[str] = (
            "image/jpeg",
            "image/png",
            "application/pdf",
            "image/webp",
            "image/heic",
        ),
    ) -> None:
        keys = {1: key} if isinstance(key, bytes) else dict(key)
        if not keys or any(len(k) != 32 for k in keys.values()):
            raise ValueError("the evidence key must be 32 bytes (AES-256)")
        if not all(0 < version < 2**16 for version in keys):
            raise ValueError("key versions are 1..65535")
        if not 0 < max_bytes <= CHUNK_SIZE * _MAX_CHUNKS:
            raise ValueError("max_bytes must be positive and below 256 TiB")
        allowed = tuple(_normalise_media_type(media_type) for media_type in allowed_media_types)
        unknown = [media_type for media_type in allowed if media_type not in _DESCRIPTIONS]
        if unknown:
            raise ValueError(f"cannot recognise the content of {', '.join(unknown)}")
        self._root = Path(root)
        self._aeads = {version: AESGCM(k) for version, k in keys.items()}
        #: New blobs are written under the highest key version.
        self.key_version = max(keys)
        self._aead = self._aeads[self.key_version]
        self._max_bytes = max_bytes
        self._allowed = allowed

    def put(self, chunks: Iterable[bytes], declared_media_type: str) -> StoredFile:
        declared = _normalise_media_type(declared_media_type)
        if declared not in self._allowed:
            raise DomainError(
                "unsupported_media_type",
                f"{declared_media_type or 'this type'} is not accepted; send {self._allowed_text()}",
                "file",
            )
        incoming = self._root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as file:
                digest, size = self._encrypt_stream(chunks, declared, file)
                file.flush()
                os.fsync(file.fileno())
            return self._move_into_place(temp, digest, size, declared)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def open(self, sha256: str) -> Iterator[bytes]:
        """The plaintext in chunks of up to 64 KiB.

        The blob's address tag is checked before this returns, so a missing or misplaced blob fails
        here; a chunk modified on disk fails while iterating, when it is reached.
        """
        path = self._path_of(sha256)
        try:
            with path.open("rb") as file:
                self._read_header(file, sha256)
        except FileNotFoundError:
            raise NotFound(
                "evidence_not_found", "no evidence file is stored under this address", "file"
            ) from None
        return self._decrypt_stream(path, sha256)

    def exists(self, sha256: str) -> bool:
        return _ADDRESS.fullmatch(sha256) is not None and self._path_of(sha256).is_file()

    def _encrypt_stream(
        self, chunks: Iterable[bytes], declared: str, file: BinaryIO
    ) -> tuple[bytes, int]:
        hasher = hashlib.sha256()
        writer = _EncryptingWriter(file, self._aead, self.key_version)
        head = b""
        sniffed = False
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > self._max_bytes:
                raise DomainError(
                    "file_too_large",
                    f"the file is larger than the {_format_megabytes(self._max_bytes)} limit",
                    "file",
                    details={"max_bytes": self._max_bytes},
                )
            if not sniffed:
                head += chunk[: _SNIFF_SIZE - len(head)]
                if len(head) == _SNIFF_SIZE:
                    self._check_content_type(head, declared)
                    sniffed = True
            hasher.update(chunk)
            writer.feed(chunk)
        if size == 0:
            raise DomainError("empty_file", "the file is empty", "file")
        if not sniffed:
            self._check_content_type(head, declared)
        digest = hasher.digest()
        writer.finish(digest)
        return digest, size

    def _check_content_type(self, head: bytes, declared: str) -> None:
        actual = sniff_media_type(head)
        if actual is None or actual not in self._allowed:
            raise DomainError(
                "unsupported_media_type",
                f"the file is not {self._allowed_text()}",
                "file",
            )
        if actual != declared:
            raise DomainError(
                "media_type_mismatch",
                f"the file is {_DESCRIPTIONS[actual]} but was sent as {declared}",
                "file",
                details={"detected": actual, "declared": declared},
            )

    def _move_into_place(self, temp: Path, digest: bytes, size: int, media_type: str) -> StoredFile:
        sha256 = digest.hex()
        path = self._path_of(sha256)
        deduplicated = self._holds_valid_header(path, sha256)
        if deduplicated:
            temp.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, path)
            _fsync_directory(path.parent)
        return StoredFile(sha256, size, media_type, deduplicated)

    def _holds_valid_header(self, path: Path, sha256: str) -> bool:
        """Whether a blob for this address is already stored; a damaged one is replaced."""
        try:
            with path.open("rb") as file:
                self._read_header(file, sha256)
        except (FileNotFoundError, EvidenceCorrupted):
            return False
        return True

    def _read_header(self, file: BinaryIO, sha256: str) -> tuple[bytes, AESGCM]:
        """The blob's associated data (its header less the address tag) and the cipher of its
        key version, once the address tag is authenticated."""
        header = file.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE:
            raise EvidenceCorrupted(
                sha256, f"blob is truncated: header has {len(header)} of {HEADER_SIZE} bytes"
            )
        if header[0] == KEYED_FORMAT_VERSION:
            header += file.read(2)
            if len(header) < HEADER_SIZE + 2:
                raise EvidenceCorrupted(sha256, "blob is truncated in its header")
            key_version = int.from_bytes(header[1:3], "big")
        elif header[0] == FORMAT_VERSION:
            key_version = 1
        else:
            raise EvidenceCorrupted(sha256, f"unknown blob format version {header[0]}")
        aead = self._aeads.get(key_version)
        if aead is None:
            raise EvidenceCorrupted(
                sha256,
                f"the blob is under secret key version {key_version}, which is not in the key "
                "ring (key_version_retired)",
            )
        aad = header[:-TAG_SIZE]
        try:
            aead.decrypt(
                _address_nonce(aad[-PREFIX_SIZE:]),
                header[-TAG_SIZE:],
                aad + bytes.fromhex(sha256),
            )
        except InvalidTag:
            raise EvidenceCorrupted(
                sha256,
                "address tag failed authentication: the blob belongs to another address, "
                "its header was modified, or it was encrypted with another key",
            ) from None
        return aad, aead

    def key_version_of(self, sha256: str) -> int:
        """The key version a stored blob is under, from its header (not authenticated)."""
        with self._path_of(sha256).open("rb") as file:
            head = file.read(3)
        if len(head) == 3 and head[0] == KEYED_FORMAT_VERSION:
            return int.from_bytes(head[1:3], "big")
        return 1

    def addresses(self) -> Iterator[str]:
        """Every stored blob's address, in no particular order (a directory walk)."""
        if not self._root.is_dir():
            return
        for first in sorted(self._root.iterdir()):
            if len(first.name) != 2 or not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                for path in second.iterdir():
                    if _ADDRESS.fullmatch(path.name) and path.name.startswith(
                        first.name + second.name
                    ):
                        yield path.name

    def reencrypt(self, sha256: str) -> bool:
        """Re-encrypt a blob under the current key version; False when it already is.

        The blob is decrypted and checked chunk by chunk while the new one is written to a temp
        file, which then replaces it atomically: a reader holding the old file keeps reading it,
        a crash leaves either blob whole, and a second run skips what is done.
        """
        if self.key_version_of(sha256) == self.key_version:
            return False
        incoming = self._root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=incoming, prefix="rekey-")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as file:
                writer = _EncryptingWriter(file, self._aead, self.key_version)
                for plaintext in self.open(sha256):
                    writer.feed(plaintext)
                writer.finish(bytes.fromhex(sha256))
                file.flush()
                os.fsync(file.fileno())
            path = self._path_of(sha256)
            os.replace(temp, path)
            _fsync_directory(path.parent)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return True

    def _decrypt_stream(self, path: Path, sha256: str) -> Iterator[bytes]:
        with path.open("rb") as file:
            aad, aead = self._read_header(file, sha256)
            prefix = aad[-PREFIX_SIZE:]
            hasher = hashlib.sha256()
            current = file.read(CHUNK_SIZE + TAG_SIZE)
            if not current:
                raise EvidenceCorrupted(sha256, "blob is truncated: it holds no chunk")
            counter = 0
            while True:
                following = file.read(CHUNK_SIZE + TAG_SIZE)
                last = not following
                plaintext = self._decrypt_chunk(aead, current, prefix, counter, last, aad, sha256)
                hasher.update(plaintext)
                yield plaintext
                if last:
                    break
                current = following
                counter += 1
        if hasher.hexdigest() != sha256:
            raise EvidenceCorrupted(
                sha256, f"content hashes to {hasher.hexdigest()}, not to its address"
            )

    def _decrypt_chunk(
        self,
        aead: AESGCM,
        sealed: bytes,
        prefix: bytes,
        counter: int,
        last: bool,
        aad: bytes,
        sha256: str,
    ) -> bytes:
        if counter >= _MAX_CHUNKS:
            raise EvidenceCorrupted(sha256, "blob holds more chunks than the format allows")
        try:
            return aead.decrypt(_chunk_nonce(prefix, counter, last), sealed, aad)
        except InvalidTag:
            pass
        # Authentication failed; find out why, for the message only. Nothing is returned.
        try:
            aead.decrypt(_chunk_nonce(prefix, counter, not last), sealed, aad)
        except InvalidTag:
            raise EvidenceCorrupted(
                sha256, f"chunk {counter} failed authentication: the blob was modified or damaged"
            ) from None
        if last:
            raise EvidenceCorrupted(
                sha256,
                f"blob is truncated: it ends after chunk {counter}, which is not the final one",
            )
        raise EvidenceCorrupted(sha256, f"blob has data after its final chunk {counter}")

    def _allowed_text(self) -> str:
        if len(self._allowed) == 1:
            return _DESCRIPTIONS[self._allowed[0]]
        names = [_DESCRIPTIONS[media_type].split(" ")[1] for media_type in self._allowed]
        return f"a {', '.join(names[:-1])} or {names[-1]} file"

    def _path_of(self, sha256: str) -> Path:
        if _ADDRESS.fullmatch(sha256) is None:
            raise NotFound("evidence_not_found", "not an evidence address", "file")
        return self._root / sha256[:2] / sha256[2:4] / sha256


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; elsewhere the rename is all there is)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
