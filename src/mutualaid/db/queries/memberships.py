"""Reading memberships, and the two statements of a join (its one read and its one write).

Joining is the busiest write of a launch: one read (the plan, its rules' hash, the ids the new rows
will take, what is known of the person and of the caller), then one write. The dialect shows only
here: PostgreSQL takes the ids from its sequences and writes every row in one statement;
SQLite takes them as the next rowids (the write lock is held from BEGIN IMMEDIATE) and writes the
rows one by one, in the transaction of `ctx.autocommit()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    Executable,
    Label,
    LargeBinary,
    Row,
    Select,
    SQLColumnExpression,
    String,
    TextClause,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    AuditEvent,
    Base,
    FraudRecord,
    IdempotencyKey,
    LogEntry,
    Membership,
    Notification,
    Person,
    Plan,
    PlanVersion,
)
from mutualaid.db.queries.accounts import caller_columns, token_caller
from mutualaid.db.queries.plans import PlanHead
from mutualaid.domain.calendars import start_of_day
from mutualaid.domain.memberships import Relation
from mutualaid.transparency.leaves import (
    MEMBERSHIP_BATCH_SIZE,
    canonical_leaf,
    membership_events_leaves,
)
from mutualaid.transparency.merkle import hash_leaf


def family_memberships(
    session: Session, payer_account_id: int
) -> Sequence[Row[Membership, Person, Plan]]:
    """(membership, person, plan) for every membership this account pays for, oldest first."""
    return session.execute(
        select(Membership, Person, Plan)
        .join(Person, Person.id == Membership.person_id)
        .join(Plan, Plan.id == Membership.plan_id)
        .where(Membership.payer_account_id == payer_account_id)
        .order_by(Membership.id)
    ).all()


@dataclass(frozen=True, slots=True)
class JoiningFacts:
    """What a join reads before it writes."""

    plan: PlanHead
    rules_sha256: str
    #: The ids the new person (if any) and the new membership will take.
    new_person_id: int
    new_membership_id: int
    #: The person already registered with this identity, and the account that registered them.
    known_person_id: int | None
    known_account_id: int | None
    #: Whether the account has enrolled its holder already, and has a standing fraud record.
    holder_exists: bool
    account_flagged: bool
    #: The caller found by its bearer token (None: asked by account id, or the token is unknown
    #: or expired).
    caller_id: int | None
    caller_role: str | None


class PersonRow(TypedDict):
    id: int
    account_id: int
    relation: str
    identity_hash: str
    identity_ciphertext: bytes
    name_ciphertext: bytes
    key_version: int
    name_masked: str
    birth_on: date
    sex: str
    province_code: str
    created_at: datetime


class MembershipRow(TypedDict):
    id: int
    plan_id: int
    plan_version: int
    rules_sha256: str
    person_id: int
    payer_account_id: int
    state: str
    joined_at: datetime
    joined_on: date
    waiting_ends_on: date
    covered_from_on: date
    ages_out_on: date


@dataclass(frozen=True, slots=True)
class JoiningRows:
    """The rows of one join, ids included. `person` None: the person is registered already."""

    person: PersonRow | None
    membership: MembershipRow
    audit: Mapping[str, object]
    #: The idempotency key row with its answer (None: the request has no key).
    key: Mapping[str, object] | None
    #: The join's transparency-log leaf (log_entries columns; issue 14): the outbox row, written
    #: by the same statement.
    leaf: Mapping[str, object] | None = None
    #: The payer's "you joined" notice (notifications columns), also in the same statement.
    notice: Mapping[str, object] | None = None


def _person_facts(
    account: ColumnElement[int] | BindParameter[int],
) -> tuple[Label[int], Label[int], Label[bool], Label[bool]]:
    """Who this identity already is, whether the account has enrolled its holder, and whether it
    has a standing fraud record: scalar subqueries, so they ride along with another read."""
    # The hash under every live key version: during a key rotation a person may be under either
    # (services/keys). Two rows for one identity could only come from servers running different
    # key rings at once; the oldest row answers, and the rotation reports the pair.
    by_identity = Person.identity_hash.in_(bindparam("identity_hashes", expanding=True))
    first = (Person.id,)
    return (
        select(Person.id)
        .where(by_identity)
        .order_by(*first)
        .limit(1)
        .scalar_subquery()
        .label("known_person_id"),
        select(Person.account_id)
        .where(by_identity)
        .order_by(*first)
        .limit(1)
        .scalar_subquery()
        .label("known_account_id"),
        select(Person.id)
        .where(Person.account_id == account, Person.relation == Relation.SELF)
        .exists()
        .label("holder_exists"),
        # Issue 9: an account with a standing proven-fraud record enrolls no one.
        select(FraudRecord.id)
        .where(FraudRecord.account_id == account, FraudRecord.revoked_at.is_(None))
        .exists()
        .label("account_flagged"),
    )


def _sequence_next(sequence: str) -> ColumnElement[int]:
    """PostgreSQL: the next value of a BIGSERIAL id's sequence, named as PostgreSQL names it."""
    return func.nextval(literal_column(f"'{sequence}'::regclass"))


