"""Offline verification of proof bundles: every kind of tampering is caught and named."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.errors import VerificationError
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import (
    NoteSignature,
    SignerKey,
    add_signatures,
    generate_signer_key,
    parse_note,
    sign_note,
)
from mutualaid.transparency.verification import (
    ProofBundle,
    TrustPolicy,
    parse_bundle,
    verify_bundle,
)
from mutualaid.transparency.witnesses import WitnessState, cosign, generate_witness_key

ORIGIN = "mutualaid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x11" * 32)
WITNESSES = [generate_witness_key(f"w{n}.example", seed=bytes([0x20 + n]) * 32) for n in range(3)]
NOW = 1_700_000_000

LEAVES = [
    canonical_leaf(
        "evidence",
        {
            "claim_ref": f"claim-{n:04d}",
            "sha256": hashlib.sha256(f"scan {n}".encode()).hexdigest(),
            "size": 1000 + n,
            "media_type": "image/jpeg",
        },
    )
    for n in range(13)
]
TREE = MemoryTree.from_entries(LEAVES)

TRUST = TrustPolicy(ORIGIN, LOG_KEY.verifier(), tuple(w.verifier() for w in WITNESSES), 2)


def cosigned_note(size: int, tree: MemoryTree = TREE, log_key: SignerKey = LOG_KEY) -> str:
    note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), log_key)
    state = WitnessState(ORIGIN, size, tree.root(size))
    return add_signatures(
        note,
        [cosign(state, note, [], log_key.verifier(), w, NOW).cosignature for w in WITNESSES[:2]],
    )


def bundle(index: int = 5, size: int = 13, **changes: object) -> ProofBundle:
    base = ProofBundle(
        origin=ORIGIN,
        log_key=LOG_KEY.verifier().encode(),
        witness_keys=tuple(w.verifier().encode() for w in WITNESSES),
        quorum=2,
        checkpoint=cosigned_note(size),
        leaf_index=index,
        leaf_data=LEAVES[index],
        inclusion_proof=tuple(TREE.inclusion_proof(index, size)),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def failure(report_bundle: ProofBundle, trust: TrustPolicy | None = TRUST) -> tuple[str, str]:
    report = verify_bundle(report_bundle, trust)
    assert not report.ok
    assert len(report.failures) == 1
    return report.failures[0].name, report.failures[0].detail


def test_genuine_bundle_verifies_every_check() -> None:
    report = verify_bundle(bundle(), TRUST)
    assert report.ok
    assert [c.name for c in report.checks] == ["checkpoint signatures", "leaf inclusion"]
    assert report.cosigners == ("w0.example", "w1.example")
    assert report.checkpoint is not None and report.checkpoint.size == 13
    assert report.leaf is not None and report.leaf.fields["claim_ref"] == "claim-0005"
    assert not report.keys_from_bundle
    report.raise_for_failure()


def test_bundle_survives_a_json_round_trip() -> None:
    original = bundle(older_checkpoint=cosigned_note(6), consistency_proof=tuple(
        TREE.consistency_proof(6, 13)))  # fmt: skip
    assert parse_bundle(original.to_json()) == original
    assert verify_bundle(parse_bundle(original.to_json()), TRUST).ok


def test_without_pinned_keys_the_report_says_keys_came_from_the_bundle() -> None:
    report = verify_bundle(bundle())
    assert report.ok and report.keys_from_bundle


def test_tampered_leaf_is_detected() -> None:
    tampered = LEAVES[5].replace(b"image/jpeg", b"image/png!")
    name, detail = failure(bundle(leaf_data=tampered))
    assert name == "leaf inclusion"
    assert detail.startswith("inclusion proof for leaf 5 at size 13 leads to root ")
    assert f"not to the expected root {TREE.root(13).hex()}" in detail


def test_leaf_claimed_at_another_index_is_detected() -> None:
    name, detail = failure(bundle(leaf_index=4))
    assert (name, detail.split(" leads")[0]) == (
        "leaf inclusion", "inclusion proof for leaf 4 at size 13"
    )  # fmt: skip


def test_proof_made_for_another_tree_size_is_detected() -> None:
    stale = tuple(TREE.inclusion_proof(5, 8))
    assert failure(bundle(inclusion_proof=stale)) == (
        "leaf inclusion",
        "inclusion proof for leaf 5 at size 13 has 3 hashes, expected 4",
    )


def test_reordered_leaves_break_consistency_with_an_older_checkpoint() -> None:
    reordered = MemoryTree.from_entries([LEAVES[1], LEAVES[0], *LEAVES[2:]])
    newer = cosigned_note(13, reordered)
    forged = bundle(
        checkpoint=newer,
        inclusion_proof=tuple(reordered.inclusion_proof(5, 13)),
        older_checkpoint=cosigned_note(6),
        consistency_proof=tuple(reordered.consistency_proof(6, 13)),
    )
    name, detail = failure(forged)
    assert name == "consistency with older checkpoint"
    assert detail.startswith("consistency proof from size 6 to size 13 leads to old root ")
    assert f"not to the expected old root {TREE.root(6).hex()}" in detail


def test_truncated_log_is_detected() -> None:
    truncated = bundle(
        size=9,
        older_checkpoint=cosigned_note(13),
        consistency_proof=(),
    )
    assert failure(truncated) == (
        "consistency with older checkpoint",
        "tree size went from 13 to 9: a log can only grow",
    )


def test_forged_log_signature_is_detected() -> None:
    parsed = parse_note(cosigned_note(13))
    log_signature = parsed.signatures[0]
    forged_bytes = bytes([log_signature.signature[0] ^ 1]) + log_signature.signature[1:]
    forged = add_signatures(
        cosigned_note(13), [NoteSignature(log_signature.name, log_signature.key_id, forged_bytes)]
    )
    name, detail = failure(bundle(checkpoint=forged))
    assert name == "checkpoint signatures"
    assert detail == f"signature by key '{LOG_KEY.verifier().label}' is not valid"


def test_checkpoint_signed_by_the_wrong_key_is_detected() -> None:
    impostor = generate_signer_key(ORIGIN, seed=b"\x66" * 32)
    # Even with genuine cosignatures on it, the impostor's checkpoint lacks the log's signature.
    assert failure(bundle(checkpoint=cosigned_note(13, log_key=impostor))) == (
        "checkpoint signatures",
        f"checkpoint is not signed by the log key '{LOG_KEY.verifier().label}'",
    )
    bare = sign_checkpoint(Checkpoint(ORIGIN, 13, TREE.root(13)), impostor)
    _, detail = failure(bundle(checkpoint=bare))
    assert detail.startswith("note has no signature by a known key (signed by 'mutualaid.example")


def test_checkpoint_from_another_origin_is_detected() -> None:
    body = Checkpoint("other.example/log", 13, TREE.root(13)).body()
    note = sign_note(body, [LOG_KEY])
    assert failure(bundle(checkpoint=note)) == (
        "checkpoint signatures",
        "checkpoint origin 'other.example/log' does not match expected origin "
        "'mutualaid.example/log'",
    )


def test_bundle_for_another_log_than_the_pinned_one_is_refused() -> None:
    assert failure(bundle(origin="other.example/log")) == (
        "origin",
        "bundle origin 'other.example/log' does not match expected origin 'mutualaid.example/log'",
    )


def test_too_few_cosignatures_for_the_pinned_quorum_are_detected() -> None:
    strict = dataclasses.replace(TRUST, quorum=3)
    name, detail = failure(bundle(), strict)
    assert name == "checkpoint signatures"
    assert detail.endswith("fewer than the quorum of 3")


def test_bundle_cannot_lower_the_pinned_quorum() -> None:
    # The bundle claims quorum 0, but the auditor's policy decides.
    note = sign_checkpoint(Checkpoint(ORIGIN, 13, TREE.root(13)), LOG_KEY)
    _, detail = failure(bundle(checkpoint=note, quorum=0))
    assert detail == (
        "checkpoint at size 13 is cosigned by 0 known witnesses (none), fewer than the quorum of 2"
    )


def test_malformed_key_in_the_bundle_is_reported() -> None:
    report = verify_bundle(bundle(log_key="nonsense"))
    assert not report.ok
    assert report.failures[0].name == "keys"
    assert "verifier key must be <name>+<key ID>+<key>" in report.failures[0].detail
    with pytest.raises(VerificationError, match="keys: bundle key is malformed"):
        report.raise_for_failure()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.pop("format"), "bundle format is None, expected"),
        (lambda b: b.update(quorum="2"), "'quorum' must be a non-negative integer"),
        (lambda b: b.update(leaf_index=-1), "'leaf_index' must be a non-negative integer"),
        (lambda b: b.update(leaf_data="***"), "'leaf_data' is not valid base64"),
        (lambda b: b["inclusion_proof"].append("%%"), "'inclusion_proof\\[4\\]' is not valid"),
        (lambda b: b.update(consistency_proof=[]), "consistency_proof but no older_checkpoint"),
        (lambda b: b.update(witness_keys="k"), "'witness_keys' must be a list of strings"),
    ],
)
def test_malformed_bundle_json_is_refused_with_the_field_named(
    mutate: object, message: str
) -> None:
    body = json.loads(bundle().to_json())
    mutate(body)  # type: ignore[operator]
    with pytest.raises(VerificationError, match=message):
        parse_bundle(json.dumps(body))


def test_non_json_bundle_is_refused() -> None:
    with pytest.raises(VerificationError, match="bundle is not valid JSON"):
        parse_bundle("{")
