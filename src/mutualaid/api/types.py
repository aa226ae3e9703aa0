"""Types shared by every route's parameters, so a bound is written once.

An integer beyond a 64-bit column (ids, cursors, amounts, log indexes) used to reach the database or
the log code and fail there with a 500; `Int64` refuses it as a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]
