"""`refused(code)`: the refusal tests' check that an action raised a DomainError with that code."""

from __future__ import annotations

import json
import os
import sys
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
    record = os.environ.get("RECORD_REFUSALS")
    if record:
        frame = sys._getframe(2)
        with open(record, "a") as out:
            line = {
                "file": frame.f_code.co_filename,
                "line": frame.f_lineno,
                "code": getattr(caught.value, "code", None),
                "message": str(caught.value),
            }
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        return
    assert getattr(caught.value, "code", None) == code, repr(caught.value)
