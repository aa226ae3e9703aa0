"""The sharing rules of `mutualaid.domain.sharing`, vectorised over scenarios and age bands.

The simulator works with age bands of millions of members, where the exact conditional mean
(a convolution over the whole pool) is out of reach. For a large pool it is, to O(1/n),

    E[X_i | S = s]  ≈  E_θ[X_i] = Σ_k b_k p_k e^{θ b_k} / (1 − Σ_k p_k + Σ_k p_k e^{θ b_k})

where θ solves Σ_i E_θ[X_i] = s (the Esscher transform that makes the realised total the mean;
the ratio P(S − X_i = s − b) / P(S = s) tends to e^{θ b} / E[e^{θ X_i}] by the local limit theorem).
At s = E[S], θ = 0 and the rule is the proportional one; a bad period's excess falls more on the
members with the larger payouts. The test suite checks this against the exact rule on small pools.

The linear and compensation rules (`mutualaid.domain.sharing_linear`) need only means and
variances, vectorised here the same way.

Weights are returned as int64 numbers up to 2**WEIGHT_BITS so that the charges stay integer fen.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.sharing import SharingRule

WEIGHT_BITS = 20
_NEWTON_STEPS = 80
_TOLERANCE = 1e-12


def tilted_means(
    counts: NDArray[np.int64],
    probabilities: NDArray[np.float64],
    payouts: NDArray[np.int64],
    realised: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Per scenario and band, the Esscher-tilted mean loss of one member (in fen).

    counts (B, A): members per band; probabilities (A, T) and payouts (A, T): each tier's chance
    in the period and its payout; realised (B,): the period's aid. Where the realised aid is not
    positive the weights are the plain expected losses.
    """
    scale = float(max(int(payouts.max(initial=0)), 1))
    x = payouts.astype(np.float64) / scale  # (A, T), in (0, 1]
    p = probabilities.astype(np.float64)
    n = counts.astype(np.float64)  # (B, A)
    target = realised.astype(np.float64) / scale  # (B,)
    maximum = (n * x.max(axis=1)[None, :]).sum(axis=1)  # the largest total the pool can reach
    # Targets at or beyond the bounds are solved at the bounds (θ large): clip them inside.
    target = np.clip(target, 1e-12, np.maximum(maximum * (1 - 1e-9), 1e-12))
    low = np.full(target.shape, -200.0)
    high = np.full(target.shape, 200.0)
    theta = np.zeros(target.shape)
    for _ in range(_NEWTON_STEPS):
        # Stable: exponents are shifted by max(θ·x, 0) per band.
        exponent = theta[:, None, None] * x[None, :, :]  # (B, A, T)
        shift = np.maximum(exponent.max(axis=2), 0.0)  # (B, A)
        weighted = p[None] * np.exp(exponent - shift[:, :, None])
        nothing = (1.0 - p.sum(axis=1))[None, :] * np.exp(-shift)
        mass = nothing + weighted.sum(axis=2)
        mean = (weighted * x[None]).sum(axis=2) / mass
        second = (weighted * x[None] ** 2).sum(axis=2) / mass
        total = (n * mean).sum(axis=1)
        if np.all(np.abs(total - target) <= _TOLERANCE * target):
            break
        slope = (n * (second - mean**2)).sum(axis=1)
        too_high = total > target
        high = np.where(too_high, theta, high)
        low = np.where(too_high, low, theta)
        step = theta - (total - target) / np.where(slope > 0, slope, np.inf)
        bisect = (step <= low) | (step >= high) | ~np.isfinite(step)
        theta = np.where(bisect, (low + high) / 2, step)
    exponent = theta[:, None, None] * x[None, :, :]
    shift = np.maximum(exponent.max(axis=2), 0.0)
    weighted = p[None] * np.exp(exponent - shift[:, :, None])
    nothing = (1.0 - p.sum(axis=1))[None, :] * np.exp(-shift)
    mean = (weighted * x[None]).sum(axis=2) / (nothing + weighted.sum(axis=2))
    plain = (p * x).sum(axis=1)[None, :]
    return np.asarray(np.where((realised > 0)[:, None], mean, plain) * scale, dtype=np.float64)


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
            return quantise(tilted_means(counts, probabilities, payouts, realised))
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
