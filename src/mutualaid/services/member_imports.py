"""Bulk import of an existing plan's members from CSV (an operator migrating to mutualaid).

Streamed and set-based: rows are validated in chunks (in a worker process, so validation of the
next chunk overlaps the database writing this one), each chunk is copied into a staging table and
moved into accounts, persons and memberships by a few INSERT … SELECT statements in one transaction.
Bad rows go to an error report with their line number and reason; good rows are never lost for them.
Memory stays flat: at most two chunks are in flight, whatever the file size.

CSV columns (header required): payer_phone, full_name, id_number, relation, joined_on
(relation: self/spouse/child/parent, default self; joined_on: YYYY-MM-DD in the plan's zone,
default today). Importing the same file twice imports nothing the second time: every row is then
refused as already_member.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, normalise_phone, require_role
from mutualaid.domain.calendars import age_in_days, age_in_years, local_date, start_of_day
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import mask_name, parse_resident_id
from mutualaid.domain.memberships import MembershipState, Relation, coverage_dates, state_on
from mutualaid.domain.plans import PlanRules
from mutualaid.services import audit
from mutualaid.services.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.personal_data import PersonalDataProtector

REQUIRED_COLUMNS = ("payer_phone", "full_name", "id_number")
OPTIONAL_COLUMNS = ("relation", "joined_on")
DEFAULT_CHUNK_ROWS = 20_000

_STAGING_COLUMNS = (
    "line_no", "phone", "identity_hash", "identity_ciphertext", "name_ciphertext", "name_masked",
    "birth_on", "sex", "province_code", "relation", "state", "joined_at", "joined_on",
    "waiting_ends_on", "covered_from_on", "ages_out_on",
)


@dataclass(frozen=True, slots=True)
class ImportReport:
    plan_code: str
    rows_read: int
    imported: int
    rejected: int


@dataclass(frozen=True, slots=True)
class _ChunkResult:
    good: list[tuple[Any, ...]]
    errors: list[tuple[int, str, str, str]]  # line, code, field, message


# --- validation (runs in a worker process; pure apart from the protector's keyed hashing) ---------

_worker_protector: PersonalDataProtector | None = None


def _init_worker(protector: PersonalDataProtector) -> None:
    global _worker_protector
    _worker_protector = protector


def _validate_chunk(
    rows: list[tuple[int, dict[str, str]]], rules: PlanRules, today: date
) -> _ChunkResult:
    protector = _worker_protector
    assert protector is not None, "worker not initialised"
    zone = rules.zone
    entry = rules.entry
    good: list[tuple[Any, ...]] = []
    errors: list[tuple[int, str, str, str]] = []
    seen: set[str] = set()
    for line_no, row in rows:
        try:
            phone = normalise_phone(row.get("payer_phone") or "", "payer_phone")
            name = (row.get("full_name") or "").strip()
            if not name or len(name) > 50:
                raise DomainError("invalid_name", "a name has 1 to 50 characters", "full_name")
            resident = parse_resident_id(row.get("id_number") or "")
            relation_text = (row.get("relation") or "self").strip() or "self"
            try:
                relation = Relation(relation_text)
            except ValueError:
                raise DomainError("invalid_relation", f"{relation_text!r} is not one of "
                                  "self, spouse, child, parent", "relation") from None
            joined_text = (row.get("joined_on") or "").strip()
            try:
                joined_on = date.fromisoformat(joined_text) if joined_text else today
            except ValueError:
                raise DomainError("invalid_date", f"{joined_text!r} is not a date (YYYY-MM-DD)",
                                  "joined_on") from None
            if joined_on > today:
                raise DomainError("invalid_date", "joined_on is in the future", "joined_on")
            if age_in_days(resident.birth_on, joined_on) < entry.min_age_days or age_in_years(
                    resident.birth_on, joined_on) < entry.min_age_years:
                raise DomainError("too_young", "below the plan's entry age on joined_on", "id_number")
            if age_in_years(resident.birth_on, joined_on) > entry.max_age_years:
                raise DomainError("too_old", "above the plan's entry age on joined_on", "id_number")
            dates = coverage_dates(rules, joined_on, resident.birth_on)
            state = state_on(dates, MembershipState.WAITING, today)
            if state is MembershipState.ENDED:
                raise DomainError("aged_out", "this member has passed the plan's exit age", "id_number")
            identity_hash = protector.identity_hash(resident.number)
            if identity_hash in seen:
                raise DomainError("duplicate_in_file", "this identity number appears earlier in the file",
                                  "id_number")
            seen.add(identity_hash)
        except DomainError as error:
            errors.append((line_no, error.code, error.field or "", error.message))
            continue
        good.append((
            line_no, phone, identity_hash, protector.encrypt(resident.number), protector.encrypt(name),
            mask_name(name), resident.birth_on, str(resident.sex), resident.province_code, str(relation),
            str(state), start_of_day(joined_on, zone), joined_on, dates.waiting_ends_on,
            dates.covered_from_on, dates.ages_out_on,
        ))
    return _ChunkResult(good, errors)


# --- reading -----------------------------------------------------------------------------------

def _chunks(source: IO[str], chunk_rows: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(source)
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise DomainError("invalid_csv", f"the header lacks the column(s) {', '.join(missing)}",
                          missing[0])
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise DomainError("invalid_csv", f"unknown column(s) {', '.join(unknown)}", unknown[0])
    reader.fieldnames = header
    chunk: list[tuple[int, dict[str, str]]] = []
    for row in reader:
        chunk.append((reader.line_num, row))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- writing (set-based) -----------------------------------------------------------------------

_CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS import_staging (
  line_no BIGINT, phone VARCHAR(20), identity_hash VARCHAR(64), identity_ciphertext {blob},
  name_ciphertext {blob}, name_masked VARCHAR(50), birth_on DATE, sex VARCHAR(1),
  province_code VARCHAR(2), relation VARCHAR(10), state VARCHAR(10), joined_at {instant},
  joined_on DATE, waiting_ends_on DATE, covered_from_on DATE, ages_out_on DATE,
  error VARCHAR(40)
)"""


