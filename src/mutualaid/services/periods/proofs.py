"""A member's proof that their charge is in the committed total, anchored to a cosigned checkpoint
of the transparency log (the file `mutualaid verify charge` checks; see
`transparency.charge_proofs`)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import date

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    LogCheckpoint,
    LogEntry,
    Membership,
    PeriodChargeTree,
)
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import STAFF_ROLES
from mutualaid.domain.apportionment import (
    PeriodState,
    charges_leaf,
    reached,
)
from mutualaid.domain.errors import Conflict, NotFound
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.periods.charges import stream_charges
from mutualaid.services.periods.sharing import charge_rule
from mutualaid.services.periods.views import find_period
from mutualaid.services.transparency.proofs import StoredNodes
from mutualaid.transparency.charge_proofs import ChargeProof
from mutualaid.transparency.errors import KeyFormatError
from mutualaid.transparency.merkle import MemoryTree, hash_leaf, inclusion_proof
from mutualaid.transparency.notes import parse_verifier_key
from mutualaid.transparency.verification import TrustPolicy

# --- a member's proof that their charge is in the committed total --------------------------------


def charge_proof(
    ctx: ServiceContext, actor: Actor, membership_id: int, plan_code: str, publicity_on: date
) -> ChargeProof:
    """Everything a member needs to check, without trusting us, that their charge is one entry of
    the charges tree committed for the period, whose commitment leaf is in the log under the
    latest published (cosigned) checkpoint. Refused with `commitment_not_yet_checkpointed` until
    a published checkpoint covers the commitment leaf."""
    with ctx.reading(replica=True) as session:
        plan = plan_by_code(session, plan_code)
        membership = session.get(Membership, membership_id)
        if (
            membership is None
            or membership.plan_id != plan.id
            or (actor.role not in STAFF_ROLES and membership.payer_account_id != actor.account_id)
        ):
            raise NotFound(
                "membership_not_found", f"there is no membership {membership_id}", "membership_id"
            )
        period = find_period(session, plan, publicity_on)
        if not reached(PeriodState(period.state), PeriodState.COMMITTED):
            raise Conflict(
                "period_not_committed",
                f"period {period.ref} is not committed yet",
                details={"period": period.ref},
            )
        if not period.share_fen:
            raise NotFound(
                "not_charged",
                f"nobody was charged in {period.ref} (no share)",
                "membership_id",
                details={"period": period.ref},
            )
        tree_row = session.get_one(PeriodChargeTree, period.id)
        bits = tree_row.block_bits
        block_index = membership_id >> bits
        low, high = block_index << bits, (block_index + 1) << bits
        rule = charge_rule(session, period, id_from=low, id_to=high)
        pairs: list[tuple[int, int]] = []
        for ids, charges in stream_charges(session, rule, id_from=low, id_to=high):
            pairs.extend(zip(ids.tolist(), charges.tolist(), strict=True))
        own = [charge for mid, charge in pairs if mid == membership_id]
        if not own:
            raise NotFound(
                "not_charged",
                f"membership {membership_id} was not charged in {period.ref}",
                "membership_id",
                details={"period": period.ref},
            )
        indexes = np.frombuffer(tree_row.block_indexes, dtype=">u8")
        leaf_index = int(np.searchsorted(indexes, block_index))
        if leaf_index >= len(indexes) or int(indexes[leaf_index]) != block_index:
            raise Conflict("charges_changed", "this block is not in the committed tree")
        stored = tree_row.leaf_hashes
        leaf = charges_leaf(period.ref, block_index, pairs)
        if stored[32 * leaf_index : 32 * leaf_index + 32] != hash_leaf(leaf):
            raise Conflict("charges_changed", "this block no longer matches the committed tree")
        tree = _charges_tree(period.id, period.charges_root or "", stored)
        entry = (
            session.get(LogEntry, period.commitment_entry_id)
            if period.commitment_entry_id
            else None
        )
        checkpoint = _latest_published(session)
        if (
            entry is None
            or entry.leaf_index is None
            or checkpoint is None
            or entry.leaf_index >= checkpoint.size
        ):
            raise Conflict(
                "commitment_not_yet_checkpointed",
                f"the commitment of {period.ref} is not yet under a published checkpoint of the "
                "log; the proof can be made after the next checkpoint",
            )
        log_proof = inclusion_proof(StoredNodes(session), entry.leaf_index, checkpoint.size)
        return ChargeProof(
            plan_ref=plan.code,
            period_ref=period.ref,
            membership_id=membership_id,
            charge_fen=own[0],
            block_period_ref=period.ref,
            block_index=block_index,
            block=tuple(pairs),
            block_leaf_index=leaf_index,
            charges_tree_size=len(indexes),
            charges_root=bytes.fromhex(period.charges_root or ""),
            charges_proof=tuple(tree.inclusion_proof(leaf_index)),
            commitment_leaf=bytes(entry.leaf_data),
            commitment_leaf_index=entry.leaf_index,
            commitment_proof=tuple(log_proof),
            checkpoint=checkpoint.note,
        )


def charge_proof_file_name(proof: ChargeProof) -> str:
    """E.g. ``charge-proof-xhb-main_2026-03-07-1234.json``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in proof.period_ref)
    return f"charge-proof-{safe}-{proof.membership_id}.json"


def published_trust(ctx: ServiceContext) -> TrustPolicy:
    """The log key, witness keys and quorum the latest checkpoint was published under: what the
    operator *claims*. Pages use it to check a proof in place; an auditor passes keys obtained
    from the witnesses themselves instead."""
    with ctx.reading(replica=True) as session:
        row = _latest_published(session)
    if row is None:
        raise NotFound("no_checkpoint", "the log has not published a checkpoint yet")
    try:
        log_key = parse_verifier_key(row.log_key)
        witnesses = tuple(parse_verifier_key(key) for key in row.witness_keys)
    except KeyFormatError as error:  # keys are checked before they are stored
        raise Conflict("bad_log_key", error.message) from None
    return TrustPolicy(log_key.name, log_key, witnesses, row.quorum)


def _latest_published(session: Session) -> LogCheckpoint | None:
    return session.scalars(
        select(LogCheckpoint)
        .where(LogCheckpoint.published)
        .order_by(LogCheckpoint.size.desc())
        .limit(1)
    ).first()


_TREES: OrderedDict[tuple[int, str], MemoryTree] = OrderedDict()
_TREES_KEPT = 4


def _charges_tree(period_id: int, root: str, leaf_hashes: bytes) -> MemoryTree:
    """The period's charges tree, built once per process and kept for the next proofs (members
    ask about the latest periods; 100M members make a 98k-leaf tree of about 7 MB)."""
    key = (period_id, root)
    tree = _TREES.get(key)
    if tree is None:
        tree = MemoryTree(leaf_hashes[i : i + 32] for i in range(0, len(leaf_hashes), 32))
        if tree.root().hex() != root:
            raise Conflict("charges_changed", "the stored leaves do not make the committed root")
        _TREES[key] = tree
        while len(_TREES) > _TREES_KEPT:
            _TREES.popitem(last=False)
    _TREES.move_to_end(key)
    return tree
