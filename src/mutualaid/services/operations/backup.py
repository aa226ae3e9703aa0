"""Backups and restores: the database, the evidence store and a manifest, in one folder.

A backup folder holds::

    manifest.json        format, version, created_at, dialect, Alembic revision, app version,
                         and the SHA-256 and size of the database file and of files.jsonl
    files.jsonl          one JSON object a line: path, SHA-256 and size of every evidence file
    database.sqlite3     (SQLite) or database.pgdump (PostgreSQL, pg_dump's custom format)
    evidence/ab/cd/<sha256>   the evidence store's encrypted blobs, copied as they are

The evidence list is a file of its own, pinned in the manifest by its hash, so that neither the
backup nor the restore holds millions of entries in memory; every copy and every hash goes by
chunks of 1 MiB.

Order makes the copy consistent while the service runs: the database first, then the evidence.
An evidence file is stored before its row commits and never deleted, so every file the dumped
database refers to is already on disk when the evidence is copied (files uploaded meanwhile come
along unreferenced, which is harmless). Partial uploads (``data_dir/partial-uploads``) and the
store's own temporary files (``evidence/incoming``) are not backed up: a member whose upload was
cut off sends the file again.

Keys are never in a backup: MUTUALAID_SECRET_KEY (from which the identity and evidence keys are
derived) and the log signing key stay with the settings; the operator keeps them apart.

A restore reads the manifest, checks that the target database and evidence folder are empty and
that every file's size and SHA-256 match (refusing a tampered or incomplete backup) before it
writes anything; it hashes each evidence file again as it copies it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from mutualaid import __version__
from mutualaid.db.schema import alembic_config
from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.evidence_store import EvidenceCorrupted, FileSystemEvidenceStore
from mutualaid.services.operations.database_dumps import (
    DUMP_NAMES,
    dialect_of,
    dump_database,
    ensure_database_empty,
    restore_database,
)

FORMAT = "mutualaid-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
FILE_LIST_NAME = "files.jsonl"
EVIDENCE_DIR = "evidence"
COPY_CHUNK = 1024 * 1024
#: What a backup never holds, written into every manifest for whoever finds the folder.
NOT_INCLUDED = (
    "MUTUALAID_SECRET_KEY (identity and evidence keys derive from it): keep it apart",
    "the transparency log signing key (MUTUALAID_LOG_KEY_FILE): keep it apart",
    "partial uploads (data_dir/partial-uploads): members send an interrupted file again",
)

_HEX = "[0-9a-f]"
_BLOB = re.compile(rf"{_HEX}{{64}}")
_EVIDENCE_PATH = re.compile(rf"{EVIDENCE_DIR}/({_HEX}{{2}})/({_HEX}{{2}})/({_HEX}{{64}})")


class Progress(Protocol):
    """Where a long step reports how far it got (the CLI draws bars; services draw nothing)."""

    def begin(self, label: str, total_bytes: int | None) -> None: ...

    def advance(self, done_bytes: int) -> None: ...

    def end(self) -> None: ...


class _Silent:
    def begin(self, label: str, total_bytes: int | None) -> None:
        pass

    def advance(self, done_bytes: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str  # relative to the backup folder, with "/" separators
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    format_version: int
    created_at: datetime
    dialect: str
    alembic_revision: str
    app_version: str
    database: FileRecord
    file_list: FileRecord
    evidence_files: int
    evidence_bytes: int

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "format_version": self.format_version,
            "created_at": self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "dialect": self.dialect,
            "alembic_revision": self.alembic_revision,
            "app_version": self.app_version,
            "database": _record_json(self.database),
            "file_list": {
                **_record_json(self.file_list),
                "files": self.evidence_files,
                "bytes": self.evidence_bytes,
            },
            "not_included": list(NOT_INCLUDED),
        }
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class BackupResult:
    directory: Path
    manifest: Manifest
    manifest_sha256: str


@dataclass(frozen=True, slots=True)
class RestoreResult:
    directory: Path
    manifest: Manifest
    manifest_sha256: str
    evidence_dir: Path
    #: Whether an evidence file opens with the key given to the restore (None: not tried).
    key_opens_evidence: bool | None


# --------------------------------------------------------------------------------------------
# Backup


def create_backup(
    engine: Engine,
    evidence_root: Path,
    directory: Path,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> BackupResult:
    """Back up the database of `engine` and the evidence store under `evidence_root` into
    `directory` (new or empty); the manifest is written last, so a folder without one is a
    backup that did not finish."""
    progress = progress or _Silent()
    dialect = dialect_of(engine)
    _prepare_empty_folder(directory)

    database_path = directory / DUMP_NAMES[dialect]
    progress.begin("database dump", None)
    try:
        revision = dump_database(engine, database_path, progress.advance)
    finally:
        progress.end()
    database = _hashed(directory, database_path, "hashing the dump", progress)

    total = sum(size for _, size in _evidence_blobs(evidence_root))
    progress.begin("evidence files", total)
    count = copied = 0
    list_path = directory / FILE_LIST_NAME
    try:
        with list_path.open("wb") as listing:
            for relative, _ in _evidence_blobs(evidence_root):
                target = directory / EVIDENCE_DIR / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                sha256, size = _copy(evidence_root / relative, target, progress, copied)
                copied += size
                count += 1
                record = FileRecord(f"{EVIDENCE_DIR}/{relative.as_posix()}", sha256, size)
                listing.write(json.dumps(_record_json(record), sort_keys=True).encode() + b"\n")
    finally:
        progress.end()
    file_list = _hashed(directory, list_path, "hashing the file list", progress)

    manifest = Manifest(
        FORMAT_VERSION,
        now,
        dialect,
        revision,
        __version__,
        database,
        file_list,
        count,
        copied,
    )
    if hasattr(os, "sync"):
        os.sync()  # every copied file on disk before the manifest says the backup is whole
    body = manifest.to_json().encode()
    _write_durably(directory / MANIFEST_NAME, body)
    return BackupResult(directory, manifest, hashlib.sha256(body).hexdigest())


def _prepare_empty_folder(directory: Path) -> None:
    if directory.exists():
        if not directory.is_dir():
            raise DomainError(
                "backup_target_not_empty", f"{directory} is a file, not a folder", "directory"
            )
        if any(directory.iterdir()):
            raise DomainError(
                "backup_target_not_empty",
                f"{directory} is not empty: back up into a new or empty folder",
                "directory",
            )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _evidence_blobs(root: Path) -> Iterator[tuple[Path, int]]:
    """Every stored blob as (path relative to `root`, size), in a stable order, by streaming
    the ``ab/cd/<sha256>`` folders; temporary files (``incoming/``) and strays are skipped."""
    for first in _sorted_entries(root):
        if not (first.is_dir() and re.fullmatch(f"{_HEX}{{2}}", first.name)):
            continue
        for second in _sorted_entries(Path(first.path)):
            if not (second.is_dir() and re.fullmatch(f"{_HEX}{{2}}", second.name)):
                continue
            for blob in _sorted_entries(Path(second.path)):
                name = blob.name
                if (
                    blob.is_file(follow_symlinks=False)
                    and _BLOB.fullmatch(name)
                    and name[:2] == first.name
                    and name[2:4] == second.name
                ):
                    yield Path(first.name, second.name, name), blob.stat().st_size


def _sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []


def _hashed(directory: Path, path: Path, label: str, progress: Progress) -> FileRecord:
    size = path.stat().st_size
    progress.begin(label, size)
    try:
        with path.open("rb") as file:
            sha256 = _hash_stream(file, progress, 0)
    finally:
        progress.end()
    return FileRecord(path.relative_to(directory).as_posix(), sha256, size)


def _hash_stream(file: BinaryIO, progress: Progress, done: int) -> str:
    hasher = hashlib.sha256()
    while chunk := file.read(COPY_CHUNK):
        hasher.update(chunk)
        done += len(chunk)
        progress.advance(done)
    return hasher.hexdigest()


def _copy(source: Path, target: Path, progress: Progress, done: int) -> tuple[str, int]:
    """Copy by chunks to a new owner-only file, hashing on the way; returns (sha256, size)."""
    hasher = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with source.open("rb") as reader, os.fdopen(fd, "wb") as writer:
        while chunk := reader.read(COPY_CHUNK):
            hasher.update(chunk)
            writer.write(chunk)
            size += len(chunk)
            progress.advance(done + size)
    return hasher.hexdigest(), size


def _write_durably(path: Path, body: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(body)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def _record_json(record: FileRecord) -> dict[str, Any]:
    return {"path": record.path, "sha256": record.sha256, "size": record.size_bytes}


# --------------------------------------------------------------------------------------------
# Reading and verifying a backup


def read_manifest(directory: Path) -> tuple[Manifest, str]:
    """The backup's manifest and the SHA-256 of its bytes; refuses a missing or unreadable one."""
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise NotFound("backup_not_found", f"there is no folder {directory}", "directory")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DomainError(
            "backup_incomplete",
            f"{directory} has no {MANIFEST_NAME}: the backup did not finish, or this is not a "
            "backup folder",
            "directory",
        ) from None
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError(f"it is not a {FORMAT} manifest")
        version = body["format_version"]
        if version != FORMAT_VERSION:
            raise ValueError(
                f"format version {version} is not {FORMAT_VERSION} (made by another version)"
            )
        listing = body["file_list"]
        manifest = Manifest(
            format_version=version,
            created_at=datetime.fromisoformat(body["created_at"]),
            dialect=_text(body, "dialect"),
            alembic_revision=_text(body, "alembic_revision"),
            app_version=_text(body, "app_version"),
            database=_record(body["database"]),
            file_list=_record(listing),
            evidence_files=_count(listing, "files"),
            evidence_bytes=_count(listing, "bytes"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise DomainError(
            "backup_manifest_invalid",
            f"{path} cannot be read: {error}",
            "directory",
        ) from None
    if manifest.dialect not in DUMP_NAMES or manifest.database.path != DUMP_NAMES[manifest.dialect]:
        raise DomainError(
            "backup_manifest_invalid",
            f"{path} names database {manifest.database.path!r} for dialect {manifest.dialect!r}",
            "directory",
        )
    if manifest.file_list.path != FILE_LIST_NAME:
        raise DomainError(
            "backup_manifest_invalid",
            f"{path} names file list {manifest.file_list.path!r}",
            "directory",
        )
    return manifest, hashlib.sha256(raw).hexdigest()


def _text(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is not a non-empty string")
    return value


def _count(body: dict[str, Any], key: str) -> int:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} is not a count")
    return value


def _record(body: Any) -> FileRecord:
    if not isinstance(body, dict):
        raise ValueError("a file entry is not an object")
    sha256 = _text(body, "sha256")
    if _BLOB.fullmatch(sha256) is None:
        raise ValueError(f"{sha256!r} is not a hex SHA-256")
    return FileRecord(_text(body, "path"), sha256, _count(body, "size"))


def verify_backup(directory: Path, manifest: Manifest, progress: Progress | None = None) -> None:
    """Check the size and SHA-256 of every file the manifest lists; raise `backup_incomplete`
    for a missing file and `backup_tampered` for one that differs. Reads only."""
    progress = progress or _Silent()
    total = manifest.database.size_bytes + manifest.file_list.size_bytes + manifest.evidence_bytes
    progress.begin("verifying the backup", total)
    try:
        done = _verify_file(directory, manifest.database, progress, 0)
        done = _verify_file(directory, manifest.file_list, progress, done)
        count = size = 0
        for record in _listed(directory, manifest):
            done = _verify_file(directory, record, progress, done)
            count += 1
            size += record.size_bytes
    finally:
        progress.end()
    if (count, size) != (manifest.evidence_files, manifest.evidence_bytes):
        raise DomainError(
            "backup_tampered",
            f"{FILE_LIST_NAME} lists {count} files of {size} bytes; the manifest says "
            f"{manifest.evidence_files} files of {manifest.evidence_bytes} bytes",
            FILE_LIST_NAME,
        )


def _listed(directory: Path, manifest: Manifest) -> Iterator[FileRecord]:
    """The evidence files of the (already verified) file list, one line at a time."""
    with (directory / FILE_LIST_NAME).open("rb") as listing:
        for number, line in enumerate(listing, start=1):
            try:
                record = _record(json.loads(line))
            except (ValueError, KeyError, TypeError) as error:
                raise DomainError(
                    "backup_tampered", f"{FILE_LIST_NAME} line {number}: {error}", FILE_LIST_NAME
                ) from None
            if _EVIDENCE_PATH.fullmatch(record.path) is None or not _address_matches(record.path):
                raise DomainError(
                    "backup_tampered",
                    f"{FILE_LIST_NAME} line {number}: {record.path!r} is not an evidence path",
                    FILE_LIST_NAME,
                )
            yield record


def _address_matches(path: str) -> bool:
    match = _EVIDENCE_PATH.fullmatch(path)
    return match is not None and match[3][:2] == match[1] and match[3][2:4] == match[2]


def _verify_file(directory: Path, record: FileRecord, progress: Progress, done: int) -> int:
    path = directory / record.path
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            if size != record.size_bytes:
                raise DomainError(
                    "backup_tampered",
                    f"{record.path} holds {size} bytes, the manifest says {record.size_bytes}",
                    record.path,
                )
            sha256 = _hash_stream(file, progress, done)
    except FileNotFoundError:
        raise DomainError(
            "backup_incomplete",
            f"{record.path} is missing from the backup: it was not copied whole",
            record.path,
        ) from None
    if sha256 != record.sha256:
        raise DomainError(
            "backup_tampered",
            f"{record.path} has SHA-256 {sha256}, the manifest says {record.sha256}: the backup "
            "was modified or damaged",
            record.path,
        )
    return done + size


# --------------------------------------------------------------------------------------------
# Restore


def restore_backup(
    engine: Engine,
    evidence_root: Path,
    directory: Path,
    *,
    evidence_key: bytes | Mapping[int, bytes] | None = None,
    expected_manifest_sha256: str | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore a backup into the empty database of `engine` and the empty `evidence_root`.

    Nothing is written until the manifest is read, both targets are found empty and every file
    of the backup has its recorded size and SHA-256. With `evidence_key`, one restored evidence
    file is opened with it, to tell the operator whether the deployment has the right key.
    """
    progress = progress or _Silent()
    manifest, manifest_sha256 = read_manifest(directory)
    if expected_manifest_sha256 is not None and (
        expected_manifest_sha256.strip().lower() != manifest_sha256
    ):
        raise DomainError(
            "backup_manifest_mismatch",
            f"{MANIFEST_NAME} has SHA-256 {manifest_sha256}, not the one recorded when the "
            "backup was made",
            "manifest_sha256",
        )
    dialect = dialect_of(engine)
    if manifest.dialect != dialect:
        raise DomainError(
            "backup_dialect_mismatch",
            f"this backup holds a {manifest.dialect} database and MUTUALAID_DATABASE_URL "
            f"names a {dialect} one: restore into the same kind of database",
            "database",
        )
    _check_known_revision(manifest.alembic_revision)
    ensure_database_empty(engine)
    _ensure_evidence_empty(evidence_root)
    verify_backup(directory, manifest, progress)

    progress.begin("restoring the database", manifest.database.size_bytes)
    try:
        restore_database(engine, directory / manifest.database.path)
        progress.advance(manifest.database.size_bytes)
    finally:
        progress.end()
    first = _restore_evidence(directory, manifest, evidence_root, progress)
    opens: bool | None = None
    if evidence_key is not None and first is not None:
        store = FileSystemEvidenceStore(evidence_root, evidence_key)
        try:
            store.open(first)
        except EvidenceCorrupted:
            opens = False
        else:
            opens = True
    return RestoreResult(directory, manifest, manifest_sha256, evidence_root, opens)


def _check_known_revision(revision: str) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise DomainError(
            "backup_from_newer_version",
            f"the backup's schema revision {revision} is unknown to mutualaid {__version__}: "
            "restore it with the version that made it (see app_version in the manifest)",
            "alembic_revision",
        )


def _ensure_evidence_empty(root: Path) -> None:
    if next(_evidence_blobs(root), None) is not None:
        raise DomainError(
            "restore_target_not_empty",
            f"the evidence folder {root} already holds files; a restore goes only into an empty "
            "one: move them away or set MUTUALAID_DATA_DIR to a new folder",
            "evidence",
        )


def _restore_evidence(
    directory: Path, manifest: Manifest, root: Path, progress: Progress
) -> str | None:
    """Copy every listed file into the store, hashing it again on the way (it might have been
    changed since it was verified); returns the address of the first file, if any."""
    first: str | None = None
    done = 0
    progress.begin("restoring evidence", manifest.evidence_bytes)
    try:
        for record in _listed(directory, manifest):
            relative = record.path.removeprefix(f"{EVIDENCE_DIR}/")
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".restore-{target.name}")
            temp.unlink(missing_ok=True)
            try:
                sha256, size = _copy(directory / record.path, temp, progress, done)
                if (sha256, size) != (record.sha256, record.size_bytes):
                    raise DomainError(
                        "backup_tampered",
                        f"{record.path} changed while it was being restored",
                        record.path,
                    )
                os.replace(temp, target)
            finally:
                temp.unlink(missing_ok=True)
            done += size
            first = first or target.name
    finally:
        progress.end()
    if hasattr(os, "sync"):
        os.sync()
    return first
