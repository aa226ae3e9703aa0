"""Witness cosigning (https://c2sp.org/tlog-cosignature, Ed25519 cosignature/v1, type 0x04).

A witness remembers, per log, the largest checkpoint it has cosigned. It cosigns a new checkpoint
only if the log signed it and a consistency proof shows it extends the remembered one; so two
different histories (a fork, a split view) can never both gather a quorum of cosignatures.
Clients then require a quorum of known witnesses before trusting a checkpoint.

Pure logic: the caller loads `WitnessState`, calls `cosign`, and stores the returned state and
cosignature atomically (a witness that forgot a state could be tricked into cosigning a fork).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mutualaid.transparency.checkpoints import Checkpoint, parse_checkpoint
from mutualaid.transparency.errors import (
    KeyFormatError,
    RefusalCode,
    VerificationError,
    WitnessRefusal,
)
from mutualaid.transparency.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from mutualaid.transparency.notes import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    NoteSignature,
    SignerKey,
    VerifierKey,
    cosignature_message,
    generate_signer_key,
    open_note,
    parse_note,
)

_MAX_TIMESTAMP = 2**63 - 1


@dataclass(frozen=True, slots=True)
class WitnessState:
    """The latest checkpoint a witness cosigned for one log."""

    origin: str
    size: int
    root_hash: bytes

    def __post_init__(self) -> None:
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"witness state root is {len(self.root_hash)} bytes, expected 32")
        if self.size < 0:
            raise ValueError(f"witness state size {self.size} is negative")

    @classmethod
    def initial(cls, origin: str) -> WitnessState:
        """A witness that has seen nothing yet: the empty tree is a prefix of every log."""
        return cls(origin, 0, EMPTY_ROOT)


@dataclass(frozen=True, slots=True)
class CosignResult:
    state: WitnessState
    checkpoint: Checkpoint
    cosignature: NoteSignature

    @property
    def line(self) -> str:
        """The signature line to append to the checkpoint note."""
        return self.cosignature.line()


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness that cosigned a checkpoint, and when (POSIX seconds)."""

    name: str
    key_id: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class CosignedCheckpoint:
    checkpoint: Checkpoint
    cosigners: tuple[Cosigner, ...]


def generate_witness_key(name: str, *, seed: bytes | None = None) -> SignerKey:
    """A new witness key (signature type 0x04)."""
    return generate_signer_key(name, signature_type=SIGNATURE_TYPE_COSIGNATURE_V1, seed=seed)


def sign_cosignature(witness_signer: SignerKey, note_text: str, timestamp: int) -> NoteSignature:
    """A cosignature/v1 over a checkpoint note text; no checks (that is `cosign`'s job)."""
    if witness_signer.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
        raise KeyFormatError(
            f"witness key '{witness_signer.label}' has signature type "
            f"0x{witness_signer.signature_type:02x}, expected 0x04 (cosignature/v1)"
        )
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    signature = witness_signer.sign_raw(cosignature_message(note_text, timestamp))
    return NoteSignature(
        witness_signer.name, witness_signer.key_id, timestamp.to_bytes(8, "big") + signature
    )


