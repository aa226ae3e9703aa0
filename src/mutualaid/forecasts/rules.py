"""The sharing rules of `mutualaid.domain.sharing`, vectorised over scenarios and age bands.

The conditional mean E[X_i | S = s] is the exact rule of period close (issue 19): each scenario's
period calls `domain.sharing_bands.banded_weights`, which works on the payouts' lattice
(`domain.sharing_lattice`) at a cost that does not grow with the members of a band. There is no
large-pool (Esscher) approximation any more: it was off by a factor of three in low-frequency
pools. Identical (members per band, aid) rows are computed once.

The linear and compensation rules (`mutualaid.domain.sharing_linear`) need only means and
variances, vectorised here over scenarios.

Weights are returned as int64 numbers up to 2**WEIGHT_BITS so that the charges stay integer fen.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.sharing import Outcome, Risk, RiskClass, SharingRule
from mutualaid.domain.sharing_bands import banded_weights

WEIGHT_BITS = 20


def exact_means(
    counts: NDArray[np.int64],
    probabilities: NDArray[np.float64],
    payouts: NDArray[np.int64],
    realised: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Per scenario and band, E[X_i | S = s] of one member (in fen), exactly as period close
    computes it (`domain.sharing_bands.banded_weights`).

    counts (B, A): members per band; probabilities (A, T) and payouts (A, T): each tier's chance
    in the period and its payout; realised (B,): the period's aid. Where the realised aid is not
    positive the weights are the plain expected losses; where the bands' risks cannot produce it,
    the covariance-based linear rule (as at close). Scenarios with the same members per band and
    the same aid (aid is a multiple of the payouts' lattice, so they repeat) are computed once.
    """
    # A band's tiers are exclusive outcomes of one period: chances that add up to more than 1
    # (clipped rates of an extreme model) are scaled down to 1, as a Risk requires.
    chances = probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), 1.0)
    risks = [
        Risk(
            tuple(
                Outcome(int(payouts[a, k]), _fraction(chances[a, k]))
                for k in range(payouts.shape[1])
                if payouts[a, k] > 0 and chances[a, k] > 0
            )
        )
        for a in range(payouts.shape[0])
    ]
    done: dict[tuple[bytes, int], list[float]] = {}
    means = np.empty(counts.shape, dtype=np.float64)
    for row, (members, aid) in enumerate(zip(counts, realised.tolist(), strict=True)):
        key = (members.tobytes(), int(aid))
        if key not in done:
            classes = [
                RiskClass(str(a), int(n), risk)
                for a, (n, risk) in enumerate(zip(members.tolist(), risks, strict=True))
            ]
            weights = banded_weights(SharingRule.CONDITIONAL_MEAN, classes, int(aid))
            done[key] = [float(weight) for weight in weights]
        means[row] = done[key]
    return means


def _fraction(probability: float) -> Fraction:
    """A float probability as a fraction (12 digits, as `outputs.expected_fairness`): exact enough,
    and small enough for the rational rule of small pools."""
    return min(Fraction(float(probability)).limit_denominator(10**12), Fraction(1))


def quantise(weights: NDArray[np.float64]) -> NDArray[np.int64]:
    """Float weights (B, A) as integers, scaled so each row's largest is 2**WEIGHT_BITS; any
    positive weight stays at least 1."""
    top = weights.max(axis=1, keepdims=True)
    scaled = np.where(top > 0, weights / np.where(top > 0, top, 1.0), 0.0) * (1 << WEIGHT_BITS)
    integer = np.rint(scaled).astype(np.int64)
    return np.where((weights > 0) & (integer == 0), 1, integer)


def band_weights(
    rule: SharingRule,
    counts: NDArray[np.int64],
    probabilities: NDArray[np.float64],
    payouts: NDArray[np.int64],
    realised: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Integer weights (B, A) of one member of each band under `rule`."""
    scenarios, bands = counts.shape
    match rule:
        case SharingRule.UNIFORM:
            return np.ones((scenarios, bands), dtype=np.int64)
        case SharingRule.PROPORTIONAL:
            expected = (probabilities * payouts).sum(axis=1)
            return quantise(np.broadcast_to(expected, (scenarios, bands)))
        case SharingRule.CONDITIONAL_MEAN:
            return quantise(exact_means(counts, probabilities, payouts, realised))
        case SharingRule.LINEAR_COVARIANCE | SharingRule.LINEAR_UNIFORM:
            return quantise(linear_means(rule, counts, probabilities, payouts, realised))
        case SharingRule.COMPENSATION:
            return quantise(compensation_means(counts, probabilities, payouts, realised))


def _moments(
    probabilities: NDArray[np.float64], payouts: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and variance (A,) of one member's loss in each band."""
    x = payouts.astype(np.float64)
    mean = (probabilities * x).sum(axis=1)
    return mean, (probabilities * x**2).sum(axis=1) - mean**2


def linear_means(
    rule: SharingRule,
    counts: NDArray[np.int64],
    probabilities: NDArray[np.float64],
    payouts: NDArray[np.int64],
    realised: NDArray[np.int64],
) -> NDArray[np.float64]:
    """`domain.sharing_linear.linear_means` per scenario (B, A): μ + α (s − E[S]), at least 0."""
    mean, variance = _moments(probabilities, payouts)
    n = counts.astype(np.float64)
    members = np.maximum(n.sum(axis=1, keepdims=True), 1.0)
    spread = (n * variance[None, :]).sum(axis=1, keepdims=True)
    uniform = np.broadcast_to(1.0 / members, n.shape)
    alpha = (
        np.where(spread > 0, variance[None, :] / np.where(spread > 0, spread, 1.0), uniform)
        if rule is SharingRule.LINEAR_COVARIANCE
        else uniform
    )
    excess = realised.astype(np.float64)[:, None] - (n * mean[None, :]).sum(axis=1, keepdims=True)
    return np.asarray(np.maximum(mean[None, :] + alpha * excess, 0.0), dtype=np.float64)


def compensation_means(
    counts: NDArray[np.int64],
    probabilities: NDArray[np.float64],
    payouts: NDArray[np.int64],
    realised: NDArray[np.int64],
) -> NDArray[np.float64]:
    """`domain.sharing_linear.compensation_means` per scenario (B, A), the simulator not knowing
    in which band the aid arose: each band's aid is taken as its expected part of the total."""
    mean, variance = _moments(probabilities, payouts)
    n = counts.astype(np.float64)
    members = np.maximum(n.sum(axis=1, keepdims=True), 1.0)
    expected = n * mean[None, :]
    total = expected.sum(axis=1, keepdims=True)
    aid = realised.astype(np.float64)[:, None] * expected / np.where(total > 0, total, 1.0)
    tilt = np.where(variance > 0, mean / np.where(variance > 0, variance, 1.0), 0.0)
    q = (expected * tilt[None, :]).sum(axis=1, keepdims=True)
    # h_a = Σ_b (1/n + (μ_a − E[S]/n) t_b / Q) S_b
    weighted = (aid * tilt[None, :]).sum(axis=1, keepdims=True) / np.where(q > 0, q, np.inf)
    h = aid.sum(axis=1, keepdims=True) / members + (mean[None, :] - total / members) * weighted
    return np.asarray(np.maximum(h, 0.0), dtype=np.float64)
