"""`refused(code)`: the refusal tests' check that an action raised a DomainError with that code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mutualaid.domain.errors import DomainError


@contextmanager
def refused(
    code: str, error: type[Exception] = DomainError
) -> Iterator[pytest.ExceptionInfo[Exception]]:
    with pytest.raises(error) as caught:
        yield caught
    assert getattr(caught.value, "code", None) == code, repr(caught.value)
