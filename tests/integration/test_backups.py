"""Backups over SQLite and PostgreSQL: a plan in mid-life is backed up, restored into an empty
database and an empty evidence folder, and found whole (the ledger balances, every evidence file
opens, the log verifies against the checkpoints published before the backup); a tampered or
incomplete backup, or a target that holds data, is refused before anything is written; no key is
ever in a backup.

On PostgreSQL the source is the run's own test database and the target a database this module
creates and drops; `pg_dump` and `pg_restore` must be installed (the tests skip, saying so, when
they are not)."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from tests.builders.claims import through_investigation
from tests.builders.wind_down import LOG_KEY, ORIGIN, at, publish_rules
from tests.factories import MAIN_PLAN, close_on, members, staff

from mutualaid.clock import FixedClock
from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.models import Claim, Evidence, LogEntry
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import DomainError
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.claims.evidence import add_evidence, open_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import decide_claim
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.payouts import pay_approved_claims
from mutualaid.services.collections.prepaid import top_up
from mutualaid.services.context import ServiceContext
from mutualaid.services.evidence_store import FileSystemEvidenceStore, evidence_key
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.operations.backup import (
    FILE_LIST_NAME,
    MANIFEST_NAME,
    create_backup,
    restore_backup,
)
from mutualaid.services.operations.database_dumps import database_revision, libpq_connection
from mutualaid.services.transparency.checkpoints import LogConfig, proof_bundle, publish_checkpoint
from mutualaid.services.transparency.proofs import consistency_proof_between, log_size, root_at
from mutualaid.transparency.checkpoints import open_checkpoint
from mutualaid.transparency.merkle import MemoryTree, hash_leaf, verify_consistency
from mutualaid.transparency.verification import (
    TrustPolicy,
    parse_subject_bundle,
    verify_subject_bundle,
)

#: The ctx fixture's key (tests/conftest.py).
SECRET = "test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd"
KEY = evidence_key(SECRET)
#: A scan of 1.3 MB: several copy chunks and several encryption chunks.
SCAN = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 5_000 + b"\xff\xd9"
PHOTO = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"photo of the ward" * 40
NOW = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)


def _needs_pg_tools(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
        if missing:
            pytest.skip(f"{' and '.join(missing)} not installed: PostgreSQL backups need them")


@pytest.fixture
def source(ctx: ServiceContext, tmp_path: Path) -> ServiceContext:
    """The test's context with an evidence store of its own (in tmp_path/evidence)."""
    _needs_pg_tools(ctx.engine)
    return dataclasses.replace(
        ctx, evidence_store=FileSystemEvidenceStore(tmp_path / "evidence", KEY)
    )


@pytest.fixture
def target(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """An empty database to restore into: a new SQLite file, or a PostgreSQL database this
    fixture creates (next to the run's own) and drops."""
    if engine.dialect.name != "postgresql":
        restored = make_engine(f"sqlite:///{tmp_path / 'target-db' / 'mutualaid.db'}")
        yield restored
        restored.dispose()
        return
    name = f"mutualaid_restore_{secrets.token_hex(4)}"
    admin = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    restored = make_engine(engine.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield restored
    finally:
        restored.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _restored_context(source: ServiceContext, engine: Engine, evidence: Path) -> ServiceContext:
    return dataclasses.replace(
        source,
        engine=engine,
        sessions=make_sessionmaker(engine),
        evidence_store=FileSystemEvidenceStore(evidence, KEY),
    )


def _plan_in_mid_life(ctx: ServiceContext, clock: FixedClock) -> tuple[str, list[str]]:
    """Members joined and topped up, a claim with two documents approved and paid in the closed
    period of 21 March, checkpoints published along the way: the claim's ref and the notes."""
    notes = []
    config = LogConfig(LOG_KEY)
    at(clock, date(2026, 2, 10))
    publish_rules(ctx, funding_model="prepaid", rule="sponsor_paid", per_case_fen=10)
    people = members(ctx, clock, 5)
    for holder, _ in people:
        top_up(ctx, holder, MAIN_PLAN, 1_000)
    notes.append(publish_checkpoint(ctx, config).checkpoint.note)

    at(clock, date(2026, 3, 1))
    holder, membership = people[0]
    ref = report_claim(
        ctx,
        holder,
        ClaimReport(membership.id, "CI02", date(2026, 2, 25), "浙江省人民医院"),
    ).ref
    add_evidence(ctx, holder, ref, [SCAN[:300_000], SCAN[300_000:]], "image/jpeg", "诊断证明")
    add_evidence(ctx, holder, ref, [PHOTO], "image/png", "病房照片")
    through_investigation(ctx, ref)
    decide_claim(ctx, staff(ctx, Role.REVIEWER), ref, approve=True)
    notes.append(publish_checkpoint(ctx, config).checkpoint.note)

    operator = staff(ctx, Role.OPERATOR)
    opens = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # 7 March, 00:00 in Shanghai
    clock.set(opens)
    assert run_publicity(ctx, MAIN_PLAN, operator).published == 1
    clock.set(opens + timedelta(days=3))
    assert run_publicity(ctx, MAIN_PLAN, operator).approved == 1
    close_on(ctx, clock, date(2026, 3, 21))
    at(clock, date(2026, 3, 28))
    collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 21))
    pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 21))
    notes.append(publish_checkpoint(ctx, config).checkpoint.note)
    with ctx.reading() as session:
        assert session.scalar(select(Claim.state).where(Claim.ref == ref)) == ClaimState.PAID
    return ref, notes


