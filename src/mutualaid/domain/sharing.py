"""Sharing rules: who pays how much of a period's total, exactly to the fen.

A period's total ``T`` (aid + fee − surplus) is split among the sharing members by one of six
rules. Every rule only chooses *weights*; the split itself is always `money.allocate` (largest
remainder), so Σ shares == T exactly, whatever the rule.

* **uniform** (Xiang Hu Bao): every member the same weight.
* **proportional**: weight = the member's expected loss ``E[X_i]`` (age-banded in practice: the
  probabilities of each payout for the member's age band).
* **conditional_mean**: the conditional mean risk sharing rule of Denuit & Dhaene (2012):
  weight = ``E[X_i | S = s]``, the member's expected loss *given* the realised aid ``s = Σ X_j``.

Each member's loss ``X_i`` in a period is discrete and independent of the others: a payout
``b_ik`` with probability ``p_ik`` for each outcome ``k`` (e.g. severe / mild), otherwise 0. The
Bernoulli case of the paper is one outcome. Then, exactly::

    E[X_i | S = s] = Σ_k b_ik · p_ik · P(S − X_i = s − b_ik) / P(S = s)

and Σ_i E[X_i | S = s] = s, E[E[X_i | S]] = E[X_i] (the rule is fair in expectation, like the
proportional one; it differs in how a bad period's excess is spread: towards the members whose
losses make such a total likely). Members of an age band are exchangeable, so the band-level
functions compute one value per band.

Reference: Denuit, M. & Dhaene, J. (2012), "Convex order and comonotonic conditional mean risk
sharing", Insurance: Mathematics and Economics 51(2), 265–270.

Everything here is exact (integers and `fractions.Fraction`); the simulator's version over
scenarios lives in `mutualaid.forecasts.rules`. Sharing by age band within a real period (band cuts,
the conditional mean of large pools on the payouts' lattice, the annual cap) is in
`sharing_bands.py` and `sharing_lattice.py`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import BASIS_POINTS, Fen, allocate
from mutualaid.domain.sharing_linear import (
    Excess,
    Moments,
    compensation_means,
    linear_means,
)

#: A probability distribution over integer fen amounts.
Distribution = Mapping[int, Fraction]


class SharingRule(StrEnum):
    UNIFORM = "uniform"
    PROPORTIONAL = "proportional"
    CONDITIONAL_MEAN = "conditional_mean"
    #: The linear family h_i = E[X_i] + α_i (s − E[S]) (`sharing_linear.py`): α_i = Var X_i / Var S
    #: (covariance-based), or α_i = 1/n (the excess over the expected aid split evenly).
    LINEAR_COVARIANCE = "linear_covariance"
    LINEAR_UNIFORM = "linear_uniform"
    #: Each band's realised aid compensated by every member with fair, least-variance ratios.
    COMPENSATION = "compensation"


#: The rules that weigh a member by their age band's risk (every one but the uniform rule).
BANDED_RULES = frozenset(SharingRule) - {SharingRule.UNIFORM}


@dataclass(frozen=True, slots=True)
class Outcome:
    """A payout of `amount_fen` that happens with `probability` in the period."""

    amount_fen: int
    probability: Fraction


@dataclass(frozen=True, slots=True)
class Risk:
    """One member's loss in a period: each outcome's payout with its probability, else nothing."""

    outcomes: tuple[Outcome, ...]

    def __post_init__(self) -> None:
        total = Fraction(0)
        for index, outcome in enumerate(self.outcomes):
            if isinstance(outcome.amount_fen, bool) or not isinstance(outcome.amount_fen, int):
                raise DomainError(
                    "invalid_risk",
                    "a payout is an int number of fen",
                    f"outcomes[{index}].amount_fen",
                )
            if outcome.amount_fen <= 0:
                raise DomainError(
                    "invalid_risk", "a payout is positive", f"outcomes[{index}].amount_fen"
                )
            if not 0 <= outcome.probability <= 1:
                raise DomainError(
                    "invalid_risk",
                    "a probability is between 0 and 1",
                    f"outcomes[{index}].probability",
                )
            total += outcome.probability
        if total > 1:
            raise DomainError(
                "invalid_risk", "the outcomes' probabilities add up to more than 1", "outcomes"
            )

    @classmethod
    def bernoulli(cls, amount_fen: int, probability: Fraction | int) -> Risk:
        return cls((Outcome(amount_fen, Fraction(probability)),))

    @property
    def expected_fen(self) -> Fraction:
        return sum((o.probability * o.amount_fen for o in self.outcomes), Fraction(0))

    @property
    def variance_fen2(self) -> Fraction:
        second = sum((o.probability * o.amount_fen**2 for o in self.outcomes), Fraction(0))
        return second - self.expected_fen**2

    def distribution(self) -> dict[int, Fraction]:
        """P(X = x) for every x with a positive probability (0 included)."""
        law: dict[int, Fraction] = {}
        nothing = 1 - sum((o.probability for o in self.outcomes), Fraction(0))
        if nothing:
            law[0] = nothing
        for outcome in self.outcomes:
            if outcome.probability:
                law[outcome.amount_fen] = (
                    law.get(outcome.amount_fen, Fraction(0)) + outcome.probability
                )
        return law


# --- exact distributions ---------------------------------------------------------------------


def convolve(first: Distribution, second: Distribution) -> dict[int, Fraction]:
    """The law of A + B for independent A ~ `first` and B ~ `second`."""
    law: dict[int, Fraction] = {}
    for a, pa in first.items():
        for b, pb in second.items():
            law[a + b] = law.get(a + b, Fraction(0)) + pa * pb
    return law


def power(law: Distribution, count: int) -> dict[int, Fraction]:
    """The law of the sum of `count` independent copies (square and multiply)."""
    if count < 0:
        raise ValueError("count must be non-negative")
    result: dict[int, Fraction] = {0: Fraction(1)}
    base = dict(law)
    while count:
        if count & 1:
            result = convolve(result, base)
        count >>= 1
        if count:
            base = convolve(base, base)
    return result


def distribution_of_sum(risks: Iterable[Risk]) -> dict[int, Fraction]:
    """The exact law of S = Σ X_i."""
    law: dict[int, Fraction] = {0: Fraction(1)}
    for risk in risks:
        law = convolve(law, risk.distribution())
    return law


def _conditional_mean(
    risk: Risk, others: Distribution, realised_fen: int, p_total: Fraction
) -> Fraction:
    """E[X | S = s] for a member with loss `risk` when the others' sum has law `others`."""
    numerator = sum(
        (
            o.amount_fen * o.probability * others.get(realised_fen - o.amount_fen, Fraction(0))
            for o in risk.outcomes
        ),
        Fraction(0),
    )
    return numerator / p_total


