"""The pluggable credit/risk check a plan may require at entry (Xiang Hu Bao used a Sesame score).

A deployment names its check with MUTUALAID_CREDIT_CHECK="package.module:factory"; the factory
returns an object with `score(identity_hash, birth_on) -> int | None` (None: no score known, which
does not refuse). Without a setting, no check runs.
"""

from __future__ import annotations

import importlib
from datetime import date
from typing import Protocol


class CreditCheck(Protocol):
    def score(self, identity_hash: str, birth_on: date) -> int | None: ...


class SimulatedCreditBureau:
    """For the demo and tests only: a stable pseudo-score in 550..949 derived from the identity hash."""

    def score(self, identity_hash: str, birth_on: date) -> int | None:
        return 550 + int(identity_hash[:8], 16) % 400


def load_credit_check(dotted_path: str | None) -> CreditCheck | None:
    if not dotted_path:
        return None
    module_name, _, attribute = dotted_path.partition(":")
    if not attribute:
        raise ValueError(
            f"MUTUALAID_CREDIT_CHECK must look like 'module:factory', got {dotted_path!r}"
        )
    factory = getattr(importlib.import_module(module_name), attribute)
    check: CreditCheck = factory()
    return check