def test_a_plan_in_mid_life_is_restored_whole_into_an_empty_database_and_folder(
    source: ServiceContext, clock: FixedClock, target: Engine, tmp_path: Path
) -> None:
    ref, notes = _plan_in_mid_life(source, clock)
    with source.reading() as session:
        before = balances(session)
        size_before = log_size(session)
    assert before[f"plan:{MAIN_PLAN}:payouts"] > 0

    made = create_backup(source.engine, tmp_path / "evidence", tmp_path / "backup", now=NOW)
    assert (made.manifest.dialect, made.manifest.evidence_files) == (
        source.engine.dialect.name,
        2,
    )
    assert made.manifest.alembic_revision == database_revision(source.engine)
    # The evidence is copied as it is stored: encrypted, byte for byte.
    for blob in (tmp_path / "evidence").rglob("*"):
        if blob.is_file() and "incoming" not in blob.parts:
            copy = tmp_path / "backup" / "evidence" / blob.relative_to(tmp_path / "evidence")
            assert copy.read_bytes() == blob.read_bytes()
            assert SCAN[1000:1064] not in copy.read_bytes()

    restored_evidence = tmp_path / "restored-evidence"
    result = restore_backup(
        target, restored_evidence, tmp_path / "backup", evidence_key=KEY, progress=None
    )
    assert result.key_opens_evidence is True
    assert result.manifest_sha256 == made.manifest_sha256
    restored = _restored_context(source, target, restored_evidence)

    # The ledger balances, to the fen, as before.
    with restored.reading() as session:
        assert unbalanced_transactions(session) == []
        assert balances(session) == before
        documents = session.execute(select(Evidence.id, Evidence.sha256)).all()
    # Every evidence file opens, authenticated, and holds what was uploaded.
    operator = staff(restored, Role.OPERATOR)
    contents = {b"".join(open_evidence(restored, operator, ref, id_)[1]) for id_, _ in documents}
    assert contents == {SCAN, PHOTO}
    for _, sha256 in documents:
        assert restored_evidence.joinpath(sha256[:2], sha256[2:4], sha256).is_file()

    # The log verifies against every checkpoint published before the backup.
    with restored.reading() as session:
        assert log_size(session) == size_before
        leaves = session.scalars(
            select(LogEntry.leaf_data)
            .where(LogEntry.leaf_index.is_not(None))
            .order_by(LogEntry.leaf_index)
        ).all()
        tree = MemoryTree(hash_leaf(bytes(leaf)) for leaf in leaves)
        for note in notes:
            checkpoint = open_checkpoint(note, LOG_KEY.verifier()).checkpoint
            assert root_at(session, checkpoint.size) == checkpoint.root_hash
            assert tree.root(checkpoint.size) == checkpoint.root_hash
            verify_consistency(
                old_size=checkpoint.size,
                new_size=size_before,
                old_root=checkpoint.root_hash,
                new_root=root_at(session, size_before),
                proof=consistency_proof_between(session, checkpoint.size, size_before),
            )
    # ... and goes on growing from there: a new checkpoint is consistent with the first one.
    oldest = open_checkpoint(notes[0], LOG_KEY.verifier()).checkpoint
    publish_checkpoint(restored, LogConfig(LOG_KEY))
    bundle = proof_bundle(restored, "claim", ref, older_size=oldest.size)
    report = verify_subject_bundle(
        parse_subject_bundle(bundle.to_json()), TrustPolicy(ORIGIN, LOG_KEY.verifier(), (), 0)
    )
    assert report.ok, report.failures


def test_no_key_is_in_a_backup(source: ServiceContext, tmp_path: Path) -> None:
    stored = source.evidence_store.put([SCAN], "image/jpeg")  # type: ignore[union-attr]
    staff(source, Role.OPERATOR)
    (tmp_path / "evidence" / "incoming" / "upload-cut-off").write_bytes(b"half a file")
    create_backup(source.engine, tmp_path / "evidence", tmp_path / "backup", now=NOW)
    assert not list((tmp_path / "backup").rglob("upload-cut-off"))  # not a stored file
    forbidden = [
        SECRET.encode(),
        KEY,
        LOG_KEY.encode().encode(),
        SCAN[4096:4160],  # the evidence's plaintext
    ]
    files = [path for path in (tmp_path / "backup").rglob("*") if path.is_file()]
    assert stored.sha256 in {path.name for path in files}
    contents = [path.read_bytes() for path in files]
    if source.engine.dialect.name == "postgresql":  # the custom format compresses: read as SQL
        dump = tmp_path / "backup" / "database.pgdump"
        contents.append(
            subprocess.run(["pg_restore", "-f", "-", dump], check=True, capture_output=True).stdout
        )
    for content in contents:
        for secret in forbidden:
            assert secret not in content


