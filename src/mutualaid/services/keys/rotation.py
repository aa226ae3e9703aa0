"""Moving stored personal data and evidence to the current secret key version.

Each batch of people is read (locked), decrypted under its own version, re-hashed and
re-encrypted under the current one and written back in one transaction, only where the row is
still under the version it was read under. A killed rotation loses at most its open batch; the
next run starts again from whatever is still under an older version, so nothing is processed
twice and nothing is skipped. The service keeps running meanwhile: joins look a person up under
every live version (db/queries/memberships.py), reads decrypt each row under its own version.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from mutualaid.db.queries.key_versions import (
    persons_holding_hashes,
    persons_per_version,
    persons_to_rotate,
    rewrite_persons,
    rewrite_second_factors,
    second_factors_per_version,
    second_factors_to_rotate,
)
from mutualaid.domain.errors import DomainError
from mutualaid.services.accounts.second_factors import SECRET_PURPOSE
from mutualaid.services.context import ServiceContext
from mutualaid.services.evidence_store import EvidenceCorrupted, FileSystemEvidenceStore
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.personal_data import key_version_retired

DEFAULT_BATCH_ROWS = 2000

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    current_version: int
    live_versions: tuple[int, ...]
    persons: dict[int, int]
    second_factors: dict[int, int]
    #: Evidence files per key version (None: no evidence store).
    evidence: dict[int, int] | None

    @property
    def pending(self) -> int:
        """What is still under an older version than the current one."""
        tables = [self.persons, self.second_factors, self.evidence or {}]
        return sum(n for counts in tables for v, n in counts.items() if v != self.current_version)

    @property
    def retired_in_use(self) -> tuple[int, ...]:
        """Versions data is under that are no longer in the ring (that data cannot be read)."""
        used = {v for t in (self.persons, self.second_factors, self.evidence or {}) for v in t}
        return tuple(sorted(used - set(self.live_versions)))


@dataclass(frozen=True, slots=True)
class RotationReport:
    current_version: int
    persons: int
    second_factors: int
    evidence_files: int


def key_status(ctx: ServiceContext, *, with_evidence: bool = True) -> KeyStatus:
    """Rows (and evidence files) per key version."""
    with ctx.reading() as session:
        persons = persons_per_version(session)
        factors = second_factors_per_version(session)
    evidence: dict[int, int] | None = None
    store = ctx.evidence_store
    if with_evidence and isinstance(store, FileSystemEvidenceStore):
        evidence = {}
        for sha256 in store.addresses():
            version = store.key_version_of(sha256)
            evidence[version] = evidence.get(version, 0) + 1
    return KeyStatus(
        ctx.protector.current_version, ctx.protector.versions, persons, factors, evidence
    )


def rotate_personal_data(
    ctx: ServiceContext, *, batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None
) -> int:
    """Re-hash and re-encrypt every person under an older key version; the number moved.

    Refused with `key_version_retired` when a row is under a version no longer in the ring, and
    with `duplicate_identity_across_versions` when a person's new hash is already another
    person's (two rows for one identity: made by servers running different key rings at once;
    staff merge them, then the rotation goes on). Either way the batches before stay committed.
    """
    if batch_rows < 1:
        raise DomainError("invalid_batch_size", "the batch size must be at least 1", "batch")
    protector = ctx.protector
    current = protector.current_version
    after, moved = 0, 0
    while True:
        uow: UnitOfWork[None] = ctx.unit_of_work()
        with uow:
            rows = persons_to_rotate(uow.session, current, after, batch_rows)
            if not rows:
                return moved
            updates = []
            for row in rows:
                version = int(row.key_version)
                if version not in protector.versions:
                    raise key_version_retired(version)
                try:
                    number = protector.decrypt(row.identity_ciphertext, version)
                    name = protector.decrypt(row.name_ciphertext, version)
                except InvalidTag:
                    raise _undecryptable("person", int(row.id), version) from None
                updates.append(
                    {
                        "b_id": row.id,
                        "b_old": version,
                        "b_new": current,
                        "b_hash": protector.identity_hash(number),
                        "b_identity": protector.encrypt(number),
                        "b_name": protector.encrypt(name),
                    }
                )
            holders = persons_holding_hashes(uow.session, [u["b_hash"] for u in updates])
            for change in updates:
                holder = holders.get(str(change["b_hash"]))
                if holder is not None and holder != change["b_id"]:
                    raise DomainError(
                        "duplicate_identity_across_versions",
                        f"person {change['b_id']} and person {holder} are the same identity "
                        "under two key versions; merge them, then run the rotation again",
                        details={"person_id": change["b_id"], "other_person_id": holder},
                    )
            rewrite_persons(uow.session, updates)
            uow.commit(None)
        moved += len(rows)
        after = int(rows[-1].id)
        if progress:
            progress(len(rows))


def rotate_second_factors(ctx: ServiceContext, *, progress: Progress | None = None) -> int:
    """Re-encrypt every staff second factor's secret under the current version (a few rows: one
    transaction)."""
    protector = ctx.protector
    current = protector.current_version
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        rows = second_factors_to_rotate(uow.session, current)
        updates = []
        for row in rows:
            version = int(row.key_version)
            if version not in protector.versions:
                raise key_version_retired(version)
            old = protector.aead_for(SECRET_PURPOSE, version)
            new = protector.aead_for(SECRET_PURPOSE)
            sealed = row.secret_ciphertext
            try:
                secret = old.decrypt(sealed[:12], sealed[12:], None)
            except InvalidTag:
                raise _undecryptable("second factor", int(row.account_id), version) from None
            nonce = os.urandom(12)
            updates.append(
                {
                    "b_id": row.account_id,
                    "b_old": version,
                    "b_new": current,
                    "b_secret": nonce + new.encrypt(nonce, secret, None),
                }
            )
        if updates:
            rewrite_second_factors(uow.session, updates)
        uow.commit(None)
    if progress and rows:
        progress(len(rows))
    return len(rows)


def rotate_evidence(ctx: ServiceContext, *, progress: Progress | None = None) -> int:
    """Re-encrypt every evidence file under an older key version; the number re-encrypted.

    One file at a time, each replaced atomically (FileSystemEvidenceStore.reencrypt): a rerun
    skips the files already done."""
    store = ctx.evidence_store
    if not isinstance(store, FileSystemEvidenceStore):
        return 0
    done = 0
    for sha256 in store.addresses():
        try:
            changed = store.reencrypt(sha256)
        except EvidenceCorrupted as error:
            raise DomainError(
                "evidence_unreadable",
                f"evidence file {sha256} cannot be re-encrypted: {error}",
                details={"sha256": sha256},
            ) from None
        if changed:
            done += 1
            if progress:
                progress(1)
    return done


def _undecryptable(what: str, row_id: int, version: int) -> DomainError:
    return DomainError(
        "key_mismatch",
        f"{what} {row_id} does not decrypt under key version {version}: the ring gives that "
        "version another secret than the one the data was encrypted with",
        details={"id": row_id, "key_version": version},
    )
