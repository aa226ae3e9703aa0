"""The linear risk-sharing family and the compensation rule, on exact fractions.

Both only need the first two moments of each member's loss (means ``μ_i = E[X_i]`` and variances
``σ_i² = Var X_i``; members are independent), so they are exact at any pool size, in rational
arithmetic, and cost one pass over the bands.

**Linear rules** (Denuit & Robert 2021; Dhaene, Robert, Cheung & Denuit 2024)::

    h_i(s) = μ_i + α_i · (s − E[S]),   Σ_i α_i = 1

so Σ_i h_i(s) = s and E[h_i(S)] = μ_i (fair in expectation). The family is chosen by α:

* ``linear_covariance``: α_i = Cov(X_i, S) / Var S = σ_i² / Var S — the best linear approximation
  (least squares) of the conditional mean E[X_i | S]: a bad period's excess falls on the members
  whose losses vary most.
* ``linear_uniform``: α_i = 1/n — each member pays their expected loss, the excess (or the saving)
  over the expected aid is split evenly.
* (α_i = μ_i / E[S] gives h_i = μ_i · s / E[S]: the ``proportional`` rule.)

**Compensation rule** (peer-to-peer risk sharing, Feng, Liu & Taylor 2023): member ``i`` pays
``h_i = Σ_j a_ij X_j``, a part of every claimant's realised loss, with ratios that compensate each
loss in full (Σ_i a_ij = 1), are actuarially fair (E[h_i] = μ_i) and, among those, minimise the
total variance Σ_i Var h_i. With independent losses the Lagrange conditions give the explicit
ratios (for members of band a paying towards a loss in band b; Q = Σ_b n_b μ_b² / σ_b²)::

    a_ab = 1/n + (μ_a − E[S]/n) · μ_b / (Q · σ_b²)

so h_a = Σ_b a_ab S_b depends on *where* the aid arose (S_b: the aid paid to band b's claimants),
not only on its total: for rare Bernoulli claims of payout b_b, μ_b / σ_b² ≈ 1/b_b and
h_a ≈ s/n + (μ_a − E[S]/n) · (claims this period / claims expected).

A rule can ask a member for a negative amount when the realised aid is far below its expectation
(α_i (s − E[S]) < −μ_i); members never receive money from a period, so such weights are 0 and the
others' weights are rescaled when the need is split (`allocate_by_weights`). With Var S = 0 (or
Q = 0) the linear and compensation rules split the excess evenly.

References:
Denuit, M. & Robert, C. Y. (2021), "Risk sharing under the dominant peer-to-peer property and
casualty insurance business models", Risk Management and Insurance Review 24(2), 181–205.
Dhaene, J., Robert, C. Y., Cheung, K. C. & Denuit, M. (2024), "Axiomatic characterizations of some
simple risk-sharing rules", arXiv:2411.06240.
Feng, R., Liu, C. & Taylor, S. (2023), "Peer-to-peer risk sharing with an application to flood
risk pooling", Annals of Operations Research 321, 813–842.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction


class Excess(StrEnum):
    """How a linear rule splits the aid's excess over its expectation (the α of the family)."""

    COVARIANCE = "covariance"
    UNIFORM = "uniform"


@dataclass(frozen=True, slots=True)
class Moments:
    """`count` members whose loss in the period has mean `mean` and variance `variance` (fen²)."""

    count: int
    mean: Fraction
    variance: Fraction


def _members(classes: Sequence[Moments]) -> int:
    return sum(c.count for c in classes)


def linear_means(classes: Sequence[Moments], realised_fen: int, excess: Excess) -> list[Fraction]:
    """h(s) = μ + α (s − E[S]) for one member of each class (never below 0)."""
    members = _members(classes)
    if not members:
        return [Fraction(0)] * len(classes)
    expected = sum((c.count * c.mean for c in classes), Fraction(0))
    spread = sum((c.count * c.variance for c in classes), Fraction(0))
    excess_fen = realised_fen - expected
    result = []
    for risk_class in classes:
        alpha = (
            risk_class.variance / spread
            if excess is Excess.COVARIANCE and spread
            else Fraction(1, members)
        )
        result.append(max(Fraction(0), risk_class.mean + alpha * excess_fen))
    return result


def compensation_ratios(classes: Sequence[Moments]) -> list[list[Fraction]]:
    """a[a][b]: the part of a loss in class b that one member of class a pays (see the module)."""
    members = _members(classes)
    if not members:
        return [[Fraction(0)] * len(classes) for _ in classes]
    average = sum((c.count * c.mean for c in classes), Fraction(0)) / members
    tilt = [c.mean / c.variance if c.variance else Fraction(0) for c in classes]
    q = sum((c.count * c.mean * t for c, t in zip(classes, tilt, strict=True)), Fraction(0))
    return [
        [Fraction(1, members) + ((a.mean - average) * t / q if q else Fraction(0)) for t in tilt]
        for a in classes
    ]


def compensation_means(classes: Sequence[Moments], class_aid_fen: Sequence[int]) -> list[Fraction]:
    """h_a = Σ_b a_ab S_b for one member of each class, S_b the aid paid to class b's claimants
    (never below 0)."""
    ratios = compensation_ratios(classes)
    return [
        max(
            Fraction(0),
            sum((r * aid for r, aid in zip(row, class_aid_fen, strict=True)), Fraction(0)),
        )
        for row in ratios
    ]