def _small_backup(source: ServiceContext, tmp_path: Path) -> Path:
    source.evidence_store.put([SCAN], "image/jpeg")  # type: ignore[union-attr]
    source.evidence_store.put([PHOTO], "image/png")  # type: ignore[union-attr]
    staff(source, Role.OPERATOR)
    create_backup(source.engine, tmp_path / "evidence", tmp_path / "backup", now=NOW)
    return tmp_path / "backup"


def _is_empty(engine: Engine, evidence: Path) -> bool:
    return database_revision(engine) is None and not any(
        path.is_file() for path in evidence.rglob("*")
    )


def _refused(engine: Engine, evidence: Path, backup: Path) -> DomainError:
    with pytest.raises(DomainError) as refused:
        restore_backup(engine, evidence, backup, evidence_key=KEY)
    return refused.value


def _blobs(backup: Path) -> list[Path]:
    return sorted(path for path in (backup / "evidence").rglob("*") if path.is_file())


def test_a_tampered_evidence_file_is_refused_before_anything_is_written(
    source: ServiceContext, target: Engine, tmp_path: Path
) -> None:
    backup = _small_backup(source, tmp_path)
    blob = _blobs(backup)[-1]
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    error = _refused(target, tmp_path / "restored", backup)
    assert (error.code, error.field) == (
        "backup_tampered",
        f"evidence/{blob.relative_to(backup / 'evidence').as_posix()}",
    )
    assert _is_empty(target, tmp_path / "restored")


def test_a_tampered_database_or_file_list_is_refused(
    source: ServiceContext, target: Engine, tmp_path: Path
) -> None:
    backup = _small_backup(source, tmp_path)
    database = next(backup.glob("database.*"))
    with database.open("ab") as file:
        file.write(b"\0")
    assert _refused(target, tmp_path / "restored", backup).code == "backup_tampered"
    with database.open("r+b") as file:
        file.truncate(database.stat().st_size - 1)
    listing = backup / FILE_LIST_NAME
    listing.write_bytes(listing.read_bytes().splitlines(keepends=True)[0])
    assert _refused(target, tmp_path / "restored", backup).code == "backup_tampered"
    assert _is_empty(target, tmp_path / "restored")


def test_an_incomplete_backup_is_refused(
    source: ServiceContext, target: Engine, tmp_path: Path
) -> None:
    backup = _small_backup(source, tmp_path)
    _blobs(backup)[0].unlink()
    assert _refused(target, tmp_path / "restored", backup).code == "backup_incomplete"
    (backup / MANIFEST_NAME).unlink()
    assert _refused(target, tmp_path / "restored", backup).code == "backup_incomplete"
    assert _is_empty(target, tmp_path / "restored")


def test_a_target_that_holds_data_is_refused(
    source: ServiceContext, target: Engine, tmp_path: Path
) -> None:
    backup = _small_backup(source, tmp_path)
    error = _refused(source.engine, tmp_path / "restored", backup)
    assert (error.code, error.field) == ("restore_target_not_empty", "database")
    assert not (tmp_path / "restored").exists()
    error = _refused(target, tmp_path / "evidence", backup)
    assert (error.code, error.field) == ("restore_target_not_empty", "evidence")
    assert database_revision(target) is None


def test_a_manifest_other_than_the_recorded_one_is_refused(
    source: ServiceContext, target: Engine, tmp_path: Path
) -> None:
    backup = _small_backup(source, tmp_path)
    recorded = hashlib.sha256((backup / MANIFEST_NAME).read_bytes()).hexdigest()
    with pytest.raises(DomainError) as refused:
        restore_backup(target, tmp_path / "restored", backup, expected_manifest_sha256="0" * 64)
    assert refused.value.code == "backup_manifest_mismatch"
    restore_backup(target, tmp_path / "restored", backup, expected_manifest_sha256=recorded)
    assert database_revision(target) == database_revision(source.engine)


def test_a_backup_goes_only_into_a_new_or_empty_folder(
    source: ServiceContext, tmp_path: Path
) -> None:
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "notes.txt").write_text("last week's")
    with pytest.raises(DomainError) as refused:
        create_backup(source.engine, tmp_path / "evidence", tmp_path / "backup", now=NOW)
    assert refused.value.code == "backup_target_not_empty"


def test_a_backup_of_a_database_without_schema_is_refused(target: Engine, tmp_path: Path) -> None:
    _needs_pg_tools(target)
    with pytest.raises(DomainError) as refused:
        create_backup(target, tmp_path / "evidence", tmp_path / "backup", now=NOW)
    assert refused.value.code == "database_empty"


def test_the_postgresql_tools_get_no_password_in_their_arguments() -> None:
    url = "postgresql+psycopg://ops:s3cret-pw@db.example:5433/plan?sslmode=require"
    conninfo, environment = libpq_connection(create_engine(url))
    assert conninfo == "postgresql://ops@db.example:5433/plan?sslmode=require"
    assert environment["PGPASSWORD"] == "s3cret-pw"
