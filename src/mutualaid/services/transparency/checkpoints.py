"""Signed checkpoints: the log's keys and witnesses, publishing a tree head, the proof bundle."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import LogCheckpoint, LogEntry, LogWitnessState
from mutualaid.db.queries.log import insert_checkpoint
from mutualaid.domain.errors import NotFound
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.transparency.log import (
    DEFAULT_BATCH,
    WITNESS_TIMEOUT_S,
    LogError,
    integrate_all,
)
from mutualaid.services.transparency.proofs import (
    StoredNodes,
    consistency_proof_between,
    log_size,
    root_at,
)
from mutualaid.settings import Settings
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.errors import KeyFormatError, TransparencyError
from mutualaid.transparency.merkle import (
    consistency_proof,
    inclusion_proof,
)
from mutualaid.transparency.notes import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
    NoteSignature,
    SignerKey,
    VerifierKey,
    add_signatures,
    generate_signer_key,
    open_note,
    parse_signer_key,
    parse_verifier_key,
)
from mutualaid.transparency.verification import BundleEntry, SubjectBundle

# --------------------------------------------------------------------------------------------
# Keys and configuration


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness of the consortium: a name for messages, its cosigning key, its base URL."""

    name: str
    key: VerifierKey
    url: str


@dataclass(frozen=True, slots=True)
class LogConfig:
    signer: SignerKey
    witnesses: tuple[WitnessEndpoint, ...] = ()
    quorum: int = 0

    def __post_init__(self) -> None:
        if self.signer.signature_type != SIGNATURE_TYPE_ED25519:
            raise LogError(
                "log_key",
                f"log key '{self.signer.label}' is not an Ed25519 (0x01) "
                "note key; create one with `mutualaid log keygen`",
            )
        if not 0 <= self.quorum <= len(self.witnesses):
            raise LogError(
                "witness_quorum",
                f"a quorum of {self.quorum} can never be met with {len(self.witnesses)} witnesses",
                "MUTUALAID_WITNESS_QUORUM",
            )
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names):
            raise LogError("witnesses", "two witnesses have the same name", "MUTUALAID_WITNESSES")

    @property
    def origin(self) -> str:
        return self.signer.name

    @property
    def verifier(self) -> VerifierKey:
        return self.signer.verifier()


def parse_witnesses(spec: str) -> tuple[WitnessEndpoint, ...]:
    """Parse ``name=verifierkey@url, ...`` (MUTUALAID_WITNESSES)."""
    witnesses = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, equals, rest = item.partition("=")
        key_text, at, url = rest.partition("@")
        if not equals or not at or not name or not url.startswith(("http://", "https://")):
            raise LogError(
                "witnesses",
                f"witness {item!r} is not name=verifierkey@http(s)://url",
                "MUTUALAID_WITNESSES",
            )
        try:
            key = parse_verifier_key(key_text.strip())
        except KeyFormatError as error:
            raise LogError(
                "witnesses", f"witness {name!r}: {error.message}", "MUTUALAID_WITNESSES"
            ) from None
        if key.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
            raise LogError(
                "witnesses",
                f"witness {name!r} key is not a cosignature/v1 (0x04) key",
                "MUTUALAID_WITNESSES",
            )
        witnesses.append(WitnessEndpoint(name.strip(), key, url.strip().rstrip("/")))
    return tuple(witnesses)