def cosign(
    state: WitnessState,
    checkpoint_note: str | bytes,
    consistency_proof: Sequence[bytes],
    log_verifier: VerifierKey,
    witness_signer: SignerKey,
    now_unix: int,
) -> CosignResult:
    """Cosign a log's new checkpoint if it consistently extends the last one cosigned.

    `consistency_proof` goes from `state.size` to the new checkpoint's size. Raises
    `WitnessRefusal` with a code saying why it will not sign.
    """
    try:
        parse_note(checkpoint_note)
    except VerificationError as error:
        raise WitnessRefusal(RefusalCode.MALFORMED, error.message) from None
    try:
        opened = open_note(checkpoint_note, [log_verifier])
    except VerificationError as error:
        raise WitnessRefusal(RefusalCode.BAD_SIGNATURE, error.message) from None
    try:
        checkpoint = parse_checkpoint(opened.text)
    except VerificationError as error:
        raise WitnessRefusal(RefusalCode.MALFORMED, error.message) from None

    if checkpoint.origin != state.origin:
        raise WitnessRefusal(
            RefusalCode.UNKNOWN_ORIGIN,
            f"checkpoint origin '{checkpoint.origin}' is not the log this witness follows "
            f"('{state.origin}')",
        )
    if checkpoint.size < state.size:
        raise WitnessRefusal(
            RefusalCode.SHRINK,
            f"checkpoint size {checkpoint.size} is smaller than the size {state.size} this "
            "witness already cosigned",
        )
    if checkpoint.size == state.size and checkpoint.root_hash != state.root_hash:
        raise WitnessRefusal(
            RefusalCode.FORK,
            f"checkpoint at size {checkpoint.size} has root {checkpoint.root_hash.hex()}, but "
            f"this witness cosigned root {state.root_hash.hex()} at that size",
        )
    try:
        verify_consistency(
            old_size=state.size,
            new_size=checkpoint.size,
            old_root=state.root_hash,
            new_root=checkpoint.root_hash,
            proof=consistency_proof,
        )
    except VerificationError as error:
        raise WitnessRefusal(RefusalCode.BAD_PROOF, error.message) from None

    cosignature = sign_cosignature(witness_signer, opened.text, now_unix)
    new_state = WitnessState(state.origin, checkpoint.size, checkpoint.root_hash)
    return CosignResult(new_state, checkpoint, cosignature)


def verify_cosigned(
    note: str | bytes,
    log_verifier: VerifierKey,
    witness_verifiers: Sequence[VerifierKey],
    quorum: int,
    *,
    expected_origin: str | None = None,
) -> CosignedCheckpoint:
    """Check the log's signature and that at least `quorum` distinct known witnesses cosigned."""
    if quorum < 0:
        raise ValueError(f"quorum {quorum} is negative")
    if quorum > len(witness_verifiers):
        raise VerificationError(
            f"quorum of {quorum} witnesses can never be met with {len(witness_verifiers)} "
            "witness keys"
        )
    for witness in witness_verifiers:
        if witness.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
            raise KeyFormatError(
                f"witness key '{witness.label}' has signature type "
                f"0x{witness.signature_type:02x}, expected 0x04 (cosignature/v1)"
            )
    opened = open_note(note, [log_verifier, *witness_verifiers])
    if opened.verified_by(log_verifier) is None:
        raise VerificationError(f"checkpoint is not signed by the log key '{log_verifier.label}'")
    checkpoint = parse_checkpoint(opened.text)
    origin = log_verifier.name if expected_origin is None else expected_origin
    if checkpoint.origin != origin:
        raise VerificationError(
            f"checkpoint origin '{checkpoint.origin}' does not match expected origin '{origin}'"
        )

    cosigners: list[Cosigner] = []
    # The cosigned message does not include the witness name, so one key listed under two names
    # could be counted twice from a single signature; count public keys instead.
    counted_keys: set[bytes] = set()
    for witness in witness_verifiers:
        signature = opened.verified_by(witness)
        if signature is None or witness.public_key in counted_keys:
            continue
        counted_keys.add(witness.public_key)
        timestamp = signature.timestamp
        assert timestamp is not None  # a verified cosignature/v1 always carries one
        cosigners.append(Cosigner(witness.name, witness.key_id, timestamp))
    if len(cosigners) < quorum:
        names = ", ".join(f"'{c.name}'" for c in cosigners) or "none"
        raise VerificationError(
            f"checkpoint at size {checkpoint.size} is cosigned by {len(cosigners)} known "
            f"witnesses ({names}), fewer than the quorum of {quorum}"
        )
    return CosignedCheckpoint(checkpoint, tuple(cosigners))