def _next_rowid(model: type[Person] | type[Membership]) -> ColumnElement[int]:
    """SQLite: the rowid the next insert takes (ids are rowids without AUTOINCREMENT)."""
    return select(func.coalesce(func.max(model.id), 0) + 1).scalar_subquery()


def _joining_read(postgres: bool, by_token: bool) -> Executable:
    caller: ColumnElement[int] | BindParameter[int]
    caller_facts: tuple[ColumnElement[Any], ...]
    if by_token:
        caller = token_caller()
        caller_facts = caller_columns(caller)
    else:
        caller = bindparam("account_id")
        caller_facts = (
            literal_column("NULL").label("caller_id"),
            literal_column("NULL").label("caller_role"),
        )
    new_ids = (
        (_sequence_next("persons_id_seq"), _sequence_next("memberships_id_seq"))
        if postgres
        else (_next_rowid(Person), _next_rowid(Membership))
    )
    return (
        select(
            Plan.id,
            Plan.code,
            Plan.status,
            Plan.current_version,
            PlanVersion.rules_sha256,
            new_ids[0].label("new_person_id"),
            new_ids[1].label("new_membership_id"),
            *_person_facts(caller),
            *caller_facts,
        )
        .join(
            PlanVersion,
            (PlanVersion.plan_id == Plan.id) & (PlanVersion.version == Plan.current_version),
        )
        .where(Plan.code == bindparam("code"))
    )


# Built once: a statement with bound parameters skips SQLAlchemy's per-call coercion and caching.
_JOINING_READS = {
    (postgres, by_token): _joining_read(postgres, by_token)
    for postgres in (False, True)
    for by_token in (False, True)
}


def joining_facts(
    connection: Connection,
    plan_code: str,
    identity_hash: str | Sequence[str],
    *,
    account_id: int | None = None,
    token_hash: str | None = None,
    now: datetime | None = None,
) -> JoiningFacts | None:
    """The one read of a join, for a caller known by account id or by bearer token (then checked
    against `now` in the same read). `identity_hash`: the person's hash, or their hashes under
    every live key version. None: there is no such plan."""
    postgres = connection.dialect.name == "postgresql"
    hashes = [identity_hash] if isinstance(identity_hash, str) else list(identity_hash)
    params: dict[str, object] = {"code": plan_code, "identity_hashes": hashes}
    if token_hash is not None:
        params |= {"token_hash": token_hash, "now": now}
    else:
        params["account_id"] = account_id
    row = connection.execute(_JOINING_READS[postgres, token_hash is not None], params).first()
    if row is None:
        return None
    return JoiningFacts(
        plan=PlanHead(row.id, row.code, row.status, row.current_version),
        rules_sha256=row.rules_sha256,
        new_person_id=int(row.new_person_id),
        new_membership_id=int(row.new_membership_id),
        known_person_id=None if row.known_person_id is None else int(row.known_person_id),
        known_account_id=None if row.known_account_id is None else int(row.known_account_id),
        holder_exists=bool(row.holder_exists),
        account_flagged=bool(row.account_flagged),
        caller_id=None if row.caller_id is None else int(row.caller_id),
        caller_role=row.caller_role,
    )


