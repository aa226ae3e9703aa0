"""The conditional mean rule E[X_i | S = s] at any pool size, on the payouts' lattice.

Every payout of a period is a multiple of g = gcd(payouts), so S/g is an integer and the realised
aid s is the lattice point K = s/g. Only the law of S on 0..K (and of S minus one member on
K − b/g) is needed, so the cost depends on K and on the number of bands, never on how many members
a band holds: a band's n-fold sum is one complex power per frequency of its Fourier transform.

Underflow is the difficulty: with a hundred thousand members P(S = s) is like e^-1000. So the laws
are first tilted (Esscher) by θ chosen so that the tilted total has mean K. The tilt multiplies
P(S = x) by e^{θx}/M(θ) for every x and cancels out of the ratio below, exactly:

    E[X_i | S = s] = Σ_k b_k · p̃_k · P̃(S − X_i = s − b_k) / P̃(S = s)

where p̃ and P̃ are the tilted laws. Under the tilt, the probabilities needed sit at the centre of
the distribution (not in its far tail), so double precision FFTs carry about twelve correct digits.
The FFT length covers K plus forty standard deviations of the tilted total, beyond which the
wrapped-around mass is below e^-800 of what is read.

The result differs from the rational `sharing.class_conditional_means` by rounding only (a test
holds it within 10^-9 of the aid); the means are rounded to twelve significant digits so that the
digits that decide the fen split do not depend on the last bit of a platform's FFT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.errors import DomainError
from mutualaid.domain.sharing import RiskClass

#: Standard deviations of the tilted total covered beyond K by the FFT length.
TAIL_SPREAD = 40
#: A tilted probability below this at K is taken for a total the risks cannot produce: the tilt puts
#: an attainable K near the centre, where its probability is at least about 1/(the spread), while
#: the FFT's rounding leaves about 10^-16 at an unattainable one.
IMPOSSIBLE_BELOW = 1e-10
#: The means are rounded to this many significant digits (a band's mean can be a ten-thousandth of
#: a fen in a pool of millions, so the rounding is relative, not to a fixed part of a fen).
MEAN_DIGITS = 12


def _impossible(realised_fen: int) -> DomainError:
    return DomainError(
        "impossible_total",
        f"a total aid of {realised_fen} fen cannot arise from these risks",
        "realised_fen",
    )


def _lattice_laws(classes: Sequence[RiskClass], step: int) -> list[NDArray[np.float64]]:
    """Each class's single-member law on 0, g, 2g, … as probabilities (index = amount / g)."""
    laws = []
    for risk_class in classes:
        distribution = risk_class.risk.distribution()
        law = np.zeros(max(distribution) // step + 1)
        for amount, probability in distribution.items():
            law[amount // step] = float(probability)
        laws.append(law)
    return laws


def _tilted(law: NDArray[np.float64], theta: float) -> NDArray[np.float64]:
    """The law tilted by e^{θj}, normalised (computed in logs: θ may be large)."""
    with np.errstate(divide="ignore"):
        logs = np.log(law) + theta * np.arange(law.size)
    logs -= logs.max()
    weights = np.exp(logs)
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _moments(law: NDArray[np.float64]) -> tuple[float, float]:
    points = np.arange(law.size)
    mean = float((law * points).sum())
    return mean, float((law * (points - mean) ** 2).sum())


def _tilt_to(laws: Sequence[NDArray[np.float64]], counts: Sequence[int], target: int) -> float:
    """θ such that the tilted total has mean ≈ `target` (bisection; any θ near it would do: the
    tilt only decides where the FFT is accurate, not the result). The classes' laws are stacked
    in one table (zero padded) so that each step is a few array operations."""
    table = np.zeros((len(laws), max(law.size for law in laws)))
    for row, law in enumerate(laws):
        table[row, : law.size] = law
    with np.errstate(divide="ignore"):
        logs = np.log(table)
    points = np.arange(table.shape[1], dtype=np.float64)
    members = np.asarray(counts, dtype=np.float64)

    def mean_total(theta: float) -> float:
        exponents = logs + theta * points
        weights = np.exp(exponents - exponents.max(axis=1, keepdims=True))
        return float(members @ ((weights @ points) / weights.sum(axis=1)))

    low, high = -1.0, 1.0
    while mean_total(low) > target and low > -1e4:
        low *= 2
    while mean_total(high) < target and high < 1e4:
        high *= 2
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if mean_total(middle) < target else (low, middle)
    return (low + high) / 2


def lattice_conditional_means(classes: Sequence[RiskClass], realised_fen: int) -> list[Fraction]:
    """E[X_i | S = s] for one member of each class, at any class size (see the module's doc)."""
    sharing = [c for c in classes if c.count]
    amounts = [a for c in sharing for a, p in c.risk.distribution().items() if a and p]
    if realised_fen <= 0 or not amounts:
        raise _impossible(realised_fen)
    step = math.gcd(*amounts)
    target, remainder = divmod(realised_fen, step)
    laws = _lattice_laws(sharing, step)
    counts = [c.count for c in sharing]
    largest = sum(n * (law.size - 1) for law, n in zip(laws, counts, strict=True))
    if remainder or target > largest:
        raise _impossible(realised_fen)
    theta = _tilt_to(laws, counts, target)
    tilted = [_tilted(law, theta) for law in laws]
    variance = sum(n * _moments(law)[1] for law, n in zip(tilted, counts, strict=True))
    widest = max(law.size for law in laws)
    needed = min(largest, target + math.ceil(TAIL_SPREAD * math.sqrt(variance)) + 2 * widest) + 1
    length = 1 << (needed - 1).bit_length()
    # log of each class's transform; a zero stays a (very) negative number so that the power of a
    # class with one member (n − 1 = 0) is 1, not 0 × −inf.
    logs = []
    for law in tilted:
        transform = np.fft.rfft(law, n=length)
        logs.append(np.log(np.where(transform == 0, 1e-300, transform)))
    whole = sum((n * log for log, n in zip(logs, counts, strict=True)), np.zeros_like(logs[0]))
    p_total = float(np.fft.irfft(np.exp(whole), n=length)[target])
    if not p_total > IMPOSSIBLE_BELOW:
        raise _impossible(realised_fen)
    by_class: dict[int, Fraction] = {}
    for index, (law, log) in enumerate(zip(tilted, logs, strict=True)):
        others = np.fft.irfft(np.exp(whole - log), n=length)
        numerator = sum(
            float(j * step * law[j] * max(others[target - j], 0.0))
            for j in range(1, law.size)
            if law[j] > 0 and target - j >= 0
        )
        by_class[index] = Fraction(Decimal(f"{numerator / p_total:.{MEAN_DIGITS}g}"))
    means = iter(by_class[i] for i in range(len(sharing)))
    return [next(means) if c.count else Fraction(0) for c in classes]