def _impossible(realised_fen: int) -> DomainError:
    return DomainError(
        "impossible_total",
        f"a total aid of {realised_fen} fen cannot arise from these risks",
        "realised_fen",
    )


def conditional_means(risks: Sequence[Risk], realised_fen: int) -> list[Fraction]:
    """Exactly E[X_i | S = s] for every member (Denuit & Dhaene 2012); Σ == s.

    Exponential in nothing but the support of S: meant for small pools (tests, audits, a family
    plan). For age bands, use `class_conditional_means`.
    """
    laws = [risk.distribution() for risk in risks]
    # prefix[i]: law of X_0 + … + X_{i−1}; suffix[i]: law of X_i + … + X_{n−1}.
    prefix: list[dict[int, Fraction]] = [{0: Fraction(1)}]
    for law in laws:
        prefix.append(convolve(prefix[-1], law))
    suffix: list[dict[int, Fraction]] = [{0: Fraction(1)}]
    for law in reversed(laws):
        suffix.append(convolve(suffix[-1], law))
    suffix.reverse()
    p_total = prefix[-1].get(realised_fen, Fraction(0))
    if not p_total:
        raise _impossible(realised_fen)
    means: list[Fraction] = []
    for index, risk in enumerate(risks):
        others = convolve(prefix[index], suffix[index + 1])
        means.append(_conditional_mean(risk, others, realised_fen, p_total))
    return means


# --- exchangeable classes (age bands) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiskClass:
    """`count` exchangeable members (an age band) who each carry `risk`."""

    key: str
    count: int
    risk: Risk

    def __post_init__(self) -> None:
        if self.count < 0:
            raise DomainError("invalid_risk", "a class has a non-negative count", "count")


