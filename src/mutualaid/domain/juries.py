"""Member juries: who may serve, how a panel is drawn so anyone can recompute it, how votes count."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from mutualaid.domain.calendars import age_in_years
from mutualaid.domain.memberships import MembershipState
from mutualaid.domain.plans import JuryRules


class JuryOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    TOO_FEW_VOTES = "too_few_votes"


@dataclass(frozen=True, slots=True)
class Tally:
    approve: int
    reject: int

    @property
    def votes(self) -> int:
        return self.approve + self.reject


def decide(tally: Tally, rules: JuryRules, seats: int | None = None) -> JuryOutcome:
    """Apply the plan's rule to a closed vote. Recusals are not votes; a tie does not approve."""
    needed = rules.min_votes if rules.mode == "open_vote" else (seats or rules.panel_size)
    if tally.votes < needed:
        return JuryOutcome.TOO_FEW_VOTES
    if tally.approve * 10_000 > tally.votes * rules.approve_above_bp:
        return JuryOutcome.APPROVED
    return JuryOutcome.REJECTED


#: Membership states in which a member may serve on a jury (not while suspended or after leaving).
JUROR_MEMBERSHIP_STATES = frozenset({MembershipState.WAITING, MembershipState.COVERED})


@dataclass(frozen=True, slots=True)
class JurorFacts:
    """What decides whether an account may serve on a case's jury.

    Its own membership of the plan is the one it pays for whose person is the account holder
    (relation "self"); `membership_state` is None when it has none.
    """

    birth_on: date
    joined_on: date
    membership_state: MembershipState | None
    certified: bool
    fraud_record: bool
    #: The account filed the claim the jury hears.
    is_claimant: bool = False


def juror_refusal(facts: JurorFacts, rules: JuryRules, today: date) -> tuple[str, str] | None:
    """Why someone may not serve as a juror today (code, message), or None: the rule.

    `db.queries.juries.eligible_juror_ids` expresses the same rule in SQL (with the bounds of
    `juror_limits`), so a vote can check it in its INSERT and a referral can notify every eligible
    juror at once; tests/integration/test_juror_eligibility.py compares the two.
    """
    if facts.is_claimant:
        return ("own_claim", "the member who filed a claim cannot serve on its jury")
    if facts.fraud_record:
        return ("fraud_record", "members with a fraud record cannot serve on a jury")
    if facts.membership_state not in JUROR_MEMBERSHIP_STATES:
        return ("not_paying_member", "jurors must be paying members of the plan")
    if age_in_years(facts.birth_on, today) < rules.juror_min_age_years:
        return ("too_young", f"jurors must be at least {rules.juror_min_age_years} years old")
    if (today - facts.joined_on).days < rules.juror_min_membership_days:
        return (
            "membership_too_recent",
            f"jurors must have been members for at least {rules.juror_min_membership_days} days",
        )
    if not facts.certified:
        return ("not_certified", "pass the juror certification quiz first")
    return None


@dataclass(frozen=True, slots=True)
class JurorLimits:
    """`juror_refusal`'s age and seniority tests as bounds on dates, for SQL.

    age_in_years(birth_on, today) >= min age  <=>  birth_on <= latest_birth_on, and
    (today - joined_on).days >= min days      <=>  joined_on <= joined_by_on.
    """

    latest_birth_on: date
    joined_by_on: date


def juror_limits(rules: JuryRules, today: date) -> JurorLimits:
    """The latest birth date and the latest joining date of an eligible juror today."""
    years = rules.juror_min_age_years
    try:
        # Born on this day `years` ago: `years` old today (anniversary() of that birth is today).
        latest_birth_on = today.replace(year=today.year - years)
    except ValueError:  # today is 29 February and that year had none: born by 28 February
        latest_birth_on = date(today.year - years, 2, 28)
    return JurorLimits(latest_birth_on, today - timedelta(days=rules.juror_min_membership_days))


def draw_order_key(seed: bytes, case_ref: str, juror_ref: str) -> bytes:
    """A juror's place in the draw: SHA-256 over the public seed, the case and the juror's pseudonym."""
    return hashlib.sha256(
        b"mutualaid/jury-draw/v1\n" + seed + b"\n" + case_ref.encode() + b"\n" + juror_ref.encode()
    ).digest()


def draw_panel(
    seed: bytes,
    case_ref: str,
    candidates: Sequence[str],
    seats: int,
    exclude: frozenset[str] = frozenset(),
) -> list[str]:
    """Draw `seats` jurors from `candidates` (pseudonymous refs), skipping `exclude`.

    The seed is a checkpoint root hash published *after* the case was referred, so nobody could
    know the draw in advance; the candidate list is committed when the case is referred. Anyone
    holding both can recompute the panel: it is the `seats` candidates with the smallest keys.
    """
    eligible = [c for c in candidates if c not in exclude]
    return sorted(eligible, key=lambda ref: draw_order_key(seed, case_ref, ref))[:seats]


def candidates_commitment(candidates: Sequence[str]) -> str:
    """SHA-256 of the sorted candidate list, published when a case is referred."""
    return hashlib.sha256("\n".join(sorted(candidates)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class QuizQuestion:
    code: str
    text_zh: str
    text_en: str
    choices: tuple[str, ...]
    answer: str


#: The juror certification quiz: the rules a juror applies. Passing needs every answer right.
CERTIFICATION_QUIZ: tuple[QuizQuestion, ...] = (
    QuizQuestion(
        "waiting_period",
        "等待期内非意外导致的疾病能否获得互助金？",
        "Does an illness not caused by an accident qualify during the waiting period?",
        ("yes", "no"),
        "no",
    ),
    QuizQuestion(
        "evidence",
        "判断一个案件时，应依据什么？",
        "What should a juror base a decision on?",
        ("case_file", "rumours", "sympathy"),
        "case_file",
    ),
    QuizQuestion(
        "declaration",
        "加入时隐瞒已患重病的成员能否获得互助金？",
        "Can a member who hid a serious existing illness when joining receive aid?",
        ("yes", "no"),
        "no",
    ),
    QuizQuestion(
        "conflict",
        "如果你认识申请人，应该怎么做？",
        "What should you do if you know the applicant?",
        ("vote", "recuse"),
        "recuse",
    ),
)


def quiz_passed(questions: Sequence[QuizQuestion], answers: dict[str, str]) -> bool:
    return all(answers.get(q.code) == q.answer for q in questions)


def case_quiz(
    case_ref: str,
    illness_code: str,
    illness_choices: Sequence[str],
    age: int,
) -> tuple[QuizQuestion, ...]:
    """Two questions a juror answers from the anonymised case file before voting.

    They show the juror read the file; the choices are drawn deterministically from the case ref
    so every juror sees the same quiz.
    """
    others = sorted(c for c in illness_choices if c != illness_code)
    start = int(hashlib.sha256(case_ref.encode()).hexdigest(), 16) % max(len(others), 1)
    distractors = (others[start:] + others[:start])[:3]
    illness_options = tuple(sorted([illness_code, *distractors]))
    band = f"{(age // 10) * 10}-{(age // 10) * 10 + 9}"
    bands = tuple(f"{low}-{low + 9}" for low in range(0, 80, 10))
    return (
        QuizQuestion(
            "illness",
            "申请的是哪种疾病？",
            "Which illness is claimed?",
            illness_options,
            illness_code,
        ),
        QuizQuestion("age_band", "确诊时的年龄段？", "The age band at diagnosis?", bands, band),
    )
