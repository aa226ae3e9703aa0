"""The errors the transparency package raises.

Everything that checks data received from elsewhere (a proof, a note, a checkpoint, a bundle)
fails with `VerificationError`, whose message says exactly which check failed, so that an auditor
running `mutualaid verify` learns *what* is wrong, not just that something is.
"""

from __future__ import annotations

from enum import StrEnum


class TransparencyError(Exception):
    """Base class: catch this to handle every failure of the transparency package."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class VerificationError(TransparencyError):
    """A proof, signature or format check on untrusted data failed."""


class TreeError(TransparencyError):
    """A Merkle tree was asked for something it cannot answer (index beyond size, missing node)."""


class KeyFormatError(TransparencyError):
    """A key string or key name is malformed or internally inconsistent."""


class LeafError(TransparencyError):
    """A leaf record's fields do not match its declared type's schema."""


class RefusalCode(StrEnum):
    """Why a witness refused to cosign: stable and machine-readable (APIs switch on it)."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_ORIGIN = "unknown_origin"
    SHRINK = "shrink"
    FORK = "fork"
    BAD_PROOF = "bad_proof"


class WitnessRefusal(TransparencyError):
    """A witness will not cosign a checkpoint; `code` says why, `message` gives the detail."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __repr__(self) -> str:
        return f"WitnessRefusal({self.code.value!r}, {self.message!r})"
