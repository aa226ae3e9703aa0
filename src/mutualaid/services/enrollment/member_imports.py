"""Bulk import of an existing plan's members from CSV (an operator migrating to mutualaid).

Streamed and set-based: rows are validated in chunks (in worker processes, so validation of the
next chunks overlaps the database writing this one), each chunk is copied into a staging table and
moved into accounts, persons and memberships by a few INSERT … SELECT statements in one transaction.
Bad rows go to an error report with their line number and reason; good rows are never lost for them.
Memory stays flat: at most workers + 1 chunks are in flight, whatever the file size.

CSV columns (header required): payer_phone, full_name, id_number, relation, joined_on
(relation: self/spouse/child/parent, default self; joined_on: YYYY-MM-DD in the plan's zone,
default today). Importing the same file twice imports nothing the second time: every row is then
refused as already_member.

Speed (benchmarks/bench_import.py): on PostgreSQL a worker renders the chunk's good rows straight
into COPY text, so the parent only forwards bytes; every lookup against the member tables is an
index probe per staged row (correlated subqueries), so a chunk costs the same whether the plan has a
thousand members or a hundred million.
"""

from __future__ import annotations

import csv
import io
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import IO

from mutualaid.db.queries.key_versions import persons_under_other_versions
from mutualaid.db.queries.memberships_imports import (
    StagedChunk,
    StagedRow,
    stages_by_copy,
    write_import_chunk,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, normalise_phone, require_role
from mutualaid.domain.calendars import (
    age_in_days,
    age_in_years,
    anniversary,
    local_date,
    start_of_day,
)
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import check_full_name, mask_name, parse_resident_id
from mutualaid.domain.memberships import (
    CoverageDates,
    MembershipState,
    Relation,
    coverage_dates,
    state_on,
)
from mutualaid.domain.plans import PlanRules
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.csv_lines import (
    MAX_FIELD_CHARS,
    LineProblem,
    bounded_lines,
    oversized_field,
    parse_line,
)
from mutualaid.services.enrollment.memberships import NO_LEAVES_ENV
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.personal_data import PersonalDataProtector

REQUIRED_COLUMNS = ("payer_phone", "full_name", "id_number")
OPTIONAL_COLUMNS = ("relation", "joined_on")
DEFAULT_CHUNK_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class ImportReport:
    plan_code: str
    rows_read: int
    imported: int
    rejected: int


@dataclass(frozen=True, slots=True)
class _Chunk:
    lines: list[int]
    rows: list[list[str]]
    #: Lines refused while reading (encoding, size): reported with the chunk's own errors.
    problems: list[LineProblem]


@dataclass(frozen=True, slots=True)
class _ChunkResult:
    staged: StagedChunk
    errors: list[tuple[int, str, str, str]]  # line, code, field, message


# --- validation (runs in a worker process; pure apart from the protector's keyed hashing) ---------

_worker_protector: PersonalDataProtector | None = None
_worker_facts: _DateFacts | None = None


def _init_worker(protector: PersonalDataProtector, rules: PlanRules, today: date) -> None:
    global _worker_protector, _worker_facts
    _worker_protector = protector
    _worker_facts = _DateFacts(rules, today)


_RELATIONS = {str(relation): relation for relation in Relation}
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_CACHE_LIMIT = 50_000  # dates; a file of odd dates cannot make the caches grow without bound


class _DateFacts:
    """What the plan's dates make of one joined_on and one birth date, each computed once per import.

    Both caches are bounded (about a hundred years of dates), whatever the file's size.

    The checks are those of the per-row code they replace (kept below as the slow path): a row whose
    dates fall inside the precomputed window is accepted without recomputing ages; any other row is
    judged by the exact original checks, so the cache can only make the common case faster.
    """

    def __init__(self, rules: PlanRules, today: date) -> None:
        self.rules = rules
        self.today = today
        entry = rules.entry
        self._min_days, self._min_years = entry.min_age_days, entry.min_age_years
        self._max_years = entry.max_age_years
        #: joined text -> (joined_on, COPY fragment "state, joined_at, joined_on, waiting, covered")
        self.joined: dict[str, tuple[date, str, date, date]] = {}
        #: birth date -> (first joined_on accepted without age checks, first one refused, ages_out_on)
        self.births: dict[date, tuple[date, date, date] | None] = {}

    def joined_on(self, joined_text: str) -> tuple[date, str, date, date]:
        stripped = joined_text.strip()
        facts = self.joined.get(stripped)
        if facts is None:
            try:
                joined_on = date.fromisoformat(stripped) if stripped else self.today
            except ValueError:
                raise DomainError(
                    "invalid_date", f"{stripped!r} is not a date (YYYY-MM-DD)", "joined_on"
                ) from None
            if joined_on > self.today:
                raise DomainError(
                    "invalid_date",
                    "joined_on is in the future",
                    "joined_on",
                    details={"variant": "future"},
                )
            # The waiting period depends on joined_on alone (ages_out_on on the birth date alone).
            dates = coverage_dates(self.rules, joined_on, joined_on)
            joined_at = start_of_day(joined_on, self.rules.zone)
            fragment = (
                f"{joined_at.isoformat()}\t{joined_on}\t{dates.waiting_ends_on}\t"
                f"{dates.covered_from_on}"
            )
            facts = (joined_on, fragment, dates.waiting_ends_on, dates.covered_from_on)
            if len(self.joined) >= _CACHE_LIMIT:
                self.joined.clear()
            self.joined[stripped] = facts
        return facts

    def birth(self, birth_on: date) -> tuple[date, date, date] | None:
        if birth_on in self.births:
            return self.births[birth_on]
        try:
            window = (
                max(
                    birth_on + timedelta(days=self._min_days),
                    anniversary(birth_on, self._min_years),
                ),
                anniversary(birth_on, self._max_years + 1),
                coverage_dates(self.rules, birth_on, birth_on).ages_out_on,
            )
        except (OverflowError, ValueError):
            window = None  # a date at the calendar's end: leave it to the exact checks
        if len(self.births) >= _CACHE_LIMIT:
            self.births.clear()
        self.births[birth_on] = window
        return window

    def check_ages(self, birth_on: date, joined_on: date) -> None:
        """The original per-row age checks, for rows outside the precomputed window."""
        entry = self.rules.entry
        if (
            age_in_days(birth_on, joined_on) < entry.min_age_days
            or age_in_years(birth_on, joined_on) < entry.min_age_years
        ):
            raise DomainError(
                "too_young",
                "below the plan's entry age on joined_on",
                "id_number",
                details={"variant": "import"},
            )
        if age_in_years(birth_on, joined_on) > entry.max_age_years:
            raise DomainError(
                "too_old",
                "above the plan's entry age on joined_on",
                "id_number",
                details={"variant": "import"},
            )


def _validate_chunk(
    chunk: _Chunk, columns: tuple[int, int, int, int, int], for_copy: bool
) -> _ChunkResult:
    protector, facts = _worker_protector, _worker_facts
    assert protector is not None and facts is not None, "worker not initialised"
    rules, today = facts.rules, facts.today
    identity_hash_of, encrypt = protector.identity_hash, protector.encrypt
    zone = rules.zone
    phone_at, name_at, id_at, relation_at, joined_at_column = columns
    width = max(columns) + 1
    phones: dict[str, str] = {}
    waiting, ended = MembershipState.WAITING, MembershipState.ENDED
    copy_lines: list[str] = []
    good: list[StagedRow] = []
    errors: list[tuple[int, str, str, str]] = list(chunk.problems)
    seen: set[str] = set()
    for line_no, row in zip(chunk.lines, chunk.rows, strict=True):
        if len(row) < width:
            row = row + [""] * (width - len(row))  # a short row: its missing fields are empty
        try:
            phone_text = row[phone_at] if phone_at >= 0 else ""
            phone = phones.get(phone_text)
            if phone is None:
                phone = phones[phone_text] = normalise_phone(phone_text, "payer_phone")
            name = check_full_name(row[name_at] if name_at >= 0 else "")
            resident = parse_resident_id(row[id_at] if id_at >= 0 else "")
            relation_text = (row[relation_at] if relation_at >= 0 else "").strip() or "self"
            relation = _RELATIONS.get(relation_text)
            if relation is None:
                raise DomainError(
                    "invalid_relation",
                    f"{relation_text!r} is not one of self, spouse, child, parent",
                    "relation",
                )
            joined_on, joined_fragment, waiting_ends_on, covered_from_on = facts.joined_on(
                row[joined_at_column] if joined_at_column >= 0 else ""
            )
            birth_on = resident.birth_on
            window = facts.birth(birth_on)
            if window is None or not window[0] <= joined_on < window[1]:
                facts.check_ages(birth_on, joined_on)
            ages_out_on = (
                window[2]
                if window is not None
                else coverage_dates(rules, joined_on, birth_on).ages_out_on
            )
            state = state_on(
                CoverageDates(joined_on, waiting_ends_on, covered_from_on, ages_out_on),
                waiting,
                today,
            )
            if state is ended:
                raise DomainError(
                    "aged_out", "this member has passed the plan's exit age", "id_number"
                )
            identity_hash = identity_hash_of(resident.number)
            if identity_hash in seen:
                raise DomainError(
                    "duplicate_in_file",
                    "this identity number appears earlier in the file",
                    "id_number",
                )
            seen.add(identity_hash)
        except DomainError as error:
            errors.append((line_no, error.code, error.field or "", error.message))
            continue
        if for_copy:
            copy_lines.append(
                f"{line_no}\t{phone}\t{identity_hash}\t\\\\x{encrypt(resident.number).hex()}\t"
                f"\\\\x{encrypt(name).hex()}\t{mask_name(name).translate(_COPY_ESCAPES)}\t"
                f"{birth_on}\t{resident.sex}\t{resident.province_code}\t{relation}\t"
                f"{state}\t{joined_fragment}\t{ages_out_on}\n"
            )
        else:
            good.append(
                (
                    line_no,
                    phone,
                    identity_hash,
                    encrypt(resident.number),
                    encrypt(name),
                    mask_name(name),
                    birth_on,
                    str(resident.sex),
                    resident.province_code,
                    str(relation),
                    str(state),
                    start_of_day(joined_on, zone),
                    joined_on,
                    waiting_ends_on,
                    covered_from_on,
                    ages_out_on,
                )
            )
    staged = StagedChunk(len(copy_lines) + len(good), "".join(copy_lines).encode(), good)
    return _ChunkResult(staged, errors)


# --- reading -----------------------------------------------------------------------------------


def _chunks(
    source: IO[bytes] | IO[str], chunk_rows: int
) -> tuple[tuple[int, int, int, int, int], Iterator[_Chunk]]:
    """The column positions (-1: absent) and the file's data rows in chunks, with line numbers.

    Lines are read bounded and decoded one by one (services/csv_lines.py): a line that cannot be
    read, or holds an oversized field, is one of the chunk's problems, and reading goes on.
    """
    problems: list[LineProblem] = []
    lines = bounded_lines(source, problems)
    first = next(lines, None)
    if problems or first is None:
        raise DomainError("invalid_csv", "the header line cannot be read", "(file)")
    header = [name.strip() for name in _parse(first[0], first[1], problems) or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise DomainError(
            "invalid_csv", f"the header lacks the column(s) {', '.join(missing)}", missing[0]
        )
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise DomainError("invalid_csv", f"unknown column(s) {', '.join(unknown)}", unknown[0])
    position = {name: index for index, name in enumerate(header)}  # a repeated name: the last wins
    phone, name, id_number, relation, joined_on = (
        position.get(column, -1) for column in REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    )
    columns = (phone, name, id_number, relation, joined_on)

    def chunks() -> Iterator[_Chunk]:
        numbers: list[int] = []
        rows: list[list[str]] = []
        for line_no, line_text in lines:
            row = _parse(line_no, line_text, problems)
            if not row:
                continue  # a blank line is no row; an unreadable one is a problem
            too_long = oversized_field(row)
            if too_long is not None:
                field = header[too_long] if too_long < len(header) else ""
                problems.append(
                    (line_no, "field_too_long", field, f"a field is over {MAX_FIELD_CHARS} chars")
                )
                continue
            numbers.append(line_no)
            rows.append(row)
            if len(rows) + len(problems) >= chunk_rows:
                yield _Chunk(numbers, rows, problems[:])
                numbers, rows = [], []
                problems.clear()
        if rows or problems:
            yield _Chunk(numbers, rows, problems[:])

    return columns, chunks()


def _parse(line_no: int, text: str, problems: list[LineProblem]) -> list[str] | None:
    try:
        return parse_line(text)
    except csv.Error as error:
        problems.append((line_no, "invalid_csv_line", "", str(error)))
        return None


_STAGED_MESSAGES = {
    "identity_registered_elsewhere": "this person is registered by another account",
    "already_member": "this person already has a membership in this plan",
}


def import_members(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    source: IO[bytes] | IO[str],
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
        # The import matches people by their hash under the current key only (set-based, in
        # SQL): while a key rotation is under way, someone under an older key would be added
        # twice, so the import waits for `mutualaid keys rotate` to finish.
        if persons_under_other_versions(session, ctx.protector.current_version):
            raise DomainError(
                "key_rotation_in_progress",
                "people are still under an older secret key version; finish "
                "`mutualaid keys rotate` before importing",
                "(file)",
            )
    today = local_date(ctx.clock.now(), rules.zone)
    # Each membership's join goes on the log with it (issue 14), set-based in the chunk's
    # statements; the switch exists for the benchmark that measures what the leaves cost.
    leaves_for = None if os.environ.get(NO_LEAVES_ENV) == "1" else plan_code
    for_copy = stages_by_copy(ctx.engine)
    columns, chunks = _chunks(source, chunk_rows)
    error_writer = csv.writer(errors_out)
    error_writer.writerow(["line", "code", "field", "message"])
    rows_read = imported = rejected = 0

    def write(result: _ChunkResult, rows_in_chunk: int) -> None:
        nonlocal rows_read, imported, rejected
        staged_errors: list[tuple[int, str]] = []
        chunk_imported = 0
        if result.staged.good_count:
            uow: UnitOfWork[None] = ctx.unit_of_work()
            with uow:
                now = ctx.clock.now()
                chunk_imported, staged_errors = write_import_chunk(
                    uow.session,
                    result.staged,
                    plan_id,
                    plan_version,
                    now,
                    leaves_for,
                    ctx.protector.current_version,
                )
                audit.record(
                    uow.session,
                    at=now,
                    actor_account_id=actor.account_id,
                    action="members_imported",
                    subject_type="plan",
                    subject_id=plan_id,
                    rows=rows_in_chunk,
                    imported=chunk_imported,
                )
                uow.commit(None)
        errors = sorted(
            result.errors
            + [(line, code, "id_number", _STAGED_MESSAGES[code]) for line, code in staged_errors]
        )
        # Counted before the report is written: the chunk is committed whatever happens next.
        rows_read += rows_in_chunk
        imported += chunk_imported
        rejected += len(errors)
        error_writer.writerows(errors)
        if progress:
            progress(rows_in_chunk)

    try:
        with ProcessPoolExecutor(
            max_workers=workers, initializer=_init_worker, initargs=(ctx.protector, rules, today)
        ) as pool:
            in_flight: deque[tuple[Future[_ChunkResult], int]] = deque()
            for chunk in chunks:
                in_flight.append(
                    (
                        pool.submit(_validate_chunk, chunk, columns, for_copy),
                        len(chunk.rows) + len(chunk.problems),
                    )
                )
                # Keep at most workers + 1 chunks in flight so memory stays flat.
                while len(in_flight) > workers:
                    future, size = in_flight.popleft()
                    write(future.result(), size)
            while in_flight:
                future, size = in_flight.popleft()
                write(future.result(), size)
    except Exception as error:
        if not imported:
            raise
        # Earlier chunks are committed: say exactly what, never "nothing was written".
        raise DomainError(
            "import_interrupted",
            f"the import stopped ({type(error).__name__}) after {rows_read:,} rows read: "
            f"{imported:,} imported and committed, {rejected:,} refused; import the same file "
            "again to finish (rows already imported are then refused as already_member)",
            "(file)",
            details={"rows_read": rows_read, "imported": imported, "rejected": rejected},
        ) from error
    return ImportReport(plan_code, rows_read, imported, rejected)


def import_members_from_text(
    ctx: ServiceContext, actor: Actor, plan_code: str, csv_text: str
) -> tuple[ImportReport, str]:
    """Convenience for small uploads: returns the report and the error CSV text."""
    errors = io.StringIO()
    report = import_members(ctx, actor, plan_code, io.StringIO(csv_text), errors)
    return report, errors.getvalue()