def person_name_masked(connection: Connection, person_id: int) -> str | None:
    return connection.scalar(select(Person.name_masked).where(Person.id == person_id))


def _binds(
    model: type[Base], prefix: str, columns: Iterable[str]
) -> dict[str, BindParameter[object]]:
    table = Base.metadata.tables[model.__tablename__]
    return {name: bindparam(prefix + name, type_=table.c[name].type) for name in columns}


def _prefixed(prefix: str, values: Mapping[str, object]) -> dict[str, object]:
    return {prefix + name: value for name, value in values.items()}


_PERSON_COLUMNS = tuple(PersonRow.__annotations__)
_MEMBERSHIP_COLUMNS = tuple(MembershipRow.__annotations__)
_AUDIT_COLUMNS = (
    "occurred_at",
    "actor_account_id",
    "action",
    "subject_type",
    "subject_id",
    "details",
)
_KEY_COLUMNS = ("account_id", "key", "operation", "request_sha256", "created_at", "response")
_LEAF_COLUMNS = ("leaf_type", "leaf_data", "leaf_hash", "subject_type", "subject_ref", "queued_at")
_NOTICE_COLUMNS = (
    "account_id",
    "kind",
    "subject_type",
    "subject_id",
    "payload",
    "created_at",
    "attempts",  # given: a CTE's INSERT gets no Python-side defaults
)


def _one_statement_join(new_person: bool, with_key: bool) -> Executable:
    """PostgreSQL: WITH (INSERT person), (INSERT membership), (INSERT key), (INSERT log leaf),
    (INSERT notice) INSERT audit — the ids come from the sequences beforehand, so no part waits
    for another's RETURNING."""
    parts = [
        insert(LogEntry).values(_binds(LogEntry, "l_", _LEAF_COLUMNS)).cte("new_leaf"),
        insert(Notification).values(_binds(Notification, "n_", _NOTICE_COLUMNS)).cte("new_notice"),
    ]
    if new_person:
        parts.append(insert(Person).values(_binds(Person, "p_", _PERSON_COLUMNS)).cte("new_person"))
    parts.append(
        insert(Membership)
        .values(_binds(Membership, "m_", _MEMBERSHIP_COLUMNS))
        .cte("new_membership")
    )
    if with_key:
        parts.append(
            insert(IdempotencyKey).values(_binds(IdempotencyKey, "k_", _KEY_COLUMNS)).cte("answer")
        )
    return insert(AuditEvent).values(_binds(AuditEvent, "a_", _AUDIT_COLUMNS)).add_cte(*parts)


_ONE_STATEMENT_JOINS = {
    (person, key): _one_statement_join(person, key)
    for person in (False, True)
    for key in (False, True)
}
_INSERT_PERSON = insert(Person)
_INSERT_MEMBERSHIP = insert(Membership)
_INSERT_AUDIT = insert(AuditEvent)
_INSERT_KEY = insert(IdempotencyKey)
_INSERT_LEAF = insert(LogEntry)
_INSERT_NOTICE = insert(Notification)


def insert_joining(connection: Connection, rows: JoiningRows) -> None:
    """Write a join's rows: on PostgreSQL one statement, atomic by itself; on SQLite one insert
    each, in the caller's transaction. The partial unique index refuses a second active membership
    (and UNIQUE(account_id, key) a second answer), even from a concurrent request: IntegrityError."""
    if connection.dialect.name == "postgresql":
        if rows.leaf is None or rows.notice is None:
            raise ValueError("a join writes its log leaf and its notice")
        values = (
            _prefixed("m_", rows.membership)
            | _prefixed("a_", rows.audit)
            | _prefixed("l_", rows.leaf)
            | _prefixed("n_", rows.notice)
        )
        if rows.person is not None:
            values |= _prefixed("p_", rows.person)
        if rows.key is not None:
            values |= _prefixed("k_", rows.key)
        statement = _ONE_STATEMENT_JOINS[rows.person is not None, rows.key is not None]
        connection.execute(statement, values)
        return
    if rows.person is not None:
        connection.execute(_INSERT_PERSON, dict(rows.person))
    connection.execute(_INSERT_MEMBERSHIP, dict(rows.membership))
    connection.execute(_INSERT_AUDIT, dict(rows.audit))
    if rows.leaf is not None:
        connection.execute(_INSERT_LEAF, dict(rows.leaf))
    if rows.key is not None:
        connection.execute(_INSERT_KEY, dict(rows.key))
    if rows.notice is not None:
        connection.execute(_INSERT_NOTICE, dict(rows.notice))


