"""Second factors for staff: who needs one, time steps, and recovery codes (pure rules)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from mutualaid.domain.accounts import STAFF_ROLES, Role

#: RFC 6238 defaults, what every authenticator app uses.
STEP_SECONDS = 30
CODE_DIGITS = 6
#: One step either side accepted: phone clocks drift and people type slowly.
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
ISSUER = "mutualaid"
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def needs_second_factor(role: Role) -> bool:
    """Staff open medical evidence and release payouts; members do not."""
    return role in STAFF_ROLES


def time_step(at: datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def normalise_code(raw: str) -> str:
    return raw.strip().replace(" ", "").replace("-", "").lower()


def is_totp_shaped(code: str) -> bool:
    return len(code) == CODE_DIGITS and code.isdigit()


def new_recovery_codes() -> list[str]:
    """Ten codes like ``k3m9-x2pq-7hvd``: 60 bits each, typed once, never shown again."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def recovery_hash(code: str) -> str:
    # 60 random bits need no slow hash: nobody can guess them from a plain SHA-256.
    return hashlib.sha256(f"mutualaid recovery {normalise_code(code)}".encode()).hexdigest()
