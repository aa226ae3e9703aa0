"""Witness cosigning (C2SP tlog-cosignature v1) and quorum verification."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.errors import (
    KeyFormatError,
    RefusalCode,
    VerificationError,
    WitnessRefusal,
)
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import (
    NoteSignature,
    add_signatures,
    generate_signer_key,
    parse_note,
    parse_verifier_key,
    sign_note,
)
from mutualaid.transparency.witnesses import (
    WitnessState,
    cosign,
    generate_witness_key,
    sign_cosignature,
    verify_cosigned,
)

ORIGIN = "mutualaid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x01" * 32)
LOG = LOG_KEY.verifier()
WITNESSES = [generate_witness_key(f"witness-{n}.example", seed=bytes([n]) * 32) for n in (7, 8, 9)]
NOW = 1_700_000_000

ENTRIES = [f"leaf {i}".encode() for i in range(20)]
TREE = MemoryTree.from_entries(ENTRIES)


def checkpoint_note(size: int, tree: MemoryTree = TREE) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), LOG_KEY)


def witness_at(size: int) -> WitnessState:
    return WitnessState(ORIGIN, size, TREE.root(size))


def test_witness_cosigns_a_checkpoint_that_extends_the_last_one() -> None:
    result = cosign(
        witness_at(5), checkpoint_note(12), TREE.consistency_proof(5, 12), LOG, WITNESSES[0], NOW
    )
    assert result.state == witness_at(12)
    assert result.checkpoint.size == 12
    assert result.line.startswith("— witness-7.example ")
    cosigned = add_signatures(checkpoint_note(12), [result.cosignature])
    verified = verify_cosigned(cosigned, LOG, [WITNESSES[0].verifier()], quorum=1)
    assert [(c.name, c.timestamp) for c in verified.cosigners] == [("witness-7.example", NOW)]


def test_first_cosignature_needs_no_proof_from_the_empty_tree() -> None:
    result = cosign(WitnessState.initial(ORIGIN), checkpoint_note(3), [], LOG, WITNESSES[0], NOW)
    assert result.state == witness_at(3)


def test_witness_cosigns_the_same_checkpoint_again_with_a_fresh_time() -> None:
    result = cosign(witness_at(7), checkpoint_note(7), [], LOG, WITNESSES[0], NOW + 60)
    assert result.state == witness_at(7)
    assert result.cosignature.timestamp == NOW + 60


def test_cosignature_is_laid_out_and_signed_as_the_specification_says() -> None:
    witness = WITNESSES[1]
    body = Checkpoint(ORIGIN, 4, TREE.root(4)).body()
    signature = sign_cosignature(witness, body, 1679315147)
    raw = base64.b64decode(signature.line().split(" ")[-1])
    public_key = witness.verifier().public_key
    # key ID = SHA-256(name || "\n" || 0x04 || public key)[:4]
    expected_id = hashlib.sha256(witness.name.encode() + b"\n\x04" + public_key).digest()[:4]
    assert raw[:4] == expected_id == witness.key_id
    assert int.from_bytes(raw[4:12], "big") == 1679315147
    assert len(raw) == 4 + 8 + 64
    message = f"cosignature/v1\ntime 1679315147\n{body}".encode()
    Ed25519PublicKey.from_public_bytes(public_key).verify(raw[12:], message)  # raises if wrong


def test_witness_key_string_uses_type_byte_0x04() -> None:
    encoded = WITNESSES[0].verifier().encode()
    name, hex_id, material = encoded.split("+", 2)
    assert (name, hex_id) == ("witness-7.example", WITNESSES[0].key_id.hex())
    assert base64.b64decode(material)[0] == 0x04
    assert parse_verifier_key(encoded) == WITNESSES[0].verifier()


def test_witness_refuses_checkpoint_that_shrinks_the_log() -> None:
    with pytest.raises(WitnessRefusal) as caught:
        cosign(witness_at(12), checkpoint_note(5), [], LOG, WITNESSES[0], NOW)
    assert caught.value.code is RefusalCode.SHRINK
    assert caught.value.message == (
        "checkpoint size 5 is smaller than the size 12 this witness already cosigned"
    )


def test_witness_refuses_a_different_root_at_the_size_it_cosigned() -> None:
    forked = MemoryTree.from_entries([*ENTRIES[:6], b"rewritten", *ENTRIES[7:]])
    with pytest.raises(WitnessRefusal) as caught:
        cosign(witness_at(12), checkpoint_note(12, forked), [], LOG, WITNESSES[0], NOW)
    assert caught.value.code is RefusalCode.FORK
    assert "checkpoint at size 12 has root " in caught.value.message
    assert f"but this witness cosigned root {TREE.root(12).hex()}" in caught.value.message


def test_witness_refuses_a_larger_checkpoint_that_rewrote_history() -> None:
    forked = MemoryTree.from_entries([*ENTRIES[:3], b"rewritten", *ENTRIES[4:]])
    with pytest.raises(WitnessRefusal) as caught:
        cosign(
            witness_at(8), checkpoint_note(15, forked), forked.consistency_proof(8, 15),
            LOG, WITNESSES[0], NOW,
        )  # fmt: skip
    assert caught.value.code is RefusalCode.BAD_PROOF
    # Size 8 is a power of two, so the proof starts from the witness's own root and the
    # rewrite shows up in the new root.
    assert "consistency proof from size 8 to size 15 leads to new root" in caught.value.message


def test_witness_refuses_a_proof_for_the_wrong_sizes() -> None:
    with pytest.raises(WitnessRefusal) as caught:
        cosign(
            witness_at(8), checkpoint_note(15), TREE.consistency_proof(7, 15),
            LOG, WITNESSES[0], NOW,
        )  # fmt: skip
    assert caught.value.code is RefusalCode.BAD_PROOF
    assert caught.value.message.startswith("consistency proof from size 8 to size 15 has")


def test_witness_refuses_a_checkpoint_of_another_log() -> None:
    other_key = generate_signer_key("other.example/log", seed=b"\x02" * 32)
    note = sign_checkpoint(Checkpoint("other.example/log", 3, TREE.root(3)), other_key)
    with pytest.raises(WitnessRefusal) as caught:
        cosign(witness_at(0), note, [], other_key.verifier(), WITNESSES[0], NOW)
    assert caught.value.code is RefusalCode.UNKNOWN_ORIGIN
    assert "'other.example/log' is not the log this witness follows" in caught.value.message


def test_witness_refuses_a_checkpoint_not_signed_by_the_log() -> None:
    impostor = generate_signer_key(ORIGIN, seed=b"\x03" * 32)
    note = sign_checkpoint(Checkpoint(ORIGIN, 12, TREE.root(12)), impostor)
    with pytest.raises(WitnessRefusal) as caught:
        cosign(witness_at(5), note, TREE.consistency_proof(5, 12), LOG, WITNESSES[0], NOW)
    assert caught.value.code is RefusalCode.BAD_SIGNATURE
    assert "no signature by a known key" in caught.value.message


def test_witness_refuses_a_forged_log_signature() -> None:
    note = checkpoint_note(12)
    parsed = parse_note(note)
    forged = NoteSignature(LOG.name, LOG.key_id, bytes(64))
    with pytest.raises(WitnessRefusal) as caught:
        cosign(
            witness_at(5), parsed.text + "\n" + forged.line(), TREE.consistency_proof(5, 12),
            LOG, WITNESSES[0], NOW,
        )  # fmt: skip
    assert caught.value.code is RefusalCode.BAD_SIGNATURE
    assert caught.value.message == f"signature by key '{LOG.label}' is not valid"


def test_witness_refuses_a_malformed_checkpoint() -> None:
    with pytest.raises(WitnessRefusal) as caught:
        cosign(witness_at(5), "not a note", [], LOG, WITNESSES[0], NOW)
    assert caught.value.code is RefusalCode.MALFORMED
    signed_garbage = sign_note(f"{ORIGIN}\n012\nxx\n", [LOG_KEY])
    with pytest.raises(WitnessRefusal) as caught:
        cosign(witness_at(5), signed_garbage, [], LOG, WITNESSES[0], NOW)
    assert caught.value.code is RefusalCode.MALFORMED
    assert caught.value.message == "checkpoint size '012' has leading zeros"


def test_witness_needs_a_cosignature_key() -> None:
    with pytest.raises(KeyFormatError, match="expected 0x04"):
        cosign(witness_at(5), checkpoint_note(5), [], LOG, LOG_KEY, NOW)


def _cosigned_by(size: int, witnesses: list[int]) -> str:
    note = checkpoint_note(size)
    signatures = [
        cosign(witness_at(size), note, [], LOG, WITNESSES[w], NOW + w).cosignature
        for w in witnesses
    ]
    return add_signatures(note, signatures)


VERIFIERS = [w.verifier() for w in WITNESSES]


def test_quorum_of_two_out_of_three_is_met_by_two_cosignatures() -> None:
    verified = verify_cosigned(_cosigned_by(9, [0, 2]), LOG, VERIFIERS, quorum=2)
    assert verified.checkpoint.size == 9
    assert [c.name for c in verified.cosigners] == ["witness-7.example", "witness-9.example"]


def test_quorum_of_three_is_not_met_by_two_cosignatures() -> None:
    with pytest.raises(VerificationError) as caught:
        verify_cosigned(_cosigned_by(9, [0, 2]), LOG, VERIFIERS, quorum=3)
    assert caught.value.message == (
        "checkpoint at size 9 is cosigned by 2 known witnesses ('witness-7.example', "
        "'witness-9.example'), fewer than the quorum of 3"
    )


def test_unknown_witnesses_do_not_count_towards_the_quorum() -> None:
    stranger = generate_witness_key("stranger.example", seed=b"\x44" * 32)
    note = checkpoint_note(9)
    extra = cosign(witness_at(9), note, [], LOG, stranger, NOW).cosignature
    cosigned = add_signatures(_cosigned_by(9, [0]), [extra])
    with pytest.raises(VerificationError, match="cosigned by 1 known witnesses"):
        verify_cosigned(cosigned, LOG, VERIFIERS, quorum=2)


def test_one_witness_key_listed_under_two_names_counts_once() -> None:
    # The cosigned message does not include the name, so one signature serves both names.
    twin = generate_witness_key("twin.example", seed=WITNESSES[0].seed)
    note = checkpoint_note(9)
    original = cosign(witness_at(9), note, [], LOG, WITNESSES[0], NOW).cosignature
    copied = NoteSignature(twin.name, twin.key_id, original.signature)
    cosigned = add_signatures(note, [original, copied])
    verifiers = [WITNESSES[0].verifier(), twin.verifier()]
    with pytest.raises(VerificationError, match="cosigned by 1 known witnesses"):
        verify_cosigned(cosigned, LOG, verifiers, quorum=2)


def test_cosignature_copied_from_another_checkpoint_is_rejected() -> None:
    stolen = cosign(witness_at(9), checkpoint_note(9), [], LOG, WITNESSES[1], NOW).cosignature
    note = add_signatures(_cosigned_by(10, [0]), [stolen])
    with pytest.raises(VerificationError) as caught:
        verify_cosigned(note, LOG, VERIFIERS, quorum=1)
    assert (
        caught.value.message == f"signature by key '{WITNESSES[1].verifier().label}' is not valid"
    )


def test_cosigned_checkpoint_still_needs_the_log_signature() -> None:
    body = Checkpoint(ORIGIN, 9, TREE.root(9)).body()
    lines = [sign_cosignature(w, body, NOW) for w in WITNESSES]
    note = body + "\n" + "".join(line.line() for line in lines)
    with pytest.raises(VerificationError) as caught:
        verify_cosigned(note, LOG, VERIFIERS, quorum=3)
    assert caught.value.message == f"checkpoint is not signed by the log key '{LOG.label}'"


def test_impossible_quorum_is_reported_as_such() -> None:
    with pytest.raises(VerificationError, match="quorum of 4 witnesses can never be met with 3"):
        verify_cosigned(_cosigned_by(9, [0, 1, 2]), LOG, VERIFIERS, quorum=4)
