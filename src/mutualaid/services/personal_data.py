"""Personal data at rest: keyed hashes for uniqueness, authenticated encryption for read-back.

Keys come from a versioned key ring (MUTUALAID_SECRET_KEYS; docs/operations.md "Key rotation"):
new hashes and ciphertexts are made under the current (highest) version, and every stored one
records the version it was made under (`persons.key_version`, `staff_second_factors.key_version`),
so it is read with that version's keys while `mutualaid keys rotate` moves it to the current one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mutualaid.domain.errors import DomainError


def derive_key(secret_key: str, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose (HKDF-SHA256): identity hashing, personal data, evidence."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )


def key_version_retired(version: int) -> DomainError:
    return DomainError(
        "key_version_retired",
        f"data is under key version {version}, which is no longer in the key ring; put it back "
        "in MUTUALAID_SECRET_KEYS and run `mutualaid keys rotate`",
        details={"key_version": version},
    )


@dataclass(frozen=True, slots=True)
class _VersionKeys:
    secret: str
    hash_key: bytes
    aead: AESGCM


class PersonalDataProtector:
    """Derives separate keys from each ring secret so one purpose's key never serves another."""

    def __init__(self, secret_keys: str | Mapping[int, str]) -> None:
        ring = {1: secret_keys} if isinstance(secret_keys, str) else dict(secret_keys)
        if not ring:
            raise ValueError("the key ring is empty")
        self._secrets = dict(sorted(ring.items()))
        self.current_version = max(self._secrets)
        self._keys = {
            version: _VersionKeys(
                secret,
                derive_key(secret, b"mutualaid identity hash v1"),
                AESGCM(derive_key(secret, b"mutualaid personal data encryption v1")),
            )
            for version, secret in self._secrets.items()
        }
        current = self._keys[self.current_version]
        self._secret_key = current.secret
        self._hash_key = current.hash_key
        self._aead = current.aead

    def __reduce__(self) -> tuple[type[PersonalDataProtector], tuple[dict[int, str]]]:
        # Picklable so a worker process (bulk import) can hash and encrypt with the same keys.
        return (PersonalDataProtector, (self._secrets,))

    @property
    def versions(self) -> tuple[int, ...]:
        """The live key versions, oldest first."""
        return tuple(self._keys)

    @cached_property
    def secrets(self) -> Mapping[int, str]:
        """Each live version's secret (for the evidence store's keys)."""
        return dict(self._secrets)

    def _version(self, version: int) -> _VersionKeys:
        keys = self._keys.get(version)
        if keys is None:
            raise key_version_retired(version)
        return keys

    def aead_for(self, purpose: bytes, version: int | None = None) -> AESGCM:
        """Authenticated encryption under a key of its own (e.g. staff TOTP secrets)."""
        secret = self._version(self.current_version if version is None else version).secret
        return AESGCM(derive_key(secret, purpose))

    def identity_hash(self, identity_number: str, version: int | None = None) -> str:
        """The keyed hash under `version` (default: the current one)."""
        key = self._hash_key if version is None else self._version(version).hash_key
        return hmac.digest(key, identity_number.encode(), "sha256").hex()

    def identity_hashes(self, identity_number: str) -> list[str]:
        """The keyed hash under every live version, current first: what a look-up matches while
        a rotation is under way."""
        return [self.identity_hash(identity_number, version) for version in reversed(self.versions)]

    def encrypt(self, plaintext: str, version: int | None = None) -> bytes:
        aead = self._aead if version is None else self._version(version).aead
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, ciphertext: bytes, version: int | None = None) -> str:
        """Decrypt a ciphertext made under `version` (default: the current one)."""
        aead = self._aead if version is None else self._version(version).aead
        return aead.decrypt(ciphertext[:12], ciphertext[12:], None).decode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
