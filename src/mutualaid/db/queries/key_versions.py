"""The secret key version of stored personal data: counts per version and the batches a key
rotation moves (services/keys)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.orm import Session

from mutualaid.db.models import Base, Person, StaffSecondFactor

_PERSONS = Base.metadata.tables[Person.__tablename__]
_FACTORS = Base.metadata.tables[StaffSecondFactor.__tablename__]


def persons_under_other_versions(session: Session, version: int) -> bool:
    """Whether anyone's hash and ciphertexts are under another key version than `version`
    (an index probe on ix_persons_key_version)."""
    return (
        session.scalar(select(Person.id).where(Person.key_version != version).limit(1)) is not None
    )


def persons_per_version(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Person.key_version, func.count()).group_by(Person.key_version)
    ).all()
    return {int(version): int(count) for version, count in rows}


def second_factors_per_version(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(StaffSecondFactor.key_version, func.count()).group_by(StaffSecondFactor.key_version)
    ).all()
    return {int(version): int(count) for version, count in rows}


def persons_to_rotate(
    session: Session, version: int, after_id: int, limit: int
) -> Sequence[Row[int, int, bytes, bytes]]:
    """The next `limit` people (by id, after `after_id`) under another key version than
    `version`, locked until the batch commits (PostgreSQL; SQLite's writer holds the file)."""
    return session.execute(
        select(Person.id, Person.key_version, Person.identity_ciphertext, Person.name_ciphertext)
        .where(Person.key_version != version, Person.id > after_id)
        .order_by(Person.id)
        .limit(limit)
        .with_for_update()
    ).all()


def persons_holding_hashes(session: Session, hashes: Sequence[str]) -> dict[str, int]:
    """Which of these identity hashes a person already has: hash -> person id."""
    rows = session.execute(
        select(Person.identity_hash, Person.id).where(Person.identity_hash.in_(hashes))
    ).all()
    return {identity_hash: int(person_id) for identity_hash, person_id in rows}


_UPDATE_PERSON = (
    update(_PERSONS)
    .where(_PERSONS.c.id == bindparam("b_id"), _PERSONS.c.key_version == bindparam("b_old"))
    .values(
        identity_hash=bindparam("b_hash"),
        identity_ciphertext=bindparam("b_identity"),
        name_ciphertext=bindparam("b_name"),
        key_version=bindparam("b_new"),
    )
)


def rewrite_persons(session: Session, rows: Sequence[Mapping[str, object]]) -> int:
    """Write each person's new hash and ciphertexts, only where the row is still under the
    version it was read under (executemany: one round trip per batch with psycopg's pipeline)."""
    result = session.connection().execute(_UPDATE_PERSON, list(rows))
    return int(result.rowcount)


def second_factors_to_rotate(session: Session, version: int) -> Sequence[Row[int, int, bytes]]:
    return session.execute(
        select(
            StaffSecondFactor.account_id,
            StaffSecondFactor.key_version,
            StaffSecondFactor.secret_ciphertext,
        )
        .where(StaffSecondFactor.key_version != version)
        .order_by(StaffSecondFactor.account_id)
        .with_for_update()
    ).all()


_UPDATE_FACTOR = (
    update(_FACTORS)
    .where(_FACTORS.c.account_id == bindparam("b_id"), _FACTORS.c.key_version == bindparam("b_old"))
    .values(secret_ciphertext=bindparam("b_secret"), key_version=bindparam("b_new"))
)


def rewrite_second_factors(session: Session, rows: Sequence[Mapping[str, object]]) -> int:
    result = session.connection().execute(_UPDATE_FACTOR, list(rows))
    return int(result.rowcount)
