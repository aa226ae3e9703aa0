"""C2SP tlog checkpoints (https://c2sp.org/tlog-checkpoint): a log's signed tree head.

The note text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` followed by optional,
non-empty extension lines; it is signed as a C2SP signed note by the log's key, whose name is the
origin. Parsing is strict: a checkpoint that could be written two ways would let two parties
disagree about what was signed.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from mutualaid.transparency.errors import KeyFormatError, VerificationError
from mutualaid.transparency.merkle import HASH_SIZE
from mutualaid.transparency.notes import (
    OpenedNote,
    SignerKey,
    VerifierKey,
    check_note_text,
    open_note,
    sign_note,
)

MAX_TREE_SIZE = 2**64 - 1  # sizes are uint64 in every tlog implementation
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError(f"checkpoint origin {self.origin!r} must be one non-empty line")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size {self.size!r} is not a uint64")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash is {len(self.root_hash)} bytes, expected 32")
        for extension in self.extensions:
            if not extension or "\n" in extension:
                raise ValueError(f"checkpoint extension {extension!r} must be one non-empty line")

    def body(self) -> str:
        """The note text: what the log signs and witnesses cosign."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (not the signatures), rejecting every non-canonical form."""
    try:
        check_note_text(text)
    except VerificationError as error:
        raise VerificationError(f"checkpoint {error.message}") from None
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise VerificationError(
            f"checkpoint has {len(lines)} lines, expected at least 3 (origin, size, root hash)"
        )
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise VerificationError("checkpoint origin line is empty")
    if not _DECIMAL.fullmatch(size_text):
        if re.fullmatch(r"[0-9]+", size_text):
            raise VerificationError(f"checkpoint size {size_text!r} has leading zeros")
        raise VerificationError(f"checkpoint size {size_text!r} is not a decimal number")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise VerificationError(f"checkpoint size {size_text} does not fit in 64 bits")
    root_hash = _parse_root_hash(root_text)
    for number, extension in enumerate(extensions, 1):
        if not extension:
            raise VerificationError(f"checkpoint extension line {number} is empty")
    return Checkpoint(origin, size, root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, log_signer: SignerKey) -> str:
    """The signed checkpoint note. The log's key name must be its origin, so clients need one
    configured name per log."""
    if log_signer.name != checkpoint.origin:
        raise KeyFormatError(
            f"log key '{log_signer.name}' cannot sign a checkpoint for origin "
            f"'{checkpoint.origin}': the key name must be the origin"
        )
    return sign_note(checkpoint.body(), [log_signer])


@dataclass(frozen=True, slots=True)
class OpenedCheckpoint:
    checkpoint: Checkpoint
    note: OpenedNote


def open_checkpoint(
    note: str | bytes,
    log_verifier: VerifierKey,
    *,
    expected_origin: str | None = None,
    other_verifiers: tuple[VerifierKey, ...] = (),
) -> OpenedCheckpoint:
    """Verify the log's signature on a checkpoint note and parse it.

    `expected_origin` defaults to the log key's name. `other_verifiers` (witness keys) are
    checked too when their signatures are present, per the signed-note rules.
    """
    opened = open_note(note, [log_verifier, *other_verifiers])
    if opened.verified_by(log_verifier) is None:
        raise VerificationError(f"checkpoint is not signed by the log key '{log_verifier.label}'")
    checkpoint = parse_checkpoint(opened.text)
    origin = log_verifier.name if expected_origin is None else expected_origin
    if checkpoint.origin != origin:
        raise VerificationError(
            f"checkpoint origin '{checkpoint.origin}' does not match expected origin '{origin}'"
        )
    return OpenedCheckpoint(checkpoint, opened)


def _parse_root_hash(root_text: str) -> bytes:
    try:
        root_hash = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"checkpoint root hash {root_text!r} is not valid base64") from None
    if len(root_hash) != HASH_SIZE:
        raise VerificationError(
            f"checkpoint root hash is {len(root_hash)} bytes, expected {HASH_SIZE}"
        )
    if base64.b64encode(root_hash).decode("ascii") != root_text:
        raise VerificationError(f"checkpoint root hash {root_text!r} is not canonical base64")
    return root_hash