# --- membership events on the transparency log (issue 14) ------------------------------------------


def epoch_seconds(session: Session, column: SQLColumnExpression[datetime]) -> ColumnElement[int]:
    """POSIX seconds of a stored instant (floored), as SQL for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger())
    return cast(func.strftime("%s", column), BigInteger())


def _sqlite_leaf_hash(data: bytes) -> bytes:
    return hash_leaf(bytes(data))


def insert_membership_event_leaves(
    session: Session,
    source: Select[*tuple[Any, ...]],
    *,
    plan_ref: str,
    event: str,
    queued_at: datetime,
) -> int:
    """Queue one membership_event leaf per row of `source` — (membership id, occurred_at POSIX
    seconds, state after) — with one INSERT … SELECT into the outbox: the bytes are built and
    hashed by the database (SHA-256 on PostgreSQL, a registered function on SQLite), exactly
    as `leaves.membership_event_leaf` builds them (tests/unit compares the two)."""
    # The fields are checked once here; the per-row parts are integers and a state token.
    canonical_leaf(
        "membership_event",
        {
            "plan_ref": plan_ref,
            "membership_ref": "m-1",
            "event": event,
            "state": "waiting",
            "occurred_at": 0,
        },
    )
    rows = source.subquery("events")
    membership_id, occurred_at, state = rows.c[0], rows.c[1], rows.c[2]
    text_of = String()
    json_text = (
        literal(f'{{"event":"{event}","membership_ref":"m-', text_of)
        + cast(membership_id, text_of)
        + literal('","occurred_at":', text_of)
        + cast(occurred_at, text_of)
        + literal(f',"plan_ref":"{plan_ref}","state":"', text_of)
        + cast(state, text_of)
        + literal('","type":"membership_event","v":1}', text_of)
    )
    connection = session.connection()
    leaf_data: ColumnElement[bytes]
    leaf_hash: ColumnElement[bytes]
    if connection.dialect.name == "postgresql":
        leaf_data = func.convert_to(json_text, literal("UTF8"), type_=LargeBinary())
        leaf_hash = func.sha256(
            literal(b"\x00", LargeBinary()).op("||", return_type=LargeBinary())(leaf_data),
            type_=LargeBinary(),
        )
    else:
        raw: Any = connection.connection.driver_connection
        raw.create_function("mutualaid_leaf_hash", 1, _sqlite_leaf_hash, deterministic=True)
        leaf_data = cast(json_text, LargeBinary())
        leaf_hash = func.mutualaid_leaf_hash(leaf_data, type_=LargeBinary())
    result = session.execute(
        insert(LogEntry).from_select(
            ["leaf_type", "leaf_data", "leaf_hash", "subject_type", "subject_ref", "queued_at"],
            select(
                literal("membership_event", String()),
                leaf_data,
                leaf_hash,
                literal("membership", String()),
                literal("m-", text_of) + cast(membership_id, text_of),
                literal(queued_at, LogEntry.queued_at.type),
            ),
        )
    )
    return int(getattr(result, "rowcount", 0))


# --- bulk changes of state, with their batched leaves (issue 14) ------------------------------------
#
# The daily job and the end of cover change many memberships at once to the same state, taking
# effect at the same instant (per day). They log one `membership_events` leaf per
# MEMBERSHIP_BATCH_SIZE memberships, listing their ids ascending, instead of one leaf each: the
# outbox row (5 indexes, a random leaf_hash) cost more than the UPDATE of the membership
# (benchmarks/RESULTS.md, "The daily job").

BATCH_LEAF_TYPE = "membership_events"


def _postgres_batched(changed: str, group: str, event: str, state: str, instant: str) -> TextClause:
    """PostgreSQL: one statement — `changed` (an UPDATE of memberships) RETURNING each id with its
    `group` (the day the change takes effect), then per group the ids sorted once (array_agg)
    and cut into slices of :batch_size, each slice one leaf, its bytes what
    `leaves.membership_events_leaves` builds (a test compares) with `instant` the group's
    POSIX seconds. Answers (memberships changed, leaves written)."""
    return text(
        f"""
        WITH changed AS ({changed} RETURNING id, {group} AS grp),
        grouped AS (SELECT grp, array_agg(id ORDER BY id) AS ids FROM changed GROUP BY grp),
        batches AS (
            SELECT grp, pos, array_to_string(ids[pos:pos + CAST(:batch_size AS INTEGER) - 1], ',')
                   AS ids
            FROM grouped,
                 generate_series(1, cardinality(ids), CAST(:batch_size AS INTEGER)) AS pos),
        leaves AS (
            SELECT grp, pos, convert_to('{{"event":"{event}","membership_ids":"' || ids
                || '","occurred_at":' || {instant} || ',"plan_ref":"' || :plan_ref
                || '","state":"{state}","type":"{BATCH_LEAF_TYPE}","v"\\:1}}', 'UTF8') AS data
            FROM batches),
        written AS (
            INSERT INTO log_entries
                (leaf_type, leaf_data, leaf_hash, subject_type, subject_ref, queued_at)
            SELECT '{BATCH_LEAF_TYPE}', data, sha256('\\x00'::bytea || data), 'plan', :plan_ref,
                   :now
            FROM leaves ORDER BY grp, pos
            RETURNING 1)
        SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM written)"""
    )


_ACTIVE_SQL = "('waiting', 'covered', 'suspended')"
_DAY_START = "CAST(extract(epoch FROM (grp::timestamp AT TIME ZONE :zone)) AS BIGINT)"
_POSTGRES_AGE_OUT = _postgres_batched(
    "UPDATE memberships SET state = 'ended', end_reason = 'aged_out', ended_at = :now "
    f"WHERE plan_id = :plan_id AND state IN {_ACTIVE_SQL} AND ages_out_on <= :today",
    "ages_out_on",
    "age_out",
    "ended",
    _DAY_START,
)
_POSTGRES_COVERED = _postgres_batched(
    "UPDATE memberships SET state = 'covered' "
    "WHERE plan_id = :plan_id AND state = 'waiting' AND covered_from_on <= :today",
    "covered_from_on",
    "waiting_period_over",
    "covered",
    _DAY_START,
)
_POSTGRES_END_COVER = _postgres_batched(
    "UPDATE memberships SET state = 'ended', ended_at = :ended_at, end_reason = :end_reason "
    f"WHERE plan_id = :plan_id AND state IN {_ACTIVE_SQL}",
    "0",
    "cover_ended",
    "ended",
    "CAST(:occurred_at AS BIGINT)",
)


def _insert_batches(
    session: Session,
    *,
    plan_ref: str,
    event: str,
    state: str,
    ids_by_instant: Mapping[int, Sequence[int]],
    queued_at: datetime,
    batch_size: int,
) -> int:
    """SQLite: the batch leaves of ids already read (by the UPDATE's RETURNING), one INSERT."""
    rows = [
        {
            "leaf_type": BATCH_LEAF_TYPE,
            "leaf_data": data,
            "leaf_hash": hash_leaf(data),
            "subject_type": "plan",
            "subject_ref": plan_ref,
            "queued_at": queued_at,
        }
        for instant in sorted(ids_by_instant)
        for data in membership_events_leaves(
            plan_ref, event, state, instant, ids_by_instant[instant], batch_size=batch_size
        )
    ]
    if rows:
        session.execute(insert(LogEntry), rows)
    return len(rows)


def _check_plan_ref(plan_ref: str, event: str, state: str) -> None:
    """The plan's code is written into every leaf by SQL: check it (and the tokens) once."""
    canonical_leaf(
        BATCH_LEAF_TYPE,
        {
            "plan_ref": plan_ref,
            "membership_ids": "1",
            "event": event,
            "state": state,
            "occurred_at": 0,
        },
    )


def advance_with_leaves(
    session: Session,
    *,
    plan_id: int,
    plan_ref: str,
    today: date,
    zone: ZoneInfo,
    now: datetime,
    batch_size: int = MEMBERSHIP_BATCH_SIZE,
) -> tuple[int, int]:
    """The daily job's UPDATEs — exit age reached: ended; waiting period over: covered — each
    with the `membership_events` leaves of the memberships it changed, one per day the change
    took effect (00:00 of it in `zone`) and MEMBERSHIP_BATCH_SIZE memberships. (aged out, now
    covered).

    PostgreSQL: one statement each, the UPDATE … RETURNING feeding the outbox INSERT (no second
    scan of the memberships, no id leaves the database). SQLite: the UPDATE … RETURNING the ids,
    then one INSERT of the few batch leaves built from them."""
    _check_plan_ref(plan_ref, "age_out", "ended")
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "plan_id": plan_id,
            "plan_ref": plan_ref,
            "today": today,
            "zone": zone.key,
            "now": now,
            "batch_size": batch_size,
        }
        aged_out = session.execute(_POSTGRES_AGE_OUT, params).one()
        covered = session.execute(_POSTGRES_COVERED, params).one()
        return int(aged_out[0]), int(covered[0])
    counts = []
    for event, condition, column, state, values in (
        (
            "age_out",
            (Membership.plan_id == plan_id)
            & Membership.state.in_(["waiting", "covered", "suspended"])
            & (Membership.ages_out_on <= today),
            Membership.ages_out_on,
            "ended",
            {"state": "ended", "end_reason": "aged_out", "ended_at": now},
        ),
        (
            "waiting_period_over",
            (Membership.plan_id == plan_id)
            & (Membership.state == "waiting")
            & (Membership.covered_from_on <= today),
            Membership.covered_from_on,
            "covered",
            {"state": "covered"},
        ),
    ):
        changed = session.execute(
            update(Membership)
            .where(condition)
            .values(values)
            .returning(Membership.id, column)
            .execution_options(synchronize_session=False)
        ).all()
        by_instant: dict[int, list[int]] = {}
        instants: dict[date, int] = {}
        for membership_id, day in changed:
            if day not in instants:
                instants[day] = int(start_of_day(day, zone).timestamp())
            by_instant.setdefault(instants[day], []).append(membership_id)
        _insert_batches(
            session,
            plan_ref=plan_ref,
            event=event,
            state=state,
            ids_by_instant=by_instant,
            queued_at=now,
            batch_size=batch_size,
        )
        counts.append(len(changed))
    return counts[0], counts[1]


