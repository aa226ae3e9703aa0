"""Moving a chunk of imported members into accounts, persons and memberships, set-based.

The chunk is staged in a temporary table, then moved by a few INSERT … SELECT statements in the
caller's transaction. PostgreSQL stages it by COPY (the rows rendered as COPY text by the import's
workers) and sends the statements through the driver's cursor; SQLite stages parameter rows.
Every lookup is an index probe per staged row, so a chunk costs the same whatever the plan's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from mutualaid.db.models import Membership
from mutualaid.db.queries.memberships import epoch_seconds, insert_membership_event_leaves
from mutualaid.transparency.leaves import canonical_leaf

if TYPE_CHECKING:
    from psycopg import Cursor

#: One staged row: line_no, phone, identity_hash, identity_ciphertext, name_ciphertext,
#: name_masked, birth_on, sex, province_code, relation, state, joined_at, joined_on,
#: waiting_ends_on, covered_from_on, ages_out_on.
StagedRow = tuple[
    int, str, str, bytes, bytes, str, date, str, str, str, str, datetime, date, date, date, date
]

_STAGING_COLUMNS = (
    "line_no",
    "phone",
    "identity_hash",
    "identity_ciphertext",
    "name_ciphertext",
    "name_masked",
    "birth_on",
    "sex",
    "province_code",
    "relation",
    "state",
    "joined_at",
    "joined_on",
    "waiting_ends_on",
    "covered_from_on",
    "ages_out_on",
)


def stages_by_copy(engine: Engine) -> bool:
    """Whether a chunk is staged as COPY text (PostgreSQL) rather than as parameter rows."""
    return engine.dialect.name == "postgresql"


@dataclass(frozen=True, slots=True)
class StagedChunk:
    """A chunk's good rows, in the form its database stages them."""

    good_count: int
    #: PostgreSQL: the body of `COPY … FROM STDIN` (text format).
    copy_data: bytes = b""
    #: SQLite: parameter tuples.
    rows: list[StagedRow] = field(default_factory=list)


def write_import_chunk(
    session: Session,
    chunk: StagedChunk,
    plan_id: int,
    plan_version: int,
    now: datetime,
    plan_ref: str | None,
    key_version: int = 1,
) -> tuple[int, list[tuple[int, str]]]:
    """Stage and move one chunk: the number of memberships created, and the (line, error code)
    of each staged row refused (identity_registered_elsewhere, already_member).

    With `plan_ref` (the plan's code), each new membership's `join` leaf is queued to the
    transparency log by the same statements (issue 14; None only in the benchmark that measures
    what they cost)."""
    if plan_ref is not None:  # checked once: the SQL below writes it into every leaf
        canonical_leaf(
            "membership_event",
            {
                "plan_ref": plan_ref,
                "membership_ref": "m-1",
                "event": "join",
                "state": "waiting",
                "occurred_at": 0,
            },
        )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        return _write_postgres(session, chunk, plan_id, plan_version, now, plan_ref, key_version)
    written = _write_sqlite(session, chunk, plan_id, plan_version, now, plan_ref, key_version)
    return written


_STAGING = "member_import_staging"

