"""A member's charge proof is checked link by link against the keys the auditor trusts: every
forgery of issue 14 is refused, each at its own link, and so is any change to any one field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutualaid.domain.apportionment import charges_leaf
from mutualaid.transparency.charge_proofs import (
    BLOCK,
    BLOCK_IN_TREE,
    CHARGE,
    CHARGES_ROOT,
    CHECKPOINT_SIGNATURE,
    COMMITMENT_IN_LOG,
    COMMITMENT_LEAF,
    LINKS,
    PERIOD,
    WITNESS_QUORUM,
    ChargeProof,
    ChargeProofError,
    parse_charge_proof,
    verify_charge_proof,
)
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.errors import VerificationError
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import add_signatures, generate_signer_key
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


def charges_tree(period: str, blocks: dict[int, list[tuple[int, int]]]) -> MemoryTree:
    return MemoryTree.from_entries(charges_leaf(period, b, pairs) for b, pairs in blocks.items())


def evidence(n: int) -> bytes:
    return canonical_leaf(
        "evidence",
        {"claim_ref": f"claim-{n}", "sha256": f"{n:064x}", "size": n, "media_type": "image/png"},
    )


LOG = [evidence(0), commitment(MARCH, BLOCKS), evidence(2), commitment(APRIL, BLOCKS), evidence(4)]
LOG_TREE = MemoryTree.from_entries(LOG)


def checkpoint(
    size: int = len(LOG), log_key: Any = LOG_KEY, witnesses: int = 2, tree: MemoryTree = LOG_TREE
) -> str:
    note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), log_key)
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


def refused_at(proof: ChargeProof, link: str, words: str) -> None:
    with pytest.raises(ChargeProofError) as refusal:
        verify_charge_proof(parse_charge_proof(proof.to_json()), TRUST)
    assert (refusal.value.link, refusal.value.passed) == (
        link,
        refusal.value.checks[: LINKS.index(link)],
    )
    assert words in refusal.value.detail, refusal.value.detail
    assert [c.name for c in refusal.value.checks] == list(LINKS[: LINKS.index(link) + 1])


def test_an_honest_proof_holds_at_every_link_and_survives_its_file() -> None:
    proof = honest()
    assert parse_charge_proof(proof.to_json()) == proof
    report = verify_charge_proof(proof, TRUST)
    assert [c.name for c in report.checks] == list(LINKS)
    assert all(c.passed for c in report.checks)
    assert report.cosigners == ("w0.example", "w1.example")
    assert report.commitment.fields["period_ref"] == MARCH
    assert "membership 3 was charged 282 fen" in report.checks[-1].detail
    verify_charge_proof(honest(APRIL, 1030, 3), TRUST)


def test_a_lowered_charge_with_every_root_recomputed_is_not_in_the_log() -> None:
    forged_blocks = {**BLOCKS, 0: [(m, c - 100 if m == MEMBER else c) for m, c in BLOCKS[0]]}
    tree = charges_tree(MARCH, forged_blocks)
    proof = dataclasses.replace(
        honest(),
        charge_fen=182,
        block=tuple(forged_blocks[0]),
        charges_root=tree.root(),
        charges_proof=tuple(tree.inclusion_proof(0)),
        commitment_leaf=commitment(MARCH, forged_blocks),
    )
    refused_at(proof, COMMITMENT_IN_LOG, "is not leaf 1 of the log at size 5")
    # Without recomputing the commitment, the root differs from the committed one.
    refused_at(dataclasses.replace(proof, commitment_leaf=LOG[1]), CHARGES_ROOT, "differs from the")
    # Without recomputing the charges root, the block is not in the tree.
    refused_at(
        dataclasses.replace(honest(), block=proof.block, charge_fen=182),
        BLOCK_IN_TREE,
        "leads to root",
    )


def test_a_proof_without_its_commitment_leaf_or_with_another_leaf_is_refused() -> None:
    refused_at(dataclasses.replace(honest(), commitment_leaf=None), COMMITMENT_LEAF, "carries no")
    refused_at(
        dataclasses.replace(
            honest(),
            commitment_leaf=LOG[2],
            commitment_proof=tuple(LOG_TREE.inclusion_proof(2, len(LOG))),
            commitment_leaf_index=2,
        ),
        COMMITMENT_LEAF,
        "'evidence' leaf, not a period_commitment",
    )
    refused_at(
        dataclasses.replace(honest(), commitment_leaf=b'{"type": "period_commitment"}'),
        COMMITMENT_LEAF,
        "not a canonical log leaf",
    )


def test_a_charges_tree_one_leaf_larger_than_committed_is_refused() -> None:
    # Leaf 0's proof at size 3 also verifies at size 4: only the commitment catches it.
    proof = dataclasses.replace(honest(), charges_tree_size=len(BLOCKS) + 1)
    refused_at(proof, CHARGES_ROOT, "the charges tree has 4 leaves, the commitment committed 3")


def test_a_commitment_leaf_beyond_the_checkpoint_or_at_another_index_is_refused() -> None:
    refused_at(dataclasses.replace(honest(), commitment_leaf_index=5), COMMITMENT_IN_LOG, "beyond")
    refused_at(
        dataclasses.replace(honest(), checkpoint=checkpoint(size=1)),
        COMMITMENT_IN_LOG,
        "beyond the checkpoint's size 1",
    )
    refused_at(
        dataclasses.replace(honest(), commitment_leaf_index=0), COMMITMENT_IN_LOG, "not leaf 0"
    )


def test_a_checkpoint_from_another_log_is_refused() -> None:
    other_tree = MemoryTree.from_entries(LOG)
    refused_at(
        dataclasses.replace(honest(), checkpoint=checkpoint(log_key=OTHER_LOG, tree=other_tree)),
        CHECKPOINT_SIGNATURE,
        "not signed by the trusted log 'log.mutualaid.example+",
    )
    elsewhere = generate_signer_key("log.elsewhere.example", seed=b"\x33" * 32)
    note = sign_checkpoint(Checkpoint("log.elsewhere.example", 5, LOG_TREE.root()), elsewhere)
    refused_at(dataclasses.replace(honest(), checkpoint=note), CHECKPOINT_SIGNATURE, "another log")


def test_a_checkpoint_short_of_the_witness_quorum_is_refused() -> None:
    refused_at(
        dataclasses.replace(honest(), checkpoint=checkpoint(witnesses=1)),
        WITNESS_QUORUM,
        "cosigned by 1 known witnesses ('w0.example'), fewer than the quorum of 2",
    )


def test_a_block_of_another_period_is_refused() -> None:
    april = honest(APRIL, log_index=3)
    march = honest()
    # March's block and charges tree, under April's commitment.
    spliced = dataclasses.replace(
        april,
        block_period_ref=MARCH,
        block=march.block,
        charges_root=march.charges_root,
        charges_proof=march.charges_proof,
    )
    refused_at(spliced, PERIOD, "the block is of period 'xhb-main/2026-03-07'")
    # An honest March proof presented as April's.
    refused_at(dataclasses.replace(march, period_ref=APRIL), PERIOD, "is about period")
    refused_at(dataclasses.replace(march, plan_ref="other"), PERIOD, "plan 'other'")


def test_a_claimed_charge_other_than_the_blocks_is_refused() -> None:
    refused_at(dataclasses.replace(honest(), charge_fen=281), CHARGE, "282 fen, not the claimed")
    refused_at(dataclasses.replace(honest(), membership_id=4), CHARGE, "membership 4 is not")


def test_a_block_that_does_not_encode_is_refused() -> None:
    proof = honest()
    refused_at(
        dataclasses.replace(proof, block=tuple(reversed(proof.block))), BLOCK, "does not encode"
    )
    refused_at(dataclasses.replace(proof, block=((2000, 1),)), BLOCK, "does not encode")
    refused_at(dataclasses.replace(proof, block=()), BLOCK, "lists no charge")


def test_the_file_is_read_strictly() -> None:
    body = json.loads(honest().to_json())
    for broken, words in [
        ({**body, "format": "mutualaid-charge-proof/v2"}, "format"),
        ({**body, "extra": 1}, "unknown field 'extra'"),
        ({**body, "charge_fen": -1}, "'charge_fen' must be an integer"),
        ({**body, "charge_fen": True}, "'charge_fen' must be an integer"),
        ({**body, "block": {**body["block"], "charges": [[1]]}}, "block.charges[0]"),
        ({**body, "charges_tree": {**body["charges_tree"], "root": "AB" * 32}}, "lowercase hex"),
        (
            {**body, "commitment": {**body["commitment"], "inclusion_proof": ["AAB="]}},
            "canonical base64",
        ),
    ]:
        with pytest.raises(VerificationError, match=words.replace("[", r"\[")):
            parse_charge_proof(json.dumps(broken))


def _paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for n, item in enumerate(value) for p in _paths(item, (*path, n))]
    return [path]


HONEST = json.loads(honest().to_json())
PATHS = _paths(HONEST)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(path=st.sampled_from(PATHS), data=st.data())
def test_any_single_field_changed_is_refused(path: tuple[str | int, ...], data: Any) -> None:
    body = json.loads(json.dumps(HONEST))
    holder: Any = body
    for step in path[:-1]:
        holder = holder[step]
    old = holder[path[-1]]
    new: object
    if isinstance(old, int):
        new = data.draw(st.integers(0, 2**64 - 1).filter(lambda n: n != old))
    else:
        assert isinstance(old, str)
        position = data.draw(st.integers(0, len(old) - 1))
        char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != old[position]))
        new = old[:position] + char + old[position + 1 :]
    holder[path[-1]] = new
    with pytest.raises(VerificationError):
        verify_charge_proof(parse_charge_proof(json.dumps(body)), TRUST)
