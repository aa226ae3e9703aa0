"""`mutualaid backup DIR` and `mutualaid restore DIR`, as an operator runs them: what they print,
what they refuse (with the error code and a non-zero exit), and the restore drill end to end."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import account

from mutualaid.db.engines import make_engine
from mutualaid.db.models import Account
from mutualaid.services.context import ServiceContext
from mutualaid.services.evidence_store import FileSystemEvidenceStore, evidence_key
from mutualaid.services.operations.database_dumps import database_revision

SECRET = "test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd"
OTHER_SECRET = "another-deployment-key-Hq4Wz8Lr2Xc6Vb9Nm3"
SCAN = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 300 + b"\xff\xd9"


@pytest.fixture
def target_url(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """An empty database to restore into: a new SQLite file, or a PostgreSQL database made and
    dropped here."""
    if engine.dialect.name != "postgresql":
        yield f"sqlite:///{tmp_path / 'restored-db' / 'mutualaid.db'}"
        return
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump or pg_restore not installed: PostgreSQL backups need them")
    name = f"mutualaid_restore_{secrets.token_hex(4)}"
    admin = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def backed_up(ctx: ServiceContext, target_url: str, tmp_path: Path) -> tuple[Path, str]:
    """A deployment with an account and an evidence file, backed up by the command: the backup
    folder and the manifest hash it printed."""
    account(ctx)
    FileSystemEvidenceStore(tmp_path / "var" / "evidence", evidence_key(SECRET)).put(
        [SCAN], "image/jpeg"
    )
    result = mutualaid("backup", str(tmp_path / "backup"))
    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert f"backed up into {tmp_path / 'backup'}" in out
    assert "evidence 1 files" in out
    assert "MUTUALAID_SECRET_KEY" in out  # what to keep apart is said every time
    return tmp_path / "backup", out.split("manifest sha256 ")[1].split()[0]


def _restore_env(monkeypatch: pytest.MonkeyPatch, url: str, data_dir: Path) -> None:
    monkeypatch.setenv("MUTUALAID_DATABASE_URL", url)
    monkeypatch.setenv("MUTUALAID_DATA_DIR", str(data_dir))


def test_the_restore_drill_brings_back_the_database_and_the_evidence(
    ctx: ServiceContext,
    backed_up: tuple[Path, str],
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backup, manifest_sha256 = backed_up
    _restore_env(monkeypatch, target_url, tmp_path / "new")

    result = mutualaid("restore", str(backup), "--manifest-sha256", manifest_sha256)

    assert result.exit_code == 0, result.output
    out = said(result.stdout)
    assert f"restored the backup in {backup}" in out
    assert "evidence 1 files" in out and f"manifest sha256 {manifest_sha256}" in out
    assert "warning" not in result.output
    restored = make_engine(target_url)
    try:
        assert database_revision(restored) == database_revision(ctx.engine)
        with restored.connect() as connection:
            assert connection.scalar(select(Account.id)) is not None
    finally:
        restored.dispose()
    store = FileSystemEvidenceStore(tmp_path / "new" / "evidence", evidence_key(SECRET))
    (blob,) = (p for p in (tmp_path / "new" / "evidence").rglob("*") if p.is_file())
    assert b"".join(store.open(blob.name)) == SCAN


def test_a_restore_under_another_secret_key_warns_that_the_evidence_will_not_open(
    backed_up: tuple[Path, str],
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _restore_env(monkeypatch, target_url, tmp_path / "new")
    monkeypatch.setenv("MUTUALAID_SECRET_KEY", OTHER_SECRET)

    result = mutualaid("restore", str(backed_up[0]))

    assert result.exit_code == 0, result.output
    assert "do not open with this MUTUALAID_SECRET_KEY" in said(result.stderr)


def test_a_restore_into_a_database_that_holds_data_is_refused(
    backed_up: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUTUALAID_DATA_DIR", str(tmp_path / "new"))

    result = mutualaid("restore", str(backed_up[0]))  # into the database it came from

    assert result.exit_code == 2
    assert "restore_target_not_empty (database)" in said(result.stderr)
    assert_clean_failure(result)
    assert not (tmp_path / "new" / "evidence").exists()


def test_a_tampered_backup_is_refused_with_its_code(
    backed_up: tuple[Path, str],
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backup = backed_up[0]
    _restore_env(monkeypatch, target_url, tmp_path / "new")
    database = next(backup.glob("database.*"))
    content = database.read_bytes()
    database.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))

    result = mutualaid("restore", str(backup))

    assert result.exit_code == 2
    assert f"backup_tampered ({database.name})" in said(result.stderr)
    assert_clean_failure(result)
    wrong = mutualaid("restore", str(backup), "--manifest-sha256", "0" * 64)
    assert wrong.exit_code == 2 and "backup_manifest_mismatch" in said(wrong.stderr)


def test_a_folder_that_is_no_backup_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = mutualaid("restore", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "backup_incomplete" in said(result.stderr)
    missing = mutualaid("restore", str(tmp_path / "nowhere"))
    assert missing.exit_code == 3 and "backup_not_found" in said(missing.stderr)


def test_help_says_what_is_and_is_not_in_a_backup() -> None:
    backup = said(mutualaid("backup", "--help").stdout)
    assert "Keys are NOT in the backup" in backup and "Partial uploads" in backup
    restore = said(mutualaid("restore", "--help").stdout)
    assert "EMPTY database" in restore and "--manifest-sha256" in restore
