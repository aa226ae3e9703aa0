"""Log signing key rotation: a new key announced on the log itself, signed by the old key.

The announcement is a ``log_key`` leaf: the old and the new verifier key, the time, and the old
key's Ed25519 signature over ``announcement_text`` (old key, new key and time, one per line). A
verifier who trusts only the log's original key reads the log from its first leaf: each
announcement must be signed by the key trusted at that point, and then the new key is trusted
instead. A checkpoint must be signed by the key trusted after the last announcement among its
leaves. An announcement signed by any other key (a forgery, or a fork of the chain) fails.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mutualaid.transparency.errors import KeyFormatError, LeafError, VerificationError
from mutualaid.transparency.leaves import canonical_leaf, decode_leaf
from mutualaid.transparency.notes import (
    SIGNATURE_TYPE_ED25519,
    SignerKey,
    VerifierKey,
    parse_verifier_key,
)

ANNOUNCEMENT_HEADER = "mutualaid log key rotation v1\n"
_MARKER = b'"type":"log_key"'


def announcement_text(old_key: VerifierKey, new_key: VerifierKey, at: int) -> str:
    """What the old key signs: the old key, the new key and the time (unix seconds)."""
    return f"{ANNOUNCEMENT_HEADER}{old_key.encode()}\n{new_key.encode()}\n{at}\n"


def key_announcement_leaf(old_signer: SignerKey, new_key: VerifierKey, at: int) -> bytes:
    """The canonical ``log_key`` leaf announcing `new_key`, signed by `old_signer`."""
    old_key = old_signer.verifier()
    if new_key.name != old_key.name:
        raise KeyFormatError(
            f"the new log key is named '{new_key.name}', the log is '{old_key.name}': a "
            "checkpoint's origin is its key's name"
        )
    if new_key.signature_type != SIGNATURE_TYPE_ED25519:
        raise KeyFormatError("the new log key is not an Ed25519 (0x01) note key")
    if new_key == old_key:
        raise KeyFormatError("the new log key is the key in use")
    signature = old_signer.sign_raw(announcement_text(old_key, new_key, at).encode())
    return canonical_leaf(
        "log_key",
        {
            "old_key": old_key.encode(),
            "new_key": new_key.encode(),
            "signature": base64.b64encode(signature).decode("ascii"),
            "at": at,
        },
    )


@dataclass(frozen=True, slots=True)
class KeyChange:
    leaf_index: int
    old_key: VerifierKey
    new_key: VerifierKey
    at: int


def follow_key_chain(
    entries: Iterable[bytes], original: VerifierKey
) -> tuple[VerifierKey, tuple[KeyChange, ...]]:
    """The key trusted after reading `entries` (the log's leaves, from leaf 0), starting from
    `original`, and every change on the way. Raises VerificationError on an announcement that
    the key trusted at that point did not sign."""
    trusted = original
    changes: list[KeyChange] = []
    for index, data in enumerate(entries):
        if _MARKER not in data:
            continue
        try:
            leaf = decode_leaf(data)
        except LeafError:
            continue  # not a canonical leaf: it announces nothing
        if leaf.type != "log_key":
            continue
        try:
            old_key = parse_verifier_key(str(leaf.fields["old_key"]))
            new_key = parse_verifier_key(str(leaf.fields["new_key"]))
        except KeyFormatError as error:
            raise VerificationError(
                f"log key announcement at leaf {index}: {error.message}"
            ) from None
        at = int(leaf.fields["at"])
        signature = base64.b64decode(str(leaf.fields["signature"]))
        if old_key != trusted:
            raise VerificationError(
                f"log key announcement at leaf {index} names '{old_key.label}' as the old key, "
                f"but the key trusted there is '{trusted.label}'"
            )
        if not trusted.verify(announcement_text(old_key, new_key, at), signature):
            raise VerificationError(
                f"log key announcement at leaf {index} is not signed by '{trusted.label}': "
                "a forged announcement"
            )
        if new_key.name != trusted.name:
            raise VerificationError(
                f"log key announcement at leaf {index} names a key for '{new_key.name}', not "
                f"for the log '{trusted.name}'"
            )
        changes.append(KeyChange(index, old_key, new_key, at))
        trusted = new_key
    return trusted, tuple(changes)


def chain_keys(original: VerifierKey, changes: Sequence[KeyChange]) -> tuple[VerifierKey, ...]:
    """Every key of the chain, oldest first."""
    return (original, *(change.new_key for change in changes))