_CREATE_STAGING_POSTGRES = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (
  line_no BIGINT, phone VARCHAR(20), identity_hash VARCHAR(64), identity_ciphertext BYTEA,
  name_ciphertext BYTEA, name_masked VARCHAR(50), birth_on DATE, sex VARCHAR(1),
  province_code VARCHAR(2), relation VARCHAR(10), state VARCHAR(10),
  joined_at TIMESTAMP WITH TIME ZONE, joined_on DATE, waiting_ends_on DATE, covered_from_on DATE,
  ages_out_on DATE, error VARCHAR(40), account_id BIGINT, person_id BIGINT,
  person_account_id BIGINT, person_is_new BOOLEAN
) ON COMMIT DELETE ROWS"""

# Lookups are scalar correlated subqueries: one index probe per staged row, never a scan of a
# member table, whatever the planner believes about table sizes (statistics lag behind a bulk
# import). EXISTS would not do: the planner turns it into a semi-join or a hashed subplan, which
# reads every member of the plan for each chunk.
_POSTGRES_ACCOUNTS = f"""
INSERT INTO accounts (phone, role, locale, created_at)
SELECT DISTINCT phone, 'member', 'zh_CN', %(now)s FROM {_STAGING}
ON CONFLICT (phone) DO NOTHING"""

# The common case first: every staged person is new. Their persons and memberships are inserted
# by one statement; the unique index on identity_hash is the only check for an existing person.
_POSTGRES_NEW_PERSONS = f"""
WITH new_persons AS (
  INSERT INTO persons (account_id, relation, identity_hash, identity_ciphertext, name_ciphertext,
                       name_masked, birth_on, sex, province_code, created_at, key_version)
  SELECT (SELECT a.id FROM accounts a WHERE a.phone = s.phone), relation, identity_hash,
         identity_ciphertext, name_ciphertext, name_masked, birth_on, sex, province_code, %(now)s,
         %(key_version)s
  FROM {_STAGING} s
  ON CONFLICT (identity_hash) DO NOTHING
  RETURNING id, account_id, identity_hash
), new_memberships AS (
  INSERT INTO memberships (plan_id, plan_version, person_id, payer_account_id, state, joined_at,
                           joined_on, waiting_ends_on, covered_from_on, ages_out_on)
  SELECT %(plan_id)s, %(version)s, np.id, np.account_id, s.state, s.joined_at, s.joined_on,
         s.waiting_ends_on, s.covered_from_on, s.ages_out_on
  FROM {_STAGING} s JOIN new_persons np ON np.identity_hash = s.identity_hash
  RETURNING id, joined_at, state
){{leaves}}
SELECT count(*) FROM new_memberships"""

# Issue 14: each new membership's `join` leaf, built and hashed by the database exactly as
# transparency.leaves.membership_event_leaf builds it (tests compare the two).
_POSTGRES_LEAVES = """, new_leaves AS (
  INSERT INTO log_entries (leaf_type, leaf_data, leaf_hash, subject_type, subject_ref, queued_at)
  SELECT 'membership_event', leaf.data, sha256('\\x00'::bytea || leaf.data), 'membership',
         'm-' || nm.id, %(now)s
  FROM new_memberships nm CROSS JOIN LATERAL (SELECT convert_to(
    '{"event":"join","membership_ref":"m-' || nm.id || '","occurred_at":'
    || CAST(floor(extract(epoch FROM nm.joined_at)) AS BIGINT) || ',"plan_ref":"'
    || %(plan_ref)s || '","state":"' || nm.state || '","type":"membership_event","v":1}',
    'UTF8') AS data) AS leaf
)"""

# Only when some staged person existed already (a re-import, an overlap, a concurrent enrollment):
# a new statement, so its snapshot sees persons that a concurrent transaction committed meanwhile.
_POSTGRES_EXISTING = (
    f"""UPDATE {_STAGING} s SET
          (person_id, person_account_id, person_is_new) = (
            SELECT p.id, p.account_id, p.xmin = pg_current_xact_id()::xid
            FROM persons p WHERE p.identity_hash = s.identity_hash),
          account_id = (SELECT a.id FROM accounts a WHERE a.phone = s.phone)""",
    f"""UPDATE {_STAGING} s SET error = CASE
          WHEN s.person_account_id <> s.account_id THEN 'identity_registered_elsewhere'
          WHEN (SELECT 1 FROM memberships m
                WHERE m.plan_id = %(plan_id)s AND m.person_id = s.person_id
                  AND m.state IN ('waiting', 'covered', 'suspended') LIMIT 1) IS NOT NULL
            THEN 'already_member'
        END
        WHERE s.person_is_new IS NOT TRUE""",
    f"""WITH new_memberships AS (
          INSERT INTO memberships (plan_id, plan_version, person_id, payer_account_id, state,
                                   joined_at, joined_on, waiting_ends_on, covered_from_on,
                                   ages_out_on)
          SELECT %(plan_id)s, %(version)s, person_id, person_account_id, state, joined_at,
                 joined_on, waiting_ends_on, covered_from_on, ages_out_on
          FROM {_STAGING} WHERE person_is_new IS NOT TRUE AND error IS NULL
          ON CONFLICT (plan_id, person_id) WHERE state IN ('waiting', 'covered', 'suspended')
          DO NOTHING
          RETURNING id, joined_at, state
        ){{leaves}}
        SELECT count(*) FROM new_memberships""",
)

# Only when a concurrent enrollment took the membership between the check and the insert.
_POSTGRES_RACED = f"""
UPDATE {_STAGING} s SET error = 'already_member'
WHERE s.person_is_new IS NOT TRUE AND s.error IS NULL
  AND (SELECT 1 FROM memberships m
       WHERE m.plan_id = %(plan_id)s AND m.person_id = s.person_id
         AND m.xmin = pg_current_xact_id()::xid LIMIT 1) IS NULL"""


def _write_postgres(
    session: Session,
    chunk: StagedChunk,
    plan_id: int,
    plan_version: int,
    now: datetime,
    plan_ref: str | None,
    key_version: int,
) -> tuple[int, list[tuple[int, str]]]:
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    params = {
        "plan_id": plan_id,
        "version": plan_version,
        "now": now,
        "plan_ref": plan_ref,
        "key_version": key_version,
    }
    leaves = "" if plan_ref is None else _POSTGRES_LEAVES
    # ON COMMIT DELETE ROWS: emptied by every commit, so the table never holds dead rows.
    cursor.execute(_CREATE_STAGING_POSTGRES)
    # Cost estimates this large trigger JIT compilation, which costs more than the statements;
    # the one join (new persons to their staged rows) is chunk by chunk: hash it.
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL enable_nestloop = off")
    with cursor.copy(f"COPY {_STAGING} ({', '.join(_STAGING_COLUMNS)}) FROM STDIN") as copy:
        copy.write(chunk.copy_data)
    cursor.execute(_POSTGRES_ACCOUNTS, params)
    imported = _fetch_count(cursor, _POSTGRES_NEW_PERSONS.format(leaves=leaves), params)
    if imported == chunk.good_count:
        return imported, []
    update_existing, judge_existing, insert_existing = _POSTGRES_EXISTING
    cursor.execute(update_existing, params)
    cursor.execute(judge_existing, params)
    imported += _fetch_count(cursor, insert_existing.format(leaves=leaves), params)
    if imported != _fetch_count(
        cursor, f"SELECT count(*) FROM {_STAGING} WHERE error IS NULL", params
    ):
        cursor.execute(_POSTGRES_RACED, params)
    cursor.execute(f"SELECT line_no, error FROM {_STAGING} WHERE error IS NOT NULL")
    return imported, [(int(line), str(code)) for line, code in cursor.fetchall()]


def _fetch_count(cursor: Cursor[tuple[int]], statement: str, params: Mapping[str, object]) -> int:
    cursor.execute(statement, params)
    row = cursor.fetchone()
    assert row is not None
    return int(row[0])


_CREATE_STAGING_SQLITE = """
CREATE TEMPORARY TABLE IF NOT EXISTS import_staging (
  line_no BIGINT, phone VARCHAR(20), identity_hash VARCHAR(64), identity_ciphertext BLOB,
  name_ciphertext BLOB, name_masked VARCHAR(50), birth_on DATE, sex VARCHAR(1),
  province_code VARCHAR(2), relation VARCHAR(10), state VARCHAR(10), joined_at DATETIME,
  joined_on DATE, waiting_ends_on DATE, covered_from_on DATE, ages_out_on DATE,
  error VARCHAR(40)
)"""


def _write_sqlite(
    session: Session,
    chunk: StagedChunk,
    plan_id: int,
    plan_version: int,
    now: datetime,
    plan_ref: str | None,
    key_version: int,
) -> tuple[int, list[tuple[int, str]]]:
    connection = session.connection()
    connection.exec_driver_sql(_CREATE_STAGING_SQLITE)
    placeholders = ", ".join("?" for _ in _STAGING_COLUMNS)
    sqlite_rows = [
        (*row[:11], row[11].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[12:]) for row in chunk.rows
    ]
    connection.exec_driver_sql(
        f"INSERT INTO import_staging ({', '.join(_STAGING_COLUMNS)}) VALUES ({placeholders})",
        sqlite_rows,
    )
    params = {"plan_id": plan_id, "version": plan_version, "now": now, "key_version": key_version}
    session.execute(
        text("""
        INSERT INTO accounts (phone, role, locale, created_at)
        SELECT DISTINCT phone, 'member', 'zh_CN', :now FROM import_staging WHERE true
        ON CONFLICT (phone) DO NOTHING"""),
        params,
    )
    session.execute(
        text("""
        UPDATE import_staging SET error = 'identity_registered_elsewhere'
        WHERE EXISTS (SELECT 1 FROM persons p JOIN accounts a ON a.id = p.account_id
                      WHERE p.identity_hash = import_staging.identity_hash
                        AND a.phone <> import_staging.phone)""")
    )
    session.execute(
        text("""
        UPDATE import_staging SET error = 'already_member'
        WHERE error IS NULL AND EXISTS (
            SELECT 1 FROM persons p JOIN memberships m ON m.person_id = p.id
            WHERE p.identity_hash = import_staging.identity_hash AND m.plan_id = :plan_id
              AND m.state IN ('waiting', 'covered', 'suspended'))"""),
        params,
    )
    session.execute(
        text("""
        INSERT INTO persons (account_id, relation, identity_hash, identity_ciphertext,
                             name_ciphertext, name_masked, birth_on, sex, province_code, created_at,
                             key_version)
        SELECT a.id, s.relation, s.identity_hash, s.identity_ciphertext, s.name_ciphertext,
               s.name_masked, s.birth_on, s.sex, s.province_code, :now, :key_version
        FROM import_staging s JOIN accounts a ON a.phone = s.phone
        WHERE s.error IS NULL
        ON CONFLICT (identity_hash) DO NOTHING"""),
        params,
    )
    # Ids are rowids and the write lock is held: the new memberships are those above this one.
    before = session.execute(text("SELECT coalesce(max(id), 0) FROM memberships")).scalar_one()
    moved = session.execute(
        text("""
        INSERT INTO memberships (plan_id, plan_version, person_id, payer_account_id, state,
                                 joined_at, joined_on, waiting_ends_on, covered_from_on, ages_out_on)
        SELECT :plan_id, :version, p.id, p.account_id, s.state, s.joined_at, s.joined_on,
               s.waiting_ends_on, s.covered_from_on, s.ages_out_on
        FROM import_staging s JOIN persons p ON p.identity_hash = s.identity_hash
        WHERE s.error IS NULL"""),
        params,
    )
    imported = moved.rowcount  # type: ignore[attr-defined]
    if plan_ref is not None:
        insert_membership_event_leaves(
            session,
            select(
                Membership.id, epoch_seconds(session, Membership.joined_at), Membership.state
            ).where(Membership.id > before, Membership.plan_id == plan_id),
            plan_ref=plan_ref,
            event="join",
            queued_at=now,
        )
    rows = session.execute(
        text("SELECT line_no, error FROM import_staging WHERE error IS NOT NULL ORDER BY line_no")
    ).all()
    session.execute(text("DELETE FROM import_staging"))
    return int(imported), [(int(line), str(code)) for line, code in rows]