def write_key_file(path: Path, signer: SignerKey) -> None:
    """Write a signer key, readable by its owner only; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(signer.encode() + "\n")


def read_key_file(path: Path) -> SignerKey:
    try:
        return parse_signer_key(path.read_text(encoding="ascii").strip())
    except (KeyFormatError, UnicodeDecodeError) as error:
        message = error.message if isinstance(error, KeyFormatError) else "not ASCII"
        raise LogError("log_key", f"key file {path}: {message}", "key_file") from None


def load_log_config(settings: Settings) -> LogConfig:
    """The log's key, witnesses and quorum from MUTUALAID_* settings.

    In demo mode a missing key is generated under data_dir (named after MUTUALAID_LOG_ORIGIN).
    """
    path = settings.log_key_file
    if path is None:
        if not settings.demo:
            raise LogError(
                "log_key",
                "MUTUALAID_LOG_KEY_FILE is not set; create a key with "
                "`mutualaid log keygen --name <origin> --out <file>`",
                "MUTUALAID_LOG_KEY_FILE",
            )
        path = settings.data_dir / "log-signer.key"
        if not path.exists():
            write_key_file(path, generate_signer_key(settings.log_origin))
    signer = read_key_file(path)
    if "log_origin" in settings.model_fields_set and settings.log_origin != signer.name:
        raise LogError(
            "log_key",
            f"the log key is named '{signer.name}' but MUTUALAID_LOG_ORIGIN "
            f"is '{settings.log_origin}': a checkpoint's origin is its key's name",
            "MUTUALAID_LOG_ORIGIN",
        )
    return LogConfig(signer, parse_witnesses(settings.witnesses), settings.witness_quorum)


# --------------------------------------------------------------------------------------------
# Checkpoints and witnesses


@dataclass(frozen=True, slots=True)
class CheckpointView:
    size: int
    root_hash: bytes
    note: str
    cosigners: int
    quorum: int
    published: bool
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class WitnessOutcome:
    name: str
    cosigned: bool
    #: What happened, e.g. "cosigned at size 12" or "refused (HTTP 422): bad_proof: ...".
    detail: str


@dataclass(frozen=True, slots=True)
class PublishResult:
    checkpoint: CheckpointView
    integrated: int
    outcomes: tuple[WitnessOutcome, ...]


def _view(row: LogCheckpoint) -> CheckpointView:
    return CheckpointView(
        row.size,
        bytes(row.root_hash),
        row.note,
        row.cosigners,
        row.quorum,
        row.published,
        row.created_at,
        row.published_at,
    )


def latest_checkpoint(ctx: ServiceContext) -> CheckpointView | None:
    """The newest published (quorum-cosigned) checkpoint, or None before the first.

    Its root is unpredictable before it is published: the jury draw uses one published after a
    referral as its seed.
    """
    with ctx.reading(replica=True) as session:
        return latest_published(session)


def latest_published(session: Session) -> CheckpointView | None:
    row = session.scalars(
        select(LogCheckpoint)
        .where(LogCheckpoint.published)
        .order_by(LogCheckpoint.size.desc())
        .limit(1)
    ).first()
    return None if row is None else _view(row)


def checkpoint_at(session: Session, size: int) -> CheckpointView | None:
    row = session.scalars(select(LogCheckpoint).where(LogCheckpoint.size == size)).first()
    return None if row is None else _view(row)


def publish_checkpoint(
    ctx: ServiceContext,
    config: LogConfig,
    *,
    http: httpx.Client | None = None,
    max_batch: int = DEFAULT_BATCH,
) -> PublishResult:
    """Integrate queued leaves, sign a checkpoint at the new size, ask every witness to cosign it
    (tlog-witness add-checkpoint, outside any database transaction), store what came back, and
    mark it published once `config.quorum` witnesses cosigned.

    Idempotent: a checkpoint already published at the current size is returned as it is.
    """
    integrated = integrate_all(ctx, max_batch=max_batch)
    now = ctx.clock.now()
    signed: UnitOfWork[PublishResult | None] = ctx.unit_of_work()
    with signed:
        session = signed.session
        size = log_size(session)
        root = root_at(session, size)
        row = _checkpoint_row(session, size, root, config, now)
        if row.published or not config.witnesses:
            if not row.published:  # quorum 0 and no witnesses: the log's signature suffices
                row.published, row.published_at = True, now
            signed.commit(PublishResult(_view(row), integrated.integrated, ()))
        else:
            note = row.note
            known = {w.name: w.size for w in session.scalars(select(LogWitnessState))}
            signed.commit(None)
    if signed.result is not None:
        return signed.result

    client = http or httpx.Client(timeout=WITNESS_TIMEOUT_S)
    try:
        asked = [
            _ask_witness(ctx, client, witness, note, size, known.get(witness.name, 0))
            for witness in config.witnesses
        ]
    finally:
        if http is None:
            client.close()

    uow: UnitOfWork[PublishResult] = ctx.unit_of_work()
    with uow:
        session = uow.session
        row = session.scalars(
            select(LogCheckpoint).where(LogCheckpoint.size == size).with_for_update()
        ).one()
        fresh = [signature for _, signature, _ in asked if signature is not None]
        if fresh:
            row.note = add_signatures(row.note, fresh)
        row.cosigners = _count_cosigners(row.note, config)
        if row.cosigners >= config.quorum and not row.published:
            row.published, row.published_at = True, now
        for outcome, _, witness_size in asked:
            if witness_size is not None:
                _remember_witness_size(session, outcome.name, witness_size, now)
        uow.commit(PublishResult(_view(row), integrated.integrated, tuple(o for o, _, _ in asked)))
    return uow.result


def _checkpoint_row(
    session: Session, size: int, root: bytes, config: LogConfig, now: datetime
) -> LogCheckpoint:
    row = session.scalars(
        select(LogCheckpoint).where(LogCheckpoint.size == size).with_for_update()
    ).first()
    witness_keys = [w.key.encode() for w in config.witnesses]
    if row is None:
        note = sign_checkpoint(Checkpoint(config.origin, size, root), config.signer)
        insert_checkpoint(
            session,
            {
                "size": size,
                "root_hash": root,
                "note": note,
                "log_key": config.verifier.encode(),
                "witness_keys": witness_keys,
                "quorum": config.quorum,
                "cosigners": 0,
                "published": False,
                "created_at": now,
            },
        )
        row = session.scalars(
            select(LogCheckpoint).where(LogCheckpoint.size == size).with_for_update()
        ).one()
    if bytes(row.root_hash) != root:
        raise LogError(
            "log_forked",
            f"the stored checkpoint at size {size} has root "
            f"{bytes(row.root_hash).hex()}, but the tree's root is {root.hex()}",
        )
    if row.log_key != config.verifier.encode():
        raise LogError(
            "log_key",
            f"the checkpoint at size {size} was signed by "
            f"'{row.log_key.split('+')[0]}', not by the configured log key",
        )
    if not row.published and (row.witness_keys != witness_keys or row.quorum != config.quorum):
        row.witness_keys, row.quorum = witness_keys, config.quorum
        row.cosigners = _count_cosigners(row.note, config)
    return row


def _count_cosigners(note: str, config: LogConfig) -> int:
    opened = open_note(note, [config.verifier, *(w.key for w in config.witnesses)])
    keys = {w.key.public_key for w in config.witnesses if opened.verified_by(w.key) is not None}
    return len(keys)


def _remember_witness_size(session: Session, name: str, size: int, now: datetime) -> None:
    state = session.get(LogWitnessState, name, with_for_update=True)
    if state is None:
        session.add(LogWitnessState(name=name, size=size, updated_at=now))
    else:
        state.size, state.updated_at = size, now


def _ask_witness(
    ctx: ServiceContext,
    client: httpx.Client,
    witness: WitnessEndpoint,
    note: str,
    size: int,
    old_size: int,
) -> tuple[WitnessOutcome, NoteSignature | None, int | None]:
    """One witness's answer: the outcome, its verified cosignature, the size it is now known at."""
    learned: int | None = None

    def refused(detail: str) -> tuple[WitnessOutcome, None, int | None]:
        return WitnessOutcome(witness.name, False, detail), None, learned

    for _attempt in range(2):
        if old_size > size:
            return refused(
                f"refused: the witness already cosigned size {old_size}, larger than "
                f"this checkpoint's size {size} (the log would have shrunk)"
            )
        with ctx.reading() as session:
            proof = consistency_proof_between(session, old_size, size)
        body = (
            f"old {old_size}\n"
            + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
            + "\n"
            + note
        )
        try:
            response = client.post(
                f"{witness.url}/add-checkpoint",
                content=body.encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as error:
            return refused(f"unreachable: {type(error).__name__}: {error}")
        content_type = response.headers.get("content-type", "")
        if response.status_code == 409 and content_type.startswith("text/x.tlog.size"):
            reported = response.text.strip()
            if not reported.isdigit():
                return refused(f"refused (HTTP 409) with a malformed size {reported!r}")
            old_size = learned = int(reported)
            continue
        if response.status_code != 200:
            return refused(
                f"refused (HTTP {response.status_code}): "
                f"{response.text.strip()[:500] or response.reason_phrase}"
            )
        try:
            opened = open_note(note + response.text, [witness.key])
        except TransparencyError as error:
            return refused(f"answered with an invalid cosignature: {error.message}")
        signature = opened.verified_by(witness.key)
        if signature is None:  # pragma: no cover - open_note requires one verified signature
            return refused("answered without a cosignature by its key")
        return WitnessOutcome(witness.name, True, f"cosigned at size {size}"), signature, size
    return refused(f"refused twice with a changing size (last {old_size})")


# --------------------------------------------------------------------------------------------
# Proof bundles


def proof_bundle(
    ctx: ServiceContext,
    subject_type: str,
    subject_ref: str,
    *,
    older_size: int | None = None,
) -> SubjectBundle:
    """Every leaf about a subject (e.g. ``"claim"``, its ref) with its inclusion proof at the
    latest published checkpoint: a self-contained file `mutualaid verify bundle` checks offline.

    With `older_size`, also the published checkpoint at that size and a consistency proof from it.
    """
    with ctx.reading(replica=True) as session:
        checkpoint = latest_published(session)
        if checkpoint is None:
            raise NotFound("no_checkpoint", "the log has not published a checkpoint yet")
        row = session.scalars(
            select(LogCheckpoint).where(LogCheckpoint.size == checkpoint.size)
        ).one()
        entries = session.execute(
            select(LogEntry.leaf_index, LogEntry.leaf_data)
            .where(
                LogEntry.subject_type == subject_type,
                LogEntry.subject_ref == subject_ref,
                LogEntry.leaf_index < checkpoint.size,
            )
            .order_by(LogEntry.leaf_index)
        ).all()
        if not entries:
            raise NotFound(
                "no_leaves",
                f"the log holds no leaf about {subject_type} "
                f"{subject_ref!r} at size {checkpoint.size}",
                "subject_ref",
            )
        reader = StoredNodes(session)
        bundle_entries = tuple(
            BundleEntry(
                cast(int, index),
                bytes(data),
                tuple(inclusion_proof(reader, cast(int, index), checkpoint.size)),
            )
            for index, data in entries
        )
        older_note: str | None = None
        older_proof: tuple[bytes, ...] = ()
        if older_size is not None:
            older = checkpoint_at(session, older_size)
            if older is None or not older.published or older_size > checkpoint.size:
                raise NotFound(
                    "no_checkpoint", f"no published checkpoint at size {older_size}", "older_size"
                )
            older_note = older.note
            older_proof = tuple(consistency_proof(reader, older_size, checkpoint.size))
        return SubjectBundle(
            subject_type=subject_type,
            subject_ref=subject_ref,
            origin=row.note.split("\n", 1)[0],
            log_key=row.log_key,
            witness_keys=tuple(row.witness_keys),
            quorum=row.quorum,
            checkpoint=row.note,
            entries=bundle_entries,
            older_checkpoint=older_note,
            consistency_proof=older_proof,
        )
