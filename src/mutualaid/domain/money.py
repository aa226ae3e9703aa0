"""Money as integer fen. No float ever touches an amount; Decimal only parses and formats text."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from decimal import Decimal, InvalidOperation
from typing import NewType

from mutualaid.domain.errors import DomainError

Fen = NewType("Fen", int)

FEN_PER_YUAN = 100
BASIS_POINTS = 10_000


def fen(amount: int) -> Fen:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"money must be an int number of fen, got {type(amount).__name__}")
    return Fen(amount)


def parse_yuan(text: str, field: str = "amount") -> Fen:
    """Parse "1234.56" (yuan, at most two decimals) into fen."""
    cleaned = text.strip().replace(",", "").removeprefix("¥")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise DomainError("invalid_amount", f"{text!r} is not an amount in yuan", field) from None
    if not value.is_finite():
        raise DomainError("invalid_amount", f"{text!r} is not an amount in yuan", field)
    scaled = value * FEN_PER_YUAN
    if scaled != scaled.to_integral_value():
        raise DomainError("invalid_amount", f"{text!r} has more than two decimals", field)
    return Fen(int(scaled))


def format_yuan(amount: int, *, symbol: bool = False, grouping: bool = False) -> str:
    """Format fen as yuan text: 123456 -> "1234.56" (or "¥1,234.56")."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), FEN_PER_YUAN)
    whole_text = f"{whole:,}" if grouping else str(whole)
    return f"{sign}{'¥' if symbol else ''}{whole_text}.{cents:02d}"


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding toward +infinity (shares are rounded UP to the fen)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return -((-numerator) // denominator)


def apply_basis_points(amount: int, rate_bp: int) -> Fen:
    """`amount × rate_bp / 10,000`, rounded half up to the fen (a fee is never a fraction of a fen)."""
    return Fen((amount * rate_bp * 2 + BASIS_POINTS) // (2 * BASIS_POINTS))


def allocate(
    total: int, weights: Sequence[int], tie_keys: Sequence[Hashable] | None = None
) -> list[Fen]:
    """Split `total` fen in proportion to non-negative integer `weights` (largest remainder method).

    Every split in mutualaid goes through here so that Σ parts == total exactly. Remainders are
    broken by the largest fractional part, then by `tie_keys` (ascending), then by position, so the
    result is deterministic and anyone can recompute it.
    """
    if total < 0:
        raise ValueError("total must be non-negative")
    if not weights:
        if total:
            raise ValueError("cannot allocate a non-zero total over no weights")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    keys: Sequence[Hashable] = tie_keys if tie_keys is not None else range(len(weights))
    if len(keys) != len(weights):
        raise ValueError("tie_keys and weights differ in length")
    floors: list[int] = []
    remainders: list[tuple[int, int]] = []
    for position, weight in enumerate(weights):
        share, remainder = divmod(total * weight, weight_sum)
        floors.append(share)
        remainders.append((remainder, position))
    leftover = total - sum(floors)
    # Sort by largest remainder first; ties by tie key then position (both ascending).
    order = sorted(remainders, key=lambda rp: (-rp[0], keys[rp[1]], rp[1]))
    for _, position in order[:leftover]:
        floors[position] += 1
    return [Fen(part) for part in floors]