def end_cover_with_leaves(
    session: Session,
    *,
    plan_id: int,
    plan_ref: str,
    ended_at: datetime,
    end_reason: str,
    now: datetime,
    batch_size: int = MEMBERSHIP_BATCH_SIZE,
) -> int:
    """End every active membership of a plan at `ended_at` (a wind-down's end of cover), with
    their `cover_ended` leaves batched as the daily job's are. The number of memberships ended."""
    _check_plan_ref(plan_ref, "cover_ended", "ended")
    occurred_at = int(ended_at.timestamp())
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(
            _POSTGRES_END_COVER,
            {
                "plan_id": plan_id,
                "plan_ref": plan_ref,
                "ended_at": ended_at,
                "end_reason": end_reason,
                "occurred_at": occurred_at,
                "now": now,
                "batch_size": batch_size,
            },
        ).one()
        return int(row[0])
    ids = session.scalars(
        update(Membership)
        .where(
            Membership.plan_id == plan_id,
            Membership.state.in_(["waiting", "covered", "suspended"]),
        )
        .values(state="ended", ended_at=ended_at, end_reason=end_reason)
        .returning(Membership.id)
        .execution_options(synchronize_session=False)
    ).all()
    _insert_batches(
        session,
        plan_ref=plan_ref,
        event="cover_ended",
        state="ended",
        ids_by_instant={occurred_at: ids} if ids else {},
        queued_at=now,
        batch_size=batch_size,
    )
    return len(ids)
