"""Personal data at rest: keyed hashes for uniqueness, authenticated encryption for read-back."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret_key: str, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose (HKDF-SHA256): identity hashing, personal data, evidence."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )


class PersonalDataProtector:
    """Derives separate keys from the deployment secret so one purpose's key never serves another."""

    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key
        self._hash_key = derive_key(secret_key, b"mutualaid identity hash v1")
        self._aead = AESGCM(derive_key(secret_key, b"mutualaid personal data encryption v1"))

    def __reduce__(self) -> tuple[type[PersonalDataProtector], tuple[str]]:
        # Picklable so a worker process (bulk import) can hash and encrypt with the same keys.
        return (PersonalDataProtector, (self._secret_key,))

    def aead_for(self, purpose: bytes) -> AESGCM:
        """Authenticated encryption under a key of its own (e.g. staff TOTP secrets)."""
        return AESGCM(derive_key(self._secret_key, purpose))

    def identity_hash(self, identity_number: str) -> str:
        return hmac.digest(self._hash_key, identity_number.encode(), "sha256").hex()

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, ciphertext: bytes) -> str:
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None).decode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
