"""Builders for charge proofs: an honest proof over a small log cosigned by two witnesses, built
without a database, and every forgery of issue 14 with the link that must refuse it."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from mutualaid.domain.apportionment import charges_leaf
from mutualaid.transparency.charge_proofs import (
    BLOCK,
    BLOCK_IN_TREE,
    CHARGE,
    CHARGES_ROOT,
    CHECKPOINT_SIGNATURE,
    COMMITMENT_IN_LOG,
    COMMITMENT_LEAF,
    PERIOD,
    WITNESS_QUORUM,
    ChargeProof,
)
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import SignerKey, add_signatures, generate_signer_key
from mutualaid.transparency.verification import TrustPolicy
from mutualaid.transparency.witnesses import generate_witness_key, sign_cosignature

ORIGIN = "log.mutualaid.example"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x31" * 32)
OTHER_LOG = generate_signer_key(ORIGIN, seed=b"\x32" * 32)
WITNESSES = [generate_witness_key(f"w{n}.example", seed=bytes([0x40 + n]) * 32) for n in range(2)]
TRUST = TrustPolicy(ORIGIN, LOG_KEY.verifier(), tuple(w.verifier() for w in WITNESSES), 2)
PLAN = "xhb-main"
MARCH = "xhb-main/2026-03-07"
APRIL = "xhb-main/2026-04-07"
MEMBER = 3
SHARE = 300
#: Block index -> (membership id, charge); every charge differs, so no two members' claims match.
BLOCKS = {
    0: [(1, 280), (2, 281), (3, 282), (5, 283)],
    1: [(1024, 284), (1030, 285)],
    3: [(3072, 286)],
}


def charges_tree(period: str, blocks: dict[int, list[tuple[int, int]]]) -> MemoryTree:
    return MemoryTree.from_entries(charges_leaf(period, b, pairs) for b, pairs in blocks.items())


def commitment(period: str, blocks: dict[int, list[tuple[int, int]]]) -> bytes:
    tree = charges_tree(period, blocks)
    charges = [c for pairs in blocks.values() for _, c in pairs]
    return canonical_leaf(
        "period_commitment",
        {
            "plan_ref": PLAN,
            "period_ref": period,
            "charges_root": tree.root().hex(),
            "charges_count": len(charges),
            "charges_leaves": len(blocks),
            "total_charged_fen": sum(charges),
            "aid_fen": 1000,
            "fee_fen": 80,
            "surplus_in_fen": 0,
            "surplus_out_fen": 0,
            "share_fen": SHARE,
        },
    )


def evidence(n: int) -> bytes:
    return canonical_leaf(
        "evidence",
        {"claim_ref": f"claim-{n}", "sha256": f"{n:064x}", "size": n, "media_type": "image/png"},
    )


LOG = [evidence(0), commitment(MARCH, BLOCKS), evidence(2), commitment(APRIL, BLOCKS), evidence(4)]
LOG_TREE = MemoryTree.from_entries(LOG)


def checkpoint(size: int = len(LOG), log_key: SignerKey = LOG_KEY, witnesses: int = 2) -> str:
    note = sign_checkpoint(Checkpoint(log_key.name, size, LOG_TREE.root(size)), log_key)
    text = note.split("\n\n", 1)[0] + "\n"
    cosignatures = [sign_cosignature(w, text, 1_770_000_000) for w in WITNESSES[:witnesses]]
    return add_signatures(note, cosignatures)


def honest(period: str = MARCH, member: int = MEMBER, log_index: int = 1) -> ChargeProof:
    block_index = member >> 10
    tree = charges_tree(period, BLOCKS)
    position = sorted(BLOCKS).index(block_index)
    return ChargeProof(
        plan_ref=PLAN,
        period_ref=period,
        membership_id=member,
        charge_fen=dict(BLOCKS[block_index])[member],
        block_period_ref=period,
        block_index=block_index,
        block=tuple(BLOCKS[block_index]),
        block_leaf_index=position,
        charges_tree_size=len(BLOCKS),
        charges_root=tree.root(),
        charges_proof=tuple(tree.inclusion_proof(position)),
        commitment_leaf=LOG[log_index],
        commitment_leaf_index=log_index,
        commitment_proof=tuple(LOG_TREE.inclusion_proof(log_index, len(LOG))),
        checkpoint=checkpoint(),
    )


class Forgery(NamedTuple):
    proof: ChargeProof
    link: str
    #: Words of the message that names what is wrong.
    words: str


def forgeries() -> dict[str, Forgery]:
    """Each forgery of issue 14 (and a few more), the link that refuses it and its message."""
    march = honest()
    lowered = {**BLOCKS, 0: [(m, c - 100 if m == MEMBER else c) for m, c in BLOCKS[0]]}
    lowered_tree = charges_tree(MARCH, lowered)
    recomputed = dataclasses.replace(
        march,
        charge_fen=182,
        block=tuple(lowered[0]),
        charges_root=lowered_tree.root(),
        charges_proof=tuple(lowered_tree.inclusion_proof(0)),
        commitment_leaf=commitment(MARCH, lowered),
    )
    april = honest(APRIL, log_index=3)
    elsewhere = generate_signer_key("log.elsewhere.example", seed=b"\x33" * 32)
    replace = dataclasses.replace
    return {
        "charge lowered, every root recomputed": Forgery(
            recomputed, COMMITMENT_IN_LOG, "is not leaf 1 of the log at size 5"
        ),
        "charge lowered, commitment kept": Forgery(
            replace(recomputed, commitment_leaf=LOG[1]), CHARGES_ROOT, "differs from the committed"
        ),
        "charge lowered, charges root kept": Forgery(
            replace(march, block=recomputed.block, charge_fen=182), BLOCK_IN_TREE, "leads to root"
        ),
        "commitment leaf missing": Forgery(
            replace(march, commitment_leaf=None), COMMITMENT_LEAF, "carries no period_commitment"
        ),
        "another leaf as the commitment": Forgery(
            replace(
                march,
                commitment_leaf=LOG[2],
                commitment_leaf_index=2,
                commitment_proof=tuple(LOG_TREE.inclusion_proof(2, len(LOG))),
            ),
            COMMITMENT_LEAF,
            "'evidence' leaf, not a period_commitment",
        ),
        "charges tree one leaf larger": Forgery(
            # Leaf 0's proof at size 3 also verifies at size 4: only the commitment catches it.
            replace(march, charges_tree_size=len(BLOCKS) + 1),
            CHARGES_ROOT,
            "the charges tree has 4 leaves, the commitment committed 3",
        ),
        "commitment beyond the checkpoint": Forgery(
            replace(march, checkpoint=checkpoint(size=1)),
            COMMITMENT_IN_LOG,
            "leaf index 1 is beyond the checkpoint's size 1",
        ),
        "commitment at another index": Forgery(
            replace(march, commitment_leaf_index=0), COMMITMENT_IN_LOG, "is not leaf 0 of the log"
        ),
        "checkpoint signed by another key": Forgery(
            replace(march, checkpoint=checkpoint(log_key=OTHER_LOG)),
            CHECKPOINT_SIGNATURE,
            "not signed by the trusted log 'log.mutualaid.example+",
        ),
        "checkpoint of another log": Forgery(
            replace(march, checkpoint=checkpoint(log_key=elsewhere)),
            CHECKPOINT_SIGNATURE,
            "a checkpoint of another log?",
        ),
        "witness quorum not met": Forgery(
            replace(march, checkpoint=checkpoint(witnesses=1)),
            WITNESS_QUORUM,
            "cosigned by 1 known witnesses ('w0.example'), fewer than the quorum of 2",
        ),
        "block of another period": Forgery(
            replace(
                april,
                block_period_ref=MARCH,
                block=march.block,
                charges_root=march.charges_root,
                charges_proof=march.charges_proof,
            ),
            PERIOD,
            "the block is of period 'xhb-main/2026-03-07', the commitment of 'xhb-main/2026-04-07'",
        ),
        "proof presented as another period's": Forgery(
            replace(march, period_ref=APRIL), PERIOD, "the proof is about period"
        ),
        "claimed charge differs from the block": Forgery(
            replace(march, charge_fen=281), CHARGE, "charges membership 3 282 fen, not the claimed"
        ),
        "member not in the block": Forgery(
            replace(march, membership_id=4), CHARGE, "membership 4 is not in the block"
        ),
        "block out of order": Forgery(
            replace(march, block=tuple(reversed(march.block))), BLOCK, "does not encode"
        ),
    }