def _stage(session: Session, good: list[tuple[Any, ...]]) -> None:
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    connection.exec_driver_sql(_CREATE_STAGING.format(
        blob="BYTEA" if postgres else "BLOB",
        instant="TIMESTAMP WITH TIME ZONE" if postgres else "DATETIME",
    ))
    if postgres:
        # COPY is the fastest way into PostgreSQL; psycopg streams the rows.
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY import_staging ({', '.join(_STAGING_COLUMNS)}) FROM STDIN") as copy:
            for row in good:
                copy.write_row(row)
    else:
        placeholders = ", ".join("?" for _ in _STAGING_COLUMNS)
        sqlite_rows = [
            (*row[:11], row[11].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[12:]) for row in good
        ]
        connection.exec_driver_sql(
            f"INSERT INTO import_staging ({', '.join(_STAGING_COLUMNS)}) VALUES ({placeholders})",
            sqlite_rows,  # type: ignore[arg-type]
        )


def _move_staged(session: Session, plan_id: int, plan_version: int, now: datetime) -> int:
    params = {"plan_id": plan_id, "version": plan_version, "now": now}
    session.execute(text("""
        INSERT INTO accounts (phone, role, locale, created_at)
        SELECT DISTINCT phone, 'member', 'zh_CN', :now FROM import_staging WHERE true
        ON CONFLICT (phone) DO NOTHING"""), params)
    session.execute(text("""
        UPDATE import_staging SET error = 'identity_registered_elsewhere'
        WHERE EXISTS (SELECT 1 FROM persons p JOIN accounts a ON a.id = p.account_id
                      WHERE p.identity_hash = import_staging.identity_hash
                        AND a.phone <> import_staging.phone)"""))
    session.execute(text("""
        UPDATE import_staging SET error = 'already_member'
        WHERE error IS NULL AND EXISTS (
            SELECT 1 FROM persons p JOIN memberships m ON m.person_id = p.id
            WHERE p.identity_hash = import_staging.identity_hash AND m.plan_id = :plan_id
              AND m.state IN ('waiting', 'covered', 'suspended'))"""), params)
    session.execute(text("""
        INSERT INTO persons (account_id, relation, identity_hash, identity_ciphertext,
                             name_ciphertext, name_masked, birth_on, sex, province_code, created_at)
        SELECT a.id, s.relation, s.identity_hash, s.identity_ciphertext, s.name_ciphertext,
               s.name_masked, s.birth_on, s.sex, s.province_code, :now
        FROM import_staging s JOIN accounts a ON a.phone = s.phone
        WHERE s.error IS NULL
        ON CONFLICT (identity_hash) DO NOTHING"""), params)
    imported = session.execute(text("""
        INSERT INTO memberships (plan_id, plan_version, person_id, payer_account_id, state,
                                 joined_at, joined_on, waiting_ends_on, covered_from_on, ages_out_on)
        SELECT :plan_id, :version, p.id, p.account_id, s.state, s.joined_at, s.joined_on,
               s.waiting_ends_on, s.covered_from_on, s.ages_out_on
        FROM import_staging s JOIN persons p ON p.identity_hash = s.identity_hash
        WHERE s.error IS NULL"""), params).rowcount
    return int(imported)


