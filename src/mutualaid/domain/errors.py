"""The one error type the domain raises; adapters map it to HTTP 4xx, a form message or an exit code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """A rule refused an action.

    `code` is stable and machine-readable (clients switch on it), `message` is for people,
    `field` names the input that caused it (dotted path, e.g. ``health_answers.tumour``).
    """

    #: HTTP status an adapter should answer with; subclasses narrow it.
    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = dict(details or {})

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, field={self.field!r})"


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """The request is valid but collides with existing state (already a member, key reused)."""

    status = 409


class Forbidden(DomainError):
    status = 403


class Unauthenticated(DomainError):
    status = 401


class TooManyRequests(DomainError):
    """Over a rate limit; `details["retry_after_s"]` says when to try again (Retry-After)."""

    status = 429
