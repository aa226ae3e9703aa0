"""Accounts, roles and who may do what."""

from __future__ import annotations

import re
from enum import StrEnum

from mutualaid.domain.errors import DomainError, Forbidden


class Role(StrEnum):
    MEMBER = "member"
    REVIEWER = "reviewer"
    INVESTIGATOR = "investigator"
    OPERATOR = "operator"
    AUDITOR = "auditor"


STAFF_ROLES = frozenset({Role.REVIEWER, Role.INVESTIGATOR, Role.OPERATOR, Role.AUDITOR})

_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
MIN_PASSWORD_LENGTH = 8
#: The longest name an account may show (its column's length).
MAX_DISPLAY_NAME_LENGTH = 100


def normalise_phone(raw: str, field: str = "phone") -> str:
    phone = raw.strip().replace(" ", "").replace("-", "")
    if not _PHONE.match(phone):
        raise DomainError("invalid_phone", "a phone number is 6 to 15 digits", field)
    return phone


def check_password_strength(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            "weak_password",
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
            field,
            details={"min_length": MIN_PASSWORD_LENGTH},
        )


def require_role(role: Role, *allowed: Role) -> None:
    if role not in allowed:
        names = ", ".join(sorted(allowed))
        raise Forbidden(
            "forbidden",
            f"this needs the role {names}; you are {role}",
            details={"variant": "role", "role": str(role)},
        )