def class_conditional_means(classes: Sequence[RiskClass], realised_fen: int) -> list[Fraction]:
    """E[X_i | S = s] for one member of each class (exact; members of a class are exchangeable)."""
    full = [power(c.risk.distribution(), c.count) for c in classes]
    total = {0: Fraction(1)}
    for law in full:
        total = convolve(total, law)
    p_total = total.get(realised_fen, Fraction(0))
    if not p_total:
        raise _impossible(realised_fen)
    means: list[Fraction] = []
    for index, risk_class in enumerate(classes):
        if risk_class.count == 0:
            means.append(Fraction(0))
            continue
        others = power(risk_class.risk.distribution(), risk_class.count - 1)
        for other_index, law in enumerate(full):
            if other_index != index:
                others = convolve(others, law)
        means.append(_conditional_mean(risk_class.risk, others, realised_fen, p_total))
    return means


# --- from weights to fen ------------------------------------------------------------------------


def integer_weights(values: Sequence[Fraction | int]) -> list[int]:
    """The same proportions as integers (numerators over the least common denominator)."""
    fractions = [Fraction(v) for v in values]
    if any(f < 0 for f in fractions):
        raise ValueError("weights must be non-negative")
    denominator = math.lcm(*(f.denominator for f in fractions)) if fractions else 1
    return [int(f * denominator) for f in fractions]


def allocate_by_weights(
    total: int, weights: Sequence[Fraction | int], tie_keys: Sequence[Hashable] | None
) -> list[Fen]:
    """`total` split by `weights` (made integers), largest remainder: Σ shares == total."""
    if total < 0:
        raise DomainError("invalid_total", "a total to share is never negative", "total")
    if total == 0:
        return [Fen(0)] * len(weights)
    integers = integer_weights(weights)
    if not any(integers):
        raise DomainError(
            "nothing_to_weigh", "no member has a positive weight under this rule", "weights"
        )
    return allocate(total, integers, tie_keys)


def uniform_shares(total: int, count: int, tie_keys: Sequence[Hashable] | None = None) -> list[Fen]:
    """Xiang Hu Bao's rule: the same for everyone (largest remainder for the last fen)."""
    return allocate_by_weights(total, [1] * count, tie_keys)


def proportional_shares(
    total: int, risks: Sequence[Risk], tie_keys: Sequence[Hashable] | None = None
) -> list[Fen]:
    """In proportion to each member's expected loss E[X_i]."""
    return allocate_by_weights(total, [risk.expected_fen for risk in risks], tie_keys)


def conditional_mean_shares(
    total: int, risks: Sequence[Risk], realised_fen: int, tie_keys: Sequence[Hashable] | None = None
) -> list[Fen]:
    """In proportion to E[X_i | S = s]: the total (aid + fee − surplus) scales the aid s."""
    if total == 0:
        return [Fen(0)] * len(risks)
    return allocate_by_weights(total, conditional_means(risks, realised_fen), tie_keys)


def shares(
    rule: SharingRule,
    total: int,
    risks: Sequence[Risk],
    realised_fen: int,
    tie_keys: Sequence[Hashable] | None = None,
    losses: Sequence[int] | None = None,
) -> list[Fen]:
    """Split `total` among the members whose period losses are `risks` by `rule` (the
    compensation rule also needs each member's realised loss, `losses`, Σ == realised)."""
    match rule:
        case SharingRule.UNIFORM:
            return uniform_shares(total, len(risks), tie_keys)
        case SharingRule.PROPORTIONAL:
            return proportional_shares(total, risks, tie_keys)
        case SharingRule.CONDITIONAL_MEAN:
            return conditional_mean_shares(total, risks, realised_fen, tie_keys)
        case _:
            if total == 0:
                return [Fen(0)] * len(risks)
            classes = [RiskClass(str(i), 1, risk) for i, risk in enumerate(risks)]
            return allocate_by_weights(
                total, class_weights(rule, classes, realised_fen, losses), tie_keys
            )


def class_moments(classes: Sequence[RiskClass]) -> list[Moments]:
    return [Moments(c.count, c.risk.expected_fen, c.risk.variance_fen2) for c in classes]


