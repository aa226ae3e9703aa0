"""Issue 16: the secret key ring rotates while the plan runs.

Members imported under key version 1 are moved to version 2 in batches; a look-up by identity
number finds each of them before, half-way through (a rotation killed after its first batches) and
after; the killed rotation resumes without doing anything twice; once done, version 1 leaves the
ring and every person, staff second factor and evidence file still reads.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.factories import STAFF_TOTP_SECRET, account, enroll, publish_demo_plans, resident_id
from tests.refusals import refused

from mutualaid.db.models import Person, StaffSecondFactor
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo_data import random_member_rows
from mutualaid.services.enrollment.member_data import export_member_data
from mutualaid.services.enrollment.member_imports import import_members
from mutualaid.services.evidence_store import FileSystemEvidenceStore, evidence_keys
from mutualaid.services.keys.rotation import (
    key_status,
    rotate_evidence,
    rotate_personal_data,
    rotate_second_factors,
)
from mutualaid.services.personal_data import PersonalDataProtector

TODAY = date(2026, 3, 1)
OLD = "test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd"  # the ctx fixture's key: version 1
NEW = "rotated-Kd8sPq3Lm7Vx2Nw9Rt4Yb6Hj1Fg5Cz0Ua"
MEMBERS = 1200
BATCH = 250
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 600  # three chunks of evidence


def with_ring(ctx: ServiceContext, ring: dict[int, str], evidence_root: Path) -> ServiceContext:
    """The same database seen by a server whose key ring is `ring`."""
    return dataclasses.replace(
        ctx,
        protector=PersonalDataProtector(ring),
        evidence_store=FileSystemEvidenceStore(evidence_root, evidence_keys(ring)),
    )


class Killed(Exception):
    """Stands for the rotation process being killed between two batches."""


def kill_after(batches: int) -> Callable[[int], None]:
    seen = 0

    def progress(_: int) -> None:
        nonlocal seen
        seen += 1
        if seen == batches:
            raise Killed

    return progress


def import_rows(ctx: ServiceContext, rows: list[dict[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    text.seek(0)
    import_members(ctx, SYSTEM_ACTOR, "xhb-main", text, io.StringIO())


_strangers = itertools.count(15800000000)


def stranger(ctx: ServiceContext) -> Actor:
    """An account whose phone no imported member has."""
    return account(ctx, phone=str(next(_strangers)))


def is_found(ctx: ServiceContext, id_number: str) -> None:
    """A stranger enrolling this ID number is refused: the person was found under their hash
    (were they not, a second person with the same ID number would be created)."""
    with refused("identity_unavailable"):
        enroll(ctx, stranger(ctx), date(1990, 1, 1), id_number=id_number)


def versions(ctx: ServiceContext) -> dict[int, int]:
    with ctx.reading() as session:
        rows = session.execute(
            select(Person.key_version, func.count()).group_by(Person.key_version)
        ).all()
    return {int(v): int(n) for v, n in rows}


@pytest.fixture
def imported(ctx: ServiceContext) -> list[dict[str, str]]:
    publish_demo_plans(ctx)
    rows = random_member_rows(MEMBERS, TODAY)
    import_rows(ctx, rows)
    return rows


def test_rotation_killed_half_way_resumes_and_lookups_work_throughout(
    ctx: ServiceContext, imported: list[dict[str, str]], tmp_path: Path
) -> None:
    evidence_root = tmp_path / "evidence"
    old = with_ring(ctx, {1: OLD}, evidence_root)
    first, last = imported[0]["id_number"], imported[-1]["id_number"]
    stored = versions(ctx)
    assert stored == {1: sum(stored.values())} and sum(stored.values()) > MEMBERS * 0.95
    is_found(old, first)
    is_found(old, last)

    rotating = with_ring(ctx, {1: OLD, 2: NEW}, evidence_root)
    with pytest.raises(Killed):
        rotate_personal_data(rotating, batch_rows=BATCH, progress=kill_after(2))
    assert versions(ctx) == {1: stored[1] - 2 * BATCH, 2: 2 * BATCH}  # the 3rd batch rolled back

    # Half-rotated: the first people are under version 2, the last still under version 1.
    with ctx.reading() as session:
        first_version = session.scalar(select(Person.key_version).order_by(Person.id).limit(1))
    assert first_version == 2
    is_found(rotating, first)
    is_found(rotating, last)
    # Someone new joins meanwhile: under the current version, found like the others.
    newcomer_number = resident_id(date(1991, 2, 3))
    enroll(rotating, stranger(rotating), date(1991, 2, 3), id_number=newcomer_number)
    is_found(rotating, newcomer_number)
    # An import meanwhile would match people under the current key only: it waits.
    with refused("key_rotation_in_progress"):
        import_rows(rotating, random_member_rows(3, TODAY, seed=7))

    moved = rotate_personal_data(rotating, batch_rows=BATCH)
    assert moved == stored[1] - 2 * BATCH  # nothing done twice, nothing skipped
    assert versions(ctx) == {2: stored[1] + 1}
    assert rotate_personal_data(rotating, batch_rows=BATCH) == 0

    new_only = with_ring(ctx, {2: NEW}, evidence_root)
    for number in (first, last, newcomer_number):
        is_found(new_only, number)
    # The old ring no longer finds anyone: every hash really changed.
    with ctx.reading() as session:
        old_hash = PersonalDataProtector(OLD).identity_hash(first)
        assert session.scalar(select(Person.id).where(Person.identity_hash == old_hash)) is None


def test_after_rotation_everything_reads_with_the_old_version_removed(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    publish_demo_plans(ctx)
    evidence_root = tmp_path / "evidence"
    old = with_ring(ctx, {1: OLD}, evidence_root)
    holder = stranger(old)
    number = resident_id(date(1988, 8, 8))
    enroll(old, holder, date(1988, 8, 8), id_number=number, name="李四光")
    assert old.evidence_store is not None
    stored = old.evidence_store.put([PNG[:70000], PNG[70000:]], "image/png")
    reviewer = account(old, Role.REVIEWER)  # enrols a TOTP second factor under version 1

    rotating = with_ring(ctx, {1: OLD, 2: NEW}, evidence_root)
    before = key_status(rotating)
    assert (before.persons, before.second_factors, before.evidence) == ({1: 1}, {1: 1}, {1: 1})
    assert before.pending == 3
    # The evidence store reads version 1 blobs and writes new ones under version 2.
    assert b"".join(rotating.evidence_store.open(stored.sha256)) == PNG  # type: ignore[union-attr]
    assert rotate_personal_data(rotating) == 1
    assert rotate_second_factors(rotating) == 1
    assert rotate_evidence(rotating) == 1
    assert rotate_evidence(rotating) == 0  # a rerun skips what is done
    after = key_status(rotating)
    assert (after.persons, after.second_factors, after.evidence) == ({2: 1}, {2: 1}, {2: 1})
    assert after.pending == 0

    new_only = with_ring(ctx, {2: NEW}, evidence_root)
    data = export_member_data(new_only, holder)
    assert [(p["full_name"], p["id_number"]) for p in data["persons"]] == [("李四光", number)]
    assert b"".join(new_only.evidence_store.open(stored.sha256)) == PNG  # type: ignore[union-attr]
    with new_only.reading() as session:
        row = session.get(StaffSecondFactor, reviewer.account_id)
        assert row is not None and row.key_version == 2
        aead = new_only.protector.aead_for(b"mutualaid staff totp secret v1", row.key_version)
        secret = row.secret_ciphertext
        assert aead.decrypt(secret[:12], secret[12:], None) == STAFF_TOTP_SECRET.encode()


def test_data_under_a_version_removed_too_early_is_refused_by_code(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    publish_demo_plans(ctx)
    old = with_ring(ctx, {1: OLD}, tmp_path / "evidence")
    holder = stranger(old)
    enroll(old, holder, date(1988, 8, 8))
    assert old.evidence_store is not None
    old.evidence_store.put([PNG], "image/png")
    skipped = with_ring(ctx, {3: NEW}, tmp_path / "evidence")  # version 1 dropped, never rotated
    with refused("key_version_retired"):
        rotate_personal_data(skipped)
    with refused("key_version_retired"):
        export_member_data(skipped, holder)
    with refused("evidence_unreadable"):
        rotate_evidence(skipped)
    assert key_status(skipped).retired_in_use == (1,)


def test_two_rows_for_one_identity_under_two_versions_stop_the_rotation(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    """A server still running the old ring enrolled someone a new-ring server had enrolled too:
    the look-up could not see it, the rotation does and names both rows."""
    publish_demo_plans(ctx)
    number = resident_id(date(1985, 5, 5))
    old = with_ring(ctx, {1: OLD}, tmp_path / "evidence")
    new = with_ring(ctx, {1: OLD, 2: NEW}, tmp_path / "evidence")
    # The old-ring server does not know version 2, so it cannot see the version 2 row.
    enroll(new, stranger(new), date(1985, 5, 5), id_number=number)
    enroll(old, stranger(old), date(1985, 5, 5), id_number=number)
    with refused("duplicate_identity_across_versions"):
        rotate_personal_data(new)
    assert versions(ctx) == {1: 1, 2: 1}  # nothing half-written


def test_a_ring_giving_a_version_the_wrong_secret_is_refused_by_code(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    publish_demo_plans(ctx)
    enroll(ctx, stranger(ctx), date(1988, 8, 8))
    wrong = with_ring(ctx, {1: "mistyped-" + NEW, 2: NEW}, tmp_path / "evidence")
    with refused("key_mismatch"):
        rotate_personal_data(wrong)
    with refused("invalid_batch_size"):
        rotate_personal_data(wrong, batch_rows=0)
    assert versions(ctx) == {1: 1}
