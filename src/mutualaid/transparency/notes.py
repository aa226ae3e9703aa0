"""C2SP signed notes (https://c2sp.org/signed-note), compatible with golang.org/x/mod/sumdb/note.

A signed note is a text ending in a newline, a blank line, then one or more lines
``— <key name> <base64(key ID (4 bytes) || signature)>``. Key IDs are
``SHA-256(name || "\\n" || signature type || public key)[:4]``.

Two signature types are understood:

* ``0x01`` Ed25519 over the note text (logs sign checkpoints with it);
* ``0x04`` timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature): the signature
  bytes are ``timestamp (u64 big-endian) || Ed25519 signature`` over
  ``"cosignature/v1\\ntime <timestamp>\\n" || note text``.

Key strings use the Go encodings: verifier ``<name>+<hex key ID>+<base64(type || public key)>``,
signer ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || 32-byte seed)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mutualaid.transparency.errors import KeyFormatError, VerificationError

SIGNATURE_TYPE_ED25519 = 0x01
SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04
KNOWN_SIGNATURE_TYPES = (SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_COSIGNATURE_V1)

#: The spec requires accepting at least 16; golang.org/x/mod/sumdb/note stops at 100.
MAX_SIGNATURES = 100

ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
TIMESTAMP_SIZE = 8
KEY_ID_SIZE = 4

SIGNATURE_PREFIX = "— "  # U+2014 EM DASH, then a space
COSIGNATURE_HEADER = "cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1


def is_valid_key_name(name: str) -> bool:
    """Non-empty, without Unicode spaces or '+', and without control characters.

    '+' separates the fields of key strings and a space ends the name in a signature line; control
    characters cannot appear in a note at all.
    """
    return name != "" and "+" not in name and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || "\\n" || signature type || public key)[:4]."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    ).digest()[:KEY_ID_SIZE]


def cosignature_message(note_text: str, timestamp: int) -> bytes:
    """What a witness signs (tlog-cosignature v1): header, time line, then the note text."""
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{note_text}".encode()


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key that checks signatures by one named signer."""

    name: str
    key_id: bytes
    signature_type: int
    public_key: bytes

    def __post_init__(self) -> None:
        _check_key_fields(self.name, self.signature_type, self.public_key, "public key")
        if self.key_id != key_id(self.name, self.signature_type, self.public_key):
            raise KeyFormatError(f"key ID {self.key_id.hex()} does not match key '{self.name}'")

    @property
    def label(self) -> str:
        """``name+keyid``, how messages refer to a key."""
        return f"{self.name}+{self.key_id.hex()}"

    def encode(self) -> str:
        material = bytes([self.signature_type]) + self.public_key
        return f"{self.label}+{base64.b64encode(material).decode('ascii')}"

    def verify(self, note_text: str, signature: bytes) -> bool:
        """Whether `signature` (the bytes after the key ID) is valid over `note_text`."""
        public_key = Ed25519PublicKey.from_public_bytes(self.public_key)
        text = note_text.encode("utf-8")
        if self.signature_type == SIGNATURE_TYPE_COSIGNATURE_V1:
            if len(signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
                return False
            timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
            if timestamp > _MAX_TIMESTAMP:
                return False
            message = cosignature_message(note_text, timestamp)
            signature = signature[TIMESTAMP_SIZE:]
        else:
            if len(signature) != ED25519_SIGNATURE_SIZE:
                return False
            message = text
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SignerKey:
    """A private key that signs as a named signer. Its repr never shows the seed."""

    name: str
    key_id: bytes
    signature_type: int
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_fields(self.name, self.signature_type, self.seed, "private key seed")
        if self.key_id != key_id(self.name, self.signature_type, self._public_key()):
            raise KeyFormatError(
                f"key ID {self.key_id.hex()} does not match the public key of '{self.name}'"
            )

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"

    def encode(self) -> str:
        material = bytes([self.signature_type]) + self.seed
        return f"PRIVATE+KEY+{self.label}+{base64.b64encode(material).decode('ascii')}"

    def verifier(self) -> VerifierKey:
        return VerifierKey(self.name, self.key_id, self.signature_type, self._public_key())

    def sign_raw(self, message: bytes) -> bytes:
        """A bare Ed25519 signature; callers frame the message for the signature type."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    def _public_key(self) -> bytes:
        return (
            Ed25519PrivateKey.from_private_bytes(self.seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )


def generate_signer_key(
    name: str, *, signature_type: int = SIGNATURE_TYPE_ED25519, seed: bytes | None = None
) -> SignerKey:
    """A new Ed25519 signer key; pass `seed` (32 bytes) only for reproducible tests and demos."""
    if seed is None:
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
    _check_key_fields(name, signature_type, seed, "private key seed")
    public_key = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return SignerKey(name, key_id(name, signature_type, public_key), signature_type, seed)


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse ``<name>+<hex key ID>+<base64(type || public key)>``."""
    # Base64 may itself contain '+', so only the first two separate fields (as Go's chop does).
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError(
            f"verifier key must be <name>+<key ID>+<key>, got {len(parts)} '+'-separated parts"
        )
    name, hex_id, encoded = parts
    signature_type, material = _parse_key_material(name, hex_id, encoded, "verifier key")
    # Validate in the order a person would fix things: name, type, length, then the ID.
    _check_key_fields(name, signature_type, material, "public key")
    expected_id = key_id(name, signature_type, material)
    if bytes.fromhex(hex_id) != expected_id:
        raise KeyFormatError(
            f"verifier key '{name}' declares key ID {hex_id} but its key hashes to "
            f"{expected_id.hex()}"
        )
    return VerifierKey(name, expected_id, signature_type, material)


def parse_signer_key(text: str) -> SignerKey:
    """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>``."""
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise KeyFormatError("signer key must be PRIVATE+KEY+<name>+<key ID>+<key>")
    _, _, name, hex_id, encoded = parts
    signature_type, material = _parse_key_material(name, hex_id, encoded, "signer key")
    _check_key_fields(name, signature_type, material, "private key seed")
    signer = generate_signer_key(name, signature_type=signature_type, seed=material)
    if bytes.fromhex(hex_id) != signer.key_id:
        raise KeyFormatError(
            f"signer key '{name}' declares key ID {hex_id} but its public key hashes to "
            f"{signer.key_id.hex()}"
        )
    return signer


def _parse_key_material(name: str, hex_id: str, encoded: str, what: str) -> tuple[int, bytes]:
    if not is_valid_key_name(name):
        raise KeyFormatError(f"{what} name {name!r} is empty or contains a space, '+' or control")
    if not re.fullmatch(r"[0-9a-fA-F]{8}", hex_id):
        raise KeyFormatError(f"{what} '{name}' key ID {hex_id!r} is not 8 hex digits")
    raw = _strict_b64decode(encoded)
    if raw is None or not raw:
        raise KeyFormatError(f"{what} '{name}' key material is not valid base64")
    return raw[0], raw[1:]


def _check_key_fields(name: str, signature_type: int, material: bytes, what: str) -> None:
    if not is_valid_key_name(name):
        raise KeyFormatError(f"key name {name!r} is empty or contains a space, '+' or control")
    if signature_type not in KNOWN_SIGNATURE_TYPES:
        raise KeyFormatError(
            f"key '{name}' has signature type 0x{signature_type:02x}; only 0x01 (Ed25519) and "
            "0x04 (Ed25519 cosignature/v1) are supported"
        )
    if len(material) != ED25519_KEY_SIZE:
        raise KeyFormatError(
            f"key '{name}' {what} is {len(material)} bytes, expected {ED25519_KEY_SIZE}"
        )


# --------------------------------------------------------------------------------------------
# Notes


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: who (name, key ID) and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def label(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"

    @property
    def timestamp(self) -> int | None:
        """The cosignature time, if this is (shaped like) a cosignature/v1 signature."""
        if len(self.signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            return None
        return int.from_bytes(self.signature[:TIMESTAMP_SIZE], "big")

    def line(self) -> str:
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A note's text and signature lines, parsed but not verified."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> str:
        return self.text + "\n" + "".join(signature.line() for signature in self.signatures)


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose signatures by known keys all verified (and at least one did)."""

    text: str
    verified: tuple[NoteSignature, ...]
    #: Signatures by keys the caller does not know; they prove nothing and are kept for display.
    unknown: tuple[NoteSignature, ...]

    def verified_by(self, verifier: VerifierKey) -> NoteSignature | None:
        for signature in self.verified:
            if signature.name == verifier.name and signature.key_id == verifier.key_id:
                return signature
        return None


def check_note_text(text: str) -> None:
    """A note text must be non-empty, end with a newline and hold no other control character."""
    if not text.endswith("\n"):
        raise VerificationError("note text must end with a newline")
    _check_characters(text, "note text")


def sign_note(text: str, signers: Sequence[SignerKey]) -> str:
    """Sign `text` with Ed25519 (type 0x01) keys; returns the signed note."""
    check_note_text(text)
    if not signers:
        raise KeyFormatError("a note needs at least one signer")
    signatures: list[NoteSignature] = []
    for signer in signers:
        if signer.signature_type != SIGNATURE_TYPE_ED25519:
            raise KeyFormatError(
                f"key '{signer.label}' has signature type 0x{signer.signature_type:02x}; "
                "sign_note makes only Ed25519 (0x01) signatures, witnesses use "
                "witnesses.cosign"
            )
        signatures.append(
            NoteSignature(signer.name, signer.key_id, signer.sign_raw(text.encode("utf-8")))
        )
    return Note(text, tuple(signatures)).encode()


def add_signatures(note: str | bytes, signatures: Sequence[NoteSignature]) -> str:
    """Append signature lines (e.g. cosignatures) to a signed note.

    A new signature replaces an existing one by the same key, as in golang.org/x/mod's Sign, so a
    witness's fresh cosignature supersedes its older one.
    """
    parsed = parse_note(note)
    replaced = {(signature.name, signature.key_id) for signature in signatures}
    kept = tuple(s for s in parsed.signatures if (s.name, s.key_id) not in replaced)
    return Note(parsed.text, kept + tuple(signatures)).encode()


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signature lines, checking syntax only."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as error:
            raise VerificationError(f"note is not valid UTF-8 (byte {error.start})") from None
    _check_characters(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("note has no blank line separating the text from signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise VerificationError("note has no signature lines after the blank line")
    if not block.endswith("\n"):
        raise VerificationError("note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(
            f"note has {len(lines)} signature lines, more than the limit of {MAX_SIGNATURES}"
        )
    signatures = tuple(_parse_signature_line(line, number) for number, line in enumerate(lines, 1))
    return Note(text, signatures)


def open_note(note: str | bytes, verifiers: Sequence[VerifierKey]) -> OpenedNote:
    """Parse a note and verify it against known keys, following the signed-note rules.

    Signatures by unknown keys (name and key ID not both matching a known key) are ignored; a
    signature by a known key must verify or the whole note is rejected; at least one known key
    must have signed.
    """
    parsed = parse_note(note)
    known: dict[tuple[str, bytes], VerifierKey] = {}
    ambiguous: set[tuple[str, bytes]] = set()
    for candidate in verifiers:
        identity = (candidate.name, candidate.key_id)
        if identity in known and known[identity] != candidate:
            ambiguous.add(identity)
        known[identity] = candidate

    verified: list[NoteSignature] = []
    unknown: list[NoteSignature] = []
    for signature in parsed.signatures:
        identity = (signature.name, signature.key_id)
        verifier = known.get(identity)
        if verifier is None:
            if signature not in unknown:
                unknown.append(signature)
            continue
        if identity in ambiguous:
            raise VerificationError(f"two different known keys are named '{signature.label}'")
        if not verifier.verify(parsed.text, signature.signature):
            raise VerificationError(f"signature by key '{signature.label}' is not valid")
        # One verified signature per key counts; repeats add nothing.
        if all((s.name, s.key_id) != identity for s in verified):
            verified.append(signature)
    if not verified:
        present = ", ".join(f"'{s.label}'" for s in parsed.signatures)
        expected = ", ".join(f"'{v.label}'" for v in verifiers) or "none"
        raise VerificationError(
            f"note has no signature by a known key (signed by {present}; known keys: {expected})"
        )
    return OpenedNote(parsed.text, tuple(verified), tuple(unknown))


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise VerificationError(
            f"note signature line {number} does not start with an em dash and a space"
        )
    name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not is_valid_key_name(name):
        raise VerificationError(f"note signature line {number} has an invalid key name {name!r}")
    raw = _strict_b64decode(encoded)
    if raw is None:
        raise VerificationError(f"note signature line {number} ('{name}') is not valid base64")
    if len(raw) < KEY_ID_SIZE + 1:
        raise VerificationError(
            f"note signature line {number} ('{name}') has {len(raw)} bytes, too short for a "
            "key ID and a signature"
        )
    return NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def _check_characters(text: str, what: str) -> None:
    for position, ch in enumerate(text):
        if ord(ch) < 0x20 and ch != "\n":
            raise VerificationError(
                f"{what} contains the control character U+{ord(ch):04X} at position {position}"
            )
        if 0xD800 <= ord(ch) <= 0xDFFF:
            # Only reachable from a str built in Python: it could never be encoded as UTF-8.
            raise VerificationError(f"{what} contains a lone surrogate at position {position}")


def _strict_b64decode(encoded: str) -> bytes | None:
    """Standard base64 with padding, rejecting anything that would not re-encode identically."""
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    if base64.b64encode(raw).decode("ascii") != encoded:
        return None
    return raw