def _staged_errors(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(text(
        "SELECT line_no, error FROM import_staging WHERE error IS NOT NULL ORDER BY line_no"
    )).all()
    session.execute(text("DELETE FROM import_staging"))
    return [(int(line), str(code)) for line, code in rows]


_STAGED_MESSAGES = {
    "identity_registered_elsewhere": "this person is registered by another account",
    "already_member": "this person already has a membership in this plan",
}


def import_members(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    source: IO[str],
    errors_out: IO[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> ImportReport:
    """Import members from CSV `source`; write refused rows to `errors_out` (CSV); report counts."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        plan_id, plan_version = plan.id, plan.current_version
        rules = current_rules(session, plan)
    today = local_date(ctx.clock.now(), rules.zone)
    error_writer = csv.writer(errors_out)
    error_writer.writerow(["line", "code", "field", "message"])
    rows_read = imported = rejected = 0

    def write(result: _ChunkResult, rows_in_chunk: int) -> None:
        nonlocal rows_read, imported, rejected
        staged_errors: list[tuple[int, str]] = []
        chunk_imported = 0
        if result.good:
            with ctx.transaction() as session:
                now = ctx.clock.now()
                _stage(session, result.good)
                chunk_imported = _move_staged(session, plan_id, plan_version, now)
                staged_errors = _staged_errors(session)
                audit.record(session, at=now, actor_account_id=actor.account_id,
                             action="members_imported", subject_type="plan", subject_id=plan_id,
                             rows=rows_in_chunk, imported=chunk_imported)
        errors = sorted(
            result.errors
            + [(line, code, "id_number", _STAGED_MESSAGES[code]) for line, code in staged_errors]
        )
        error_writer.writerows(errors)
        rows_read += rows_in_chunk
        imported += chunk_imported
        rejected += len(errors)
        if progress:
            progress(rows_in_chunk)

    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(ctx.protector,)) as pool:
        in_flight: list[tuple[Future[_ChunkResult], int]] = []
        for chunk in _chunks(source, chunk_rows):
            in_flight.append((pool.submit(_validate_chunk, chunk, rules, today), len(chunk)))
            # Keep at most workers + 1 chunks in flight so memory stays flat.
            while len(in_flight) > workers:
                future, size = in_flight.pop(0)
                write(future.result(), size)
        for future, size in in_flight:
            write(future.result(), size)
    return ImportReport(plan_code, rows_read, imported, rejected)


def import_members_from_text(
    ctx: ServiceContext, actor: Actor, plan_code: str, csv_text: str
) -> tuple[ImportReport, str]:
    """Convenience for small uploads: returns the report and the error CSV text."""
    errors = io.StringIO()
    report = import_members(ctx, actor, plan_code, io.StringIO(csv_text), errors)
    return report, errors.getvalue()
