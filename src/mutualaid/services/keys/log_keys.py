"""Rotating the transparency log's signing key: the new key announced on the log, signed by the
old one (transparency/key_rotations.py), and the next checkpoint signed by the new key."""

from __future__ import annotations

from sqlalchemy import select

from mutualaid.db.models import LogEntry
from mutualaid.domain.errors import DomainError
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.transparency.checkpoints import LogConfig, PublishResult, publish_checkpoint
from mutualaid.services.transparency.log import queue_leaf, unix_seconds
from mutualaid.transparency.key_rotations import key_announcement_leaf
from mutualaid.transparency.leaves import decode_leaf
from mutualaid.transparency.notes import SIGNATURE_TYPE_ED25519, SignerKey, parse_verifier_key


def announce_log_key(
    ctx: ServiceContext, config: LogConfig, new_signer: SignerKey
) -> PublishResult:
    """Put the new key's announcement on the log, signed by `config.signer` (the key in use),
    and publish a checkpoint signed by the new key. From then on MUTUALAID_LOG_KEY_FILE must be
    the new key: a checkpoint the old key signs after the announcement does not verify.

    Refusals: log_key_name_mismatch (the new key is not named after the log's origin),
    log_key_type (not Ed25519), log_key_unchanged (the key in use), log_key_not_current (the
    key in use is not the one the log announced last: the wrong MUTUALAID_LOG_KEY_FILE).
    """
    old, new = config.signer.verifier(), new_signer.verifier()
    if new.name != old.name:
        raise DomainError(
            "log_key_name_mismatch",
            f"the new key is named '{new.name}' but the log is '{old.name}'; create it with "
            f"`mutualaid log keygen --name {old.name} --out FILE`",
            "new_key_file",
        )
    if new_signer.signature_type != SIGNATURE_TYPE_ED25519:
        raise DomainError("log_key_type", "the new key is not an Ed25519 note key", "new_key_file")
    if new == old:
        raise DomainError(
            "log_key_unchanged", "the new key is the key in use already", "new_key_file"
        )
    now = ctx.clock.now()
    leaf = decode_leaf(key_announcement_leaf(config.signer, new, unix_seconds(now)))
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        last = uow.session.scalar(
            select(LogEntry.leaf_data)
            .where(LogEntry.leaf_type == "log_key")
            .order_by(LogEntry.id.desc())
            .limit(1)
            .with_for_update()
        )
        if last is not None:
            announced = parse_verifier_key(str(decode_leaf(bytes(last)).fields["new_key"]))
            if announced != old:
                raise DomainError(
                    "log_key_not_current",
                    f"the log last announced '{announced.label}', but MUTUALAID_LOG_KEY_FILE "
                    f"holds '{old.label}'",
                    "MUTUALAID_LOG_KEY_FILE",
                )
        queue_leaf(
            uow.session,
            at=now,
            leaf_type="log_key",
            fields=leaf.fields,
            subject_type="log",
            subject_ref=f"log-key-{new.key_id.hex()}",
        )
        uow.commit(None)
    return publish_checkpoint(ctx, LogConfig(new_signer, config.witnesses, config.quorum))