def class_weights(
    rule: SharingRule,
    classes: Sequence[RiskClass],
    realised_fen: int,
    class_aid_fen: Sequence[int] | None = None,
) -> list[Fraction]:
    """The weight of ONE member of each class under `rule` (`class_aid_fen`: the aid paid to each
    class's claimants, which only the compensation rule reads; None: `expected_split`)."""
    match rule:
        case SharingRule.UNIFORM:
            return [Fraction(1)] * len(classes)
        case SharingRule.PROPORTIONAL:
            return [c.risk.expected_fen for c in classes]
        case SharingRule.CONDITIONAL_MEAN:
            return class_conditional_means(classes, realised_fen)
        case SharingRule.LINEAR_COVARIANCE:
            return linear_means(class_moments(classes), realised_fen, Excess.COVARIANCE)
        case SharingRule.LINEAR_UNIFORM:
            return linear_means(class_moments(classes), realised_fen, Excess.UNIFORM)
        case SharingRule.COMPENSATION:
            if class_aid_fen is None:
                # Where the aid arose is unknown: as if each class's claims were its expected part.
                class_aid_fen = expected_split(classes, realised_fen)
            if sum(class_aid_fen) != realised_fen:
                raise ValueError("the aid of the classes' claimants does not add up to the aid")
            return compensation_means(class_moments(classes), class_aid_fen)


def expected_split(classes: Sequence[RiskClass], realised_fen: int) -> list[int]:
    """`realised_fen` split among the classes by their expected aid (largest remainder)."""
    weights = [c.count * c.risk.expected_fen for c in classes]
    if realised_fen <= 0 or not any(weights):
        return [realised_fen if i == 0 else 0 for i in range(len(classes))]
    return list(allocate_by_weights(realised_fen, weights, [c.key for c in classes]))


def class_totals(
    rule: SharingRule, total: int, classes: Sequence[RiskClass], realised_fen: int
) -> list[Fen]:
    """What each class pays in all (Σ == total), each member weighing `class_weights`."""
    weights = class_weights(rule, classes, realised_fen) if total else [Fraction(0)] * len(classes)
    return allocate_by_weights(
        total,
        [w * c.count for w, c in zip(weights, classes, strict=True)],
        [c.key for c in classes],
    )


# --- fairness -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FairnessRow:
    """One class (age band): what a member expects to receive and to pay per period.

    `contribution_fen[rule]` is the expected charge of one member under that rule, fee included,
    before rounding to the fen. `ratio(rule)` = contribution / (benefit × (1 + fee)): 1 is fair,
    above 1 the class subsidises the others, below 1 it is subsidised.
    """

    key: str
    count: int
    benefit_fen: Fraction
    contribution_fen: Mapping[SharingRule, Fraction]
    fee_bp: int

    def ratio(self, rule: SharingRule) -> Fraction | None:
        cost = self.benefit_fen * (BASIS_POINTS + self.fee_bp) / BASIS_POINTS
        return self.contribution_fen[rule] / cost if cost else None


def fairness_report(classes: Sequence[RiskClass], fee_bp: int) -> list[FairnessRow]:
    """Expected contribution against expected benefit for each class under each rule.

    With the fee a fixed share of the aid, the total is T = S·(1 + f), so a member's expected
    contribution is (1 + f)·E[S]/N under the uniform rule and (1 + f)·E[X_i] under every other:
    the proportional rule (by construction), the conditional mean rule (E[E[X_i | S]] = E[X_i]),
    the linear and compensation rules (fair by construction; a weight held at 0 in a period of
    far less aid than expected is left out of this expectation).
    """
    if fee_bp < 0:
        raise DomainError("invalid_fee", "a fee is never negative", "fee_bp")
    gross = Fraction(BASIS_POINTS + fee_bp, BASIS_POINTS)
    members = sum(c.count for c in classes)
    expected_total = sum((c.count * c.risk.expected_fen for c in classes), Fraction(0))
    uniform = gross * expected_total / members if members else Fraction(0)
    rows: list[FairnessRow] = []
    for risk_class in classes:
        benefit = risk_class.risk.expected_fen
        rows.append(
            FairnessRow(
                key=risk_class.key,
                count=risk_class.count,
                benefit_fen=benefit,
                contribution_fen={
                    rule: uniform if rule is SharingRule.UNIFORM else gross * benefit
                    for rule in SharingRule
                },
                fee_bp=fee_bp,
            )
        )
    return rows
