"""A member's proof that their charge is in the committed total, and its check."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

import numpy as np

from mutualaid.db.models import (
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
from mutualaid.transparency.merkle import MemoryTree, hash_leaf, verify_inclusion

# --- a member's proof that their charge is in the committed total --------------------------------


@dataclass(frozen=True, slots=True)
class ChargeProof:
    period_ref: str
    membership_id: int
    charge_fen: int
    share_fen: int
    #: Every (membership id, charge) of the member's block: the leaf, to be re-encoded.
    block_index: int
    block: list[tuple[int, int]]
    leaf_index: int
    tree_size: int
    inclusion_proof: list[str]
    charges_root: str
    #: The period_commitment leaf (canonical JSON) holding `charges_root`, and its log index.
    commitment_leaf: str | None
    commitment_leaf_index: int | None


def charge_proof(
    ctx: ServiceContext, actor: Actor, membership_id: int, plan_code: str, publicity_on: date
) -> ChargeProof:
    """The evidence a member needs to check, without trusting us, that their charge is one leaf
    entry of the committed charges tree and equal to the period's share (see `verify_charge_proof`)."""
    with ctx.reading() as session:
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
            raise Conflict("period_not_committed", f"period {period.ref} is not committed yet")
        if not period.share_fen:
            raise NotFound(
                "not_charged", f"nobody was charged in {period.ref} (no share)", "membership_id"
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
        return ChargeProof(
            period_ref=period.ref,
            membership_id=membership_id,
            charge_fen=own[0],
            share_fen=period.share_fen or 0,
            block_index=block_index,
            block=pairs,
            leaf_index=leaf_index,
            tree_size=len(indexes),
            inclusion_proof=[h.hex() for h in tree.inclusion_proof(leaf_index)],
            charges_root=period.charges_root or "",
            commitment_leaf=entry.leaf_data.decode() if entry is not None else None,
            commitment_leaf_index=entry.leaf_index if entry is not None else None,
        )


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


def verify_charge_proof(proof: ChargeProof) -> None:
    """Check a charge proof offline; raises VerificationError or DomainError when it fails.

    1. the member's (id, charge) is in the block, and the block re-encodes to the leaf;
    2. the leaf's inclusion proof leads to `charges_root`;
    3. the commitment leaf (logged in the transparency log) names that root and this period;
    4. the charge equals the period's share (or is lower only where the annual cap binds, which
       the commitment's share and the member's own statement show).
    """
    import json

    from mutualaid.transparency.errors import VerificationError

    if (proof.membership_id, proof.charge_fen) not in [tuple(p) for p in proof.block]:
        raise VerificationError("the member's charge is not in the block")
    leaf = charges_leaf(proof.period_ref, proof.block_index, [(a, b) for a, b in proof.block])
    verify_inclusion(
        leaf_hash=hash_leaf(leaf),
        index=proof.leaf_index,
        size=proof.tree_size,
        proof=[bytes.fromhex(h) for h in proof.inclusion_proof],
        root=bytes.fromhex(proof.charges_root),
    )
    if proof.commitment_leaf is not None:
        commitment = json.loads(proof.commitment_leaf)
        if (
            commitment.get("charges_root") != proof.charges_root
            or commitment.get("period_ref") != proof.period_ref
        ):
            raise VerificationError("the logged commitment names another root or period")
        if commitment.get("share_fen", proof.share_fen) != proof.share_fen:
            raise VerificationError("the logged share differs")
    if proof.charge_fen > proof.share_fen:
        raise VerificationError("the charge is above the period's share")
