"""The juror's side: the anonymised case file and its quiz, and casting a vote.

One member, one vote per round is a UNIQUE constraint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    JuryCase,
    JurySeat,
    JuryVote,
    Membership,
    Person,
    Plan,
    PlanVersion,
)
from mutualaid.db.queries.accounts import caller_columns, token_caller
from mutualaid.db.queries.juries import eligible_juror_ids
from mutualaid.db.queries.plans import cached_rules, known_rules, rules_of
from mutualaid.db.statements import CompiledStatement
from mutualaid.domain.accounts import STAFF_ROLES, Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.juries import (
    QuizQuestion,
    case_quiz,
    juror_limits,
    quiz_passed,
)
from mutualaid.domain.plans import PlanRules
from mutualaid.services.accounts.accounts import Actor, BearerToken, actor_of_token, authenticate
from mutualaid.services.claims.publicity import PublicCase, public_case
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.case_files import JuryCaseFile, build_case_file
from mutualaid.services.juries.eligibility import is_eligible
from mutualaid.services.juries.juries import JuryView, jury_view


@dataclass(frozen=True, slots=True)
class JurorCaseFile:
    jury: JuryView
    case: PublicCase
    findings_summary: str
    quiz: list[dict[str, Any]]
    #: What the juror reads before voting (the same for every juror; names taken out).
    file: JuryCaseFile


def case_parts(session: Session, case: JuryCase) -> tuple[Claim, Plan, PlanRules, PublicCase]:
    claim = session.get(Claim, case.claim_id)
    assert claim is not None
    plan = session.get(Plan, claim.plan_id)
    assert plan is not None
    rules = rules_of(session, plan.id, claim.plan_version)
    person = session.get(Person, claim.person_id)
    membership = session.get(Membership, claim.membership_id)
    assert person is not None and membership is not None
    return claim, plan, rules, public_case(rules, claim, person, membership)


def _quiz(rules: PlanRules, claim: Claim) -> tuple[QuizQuestion, ...]:
    return case_quiz(
        claim.ref, claim.illness_code, [i.code for i in rules.illnesses], claim.age_at_diagnosis
    )


def _require_juror_of(
    session: Session, actor: Actor, case: JuryCase, claim: Claim, rules: PlanRules, today: date
) -> None:
    """Staff, the drawn panel, whoever voted in the round, or (an open vote) an eligible juror.

    A disputed rejection is never published, so its file must not reach every logged-in account
    (security issue #13, finding 11)."""
    if actor.role in STAFF_ROLES:
        return
    mine = session.scalar(
        select(JurySeat.id).where(
            JurySeat.jury_case_id == case.id, JurySeat.juror_account_id == actor.account_id
        )
    ) or session.scalar(
        select(JuryVote.id).where(
            JuryVote.jury_case_id == case.id, JuryVote.juror_account_id == actor.account_id
        )
    )
    if mine is None and not (
        case.mode == "open_vote" and is_eligible(session, actor.account_id, claim, rules, today)
    ):
        raise Forbidden("not_a_juror", "only the jurors of this round read its case file")


def juror_case_file(ctx: ServiceContext, actor: Actor, jury_case_id: int) -> JurorCaseFile:
    """The anonymised case file and its quiz (no names, no documents, no running tally)."""
    with ctx.reading() as session:
        case = session.get(JuryCase, jury_case_id)
        if case is None:
            raise NotFound(
                "jury_not_found", f"there is no jury case {jury_case_id}", "jury_case_id"
            )
        claim, _, rules, public = case_parts(session, case)
        _require_juror_of(
            session, actor, case, claim, rules, local_date(ctx.clock.now(), rules.zone)
        )
        from mutualaid.db.models import InvestigationReport

        report = session.scalars(
            select(InvestigationReport)
            .where(InvestigationReport.claim_id == claim.id)
            .order_by(InvestigationReport.id.desc())
        ).first()
        summary = (
            f"investigation recommends: {report.recommendation}"
            if report
            else "no field investigation"
        )
        quiz = [
            {"code": q.code, "text_zh": q.text_zh, "text_en": q.text_en, "choices": list(q.choices)}
            for q in _quiz(rules, claim)
        ]
        return JurorCaseFile(
            jury_view(case, claim.ref),
            public,
            summary,
            quiz,
            build_case_file(session, ctx.protector, case, claim, rules),
        )


@dataclass(frozen=True, slots=True)
class VoteReceipt:
    jury_case_id: int
    choice: str
    cast_at: datetime


#: What a vote needs to know of its case, in one round trip.
_BALLOT_CASE = (
    select(
        JuryCase.id,
        JuryCase.status,
        JuryCase.mode,
        JuryCase.closes_at,
        Claim.plan_id,
        Claim.plan_version,
        Claim.claimant_account_id,
        Claim.ref,
        Claim.illness_code,
        Claim.age_at_diagnosis,
        PlanVersion.rules_sha256,
    )
    .join(Claim, Claim.id == JuryCase.claim_id)
    .join(
        PlanVersion,
        (PlanVersion.plan_id == Claim.plan_id) & (PlanVersion.version == Claim.plan_version),
    )
    .where(JuryCase.id == bindparam("case_id"))
)
#: The same read, with the caller's bearer token checked in it (the API's vote: one round trip
#: fewer, as for joins).
_BALLOT_CASE_BY_TOKEN = _BALLOT_CASE.add_columns(*caller_columns(token_caller()))
_BALLOT_COLUMNS = ["jury_case_id", "juror_account_id", "choice", "cast_at"]
_BALLOT_VALUES: tuple[Any, ...] = (
    bindparam("case_id"),
    bindparam("juror"),
    bindparam("choice"),
    bindparam("now"),
)


def _ballot(right_to_vote: Any) -> Any:
    """INSERT the vote only if the voter may vote: the check and the write are one statement."""
    # RETURNING tells whether a row was written (psycopg reports no rowcount for INSERT … SELECT).
    return (
        insert(JuryVote)
        .from_select(_BALLOT_COLUMNS, select(*_BALLOT_VALUES).where(right_to_vote.exists()))
        .returning(JuryVote.id)
    )


_OPEN_VOTE_BALLOT = _ballot(
    eligible_juror_ids(
        bindparam("plan_id"),
        bindparam("latest_birth"),
        bindparam("joined_by"),
        bindparam("claimant"),
        bindparam("juror"),
    )
)
_PANEL_BALLOT = _ballot(
    select(JurySeat.id).where(
        JurySeat.jury_case_id == bindparam("case_id"),
        JurySeat.juror_account_id == bindparam("juror"),
    )
)


#: The facts of a jury case that a vote needs and that never change (its claim's and its plan
#: version's), kept per process once a vote has read them: the API's next votes on the case are
#: then one statement each (`_FAST_BALLOTS`), which checks in the database that the case is still
#: open and that every remembered fact is still the database's (a stale entry writes nothing and
#: takes the slow path).
_CASE_FACTS: dict[int, Any] = {}
_CASE_FACTS_KEPT = 256


def _fast_ballot(right_to_vote: Any) -> Any:
    """The vote of a bearer token's owner in one statement: the token, the open case and the
    right to vote checked, the vote written (RETURNING tells whether it was)."""
    # Every fact the caller used from its memory is compared with the database's.
    open_case = (
        select(JuryCase.id)
        .join(Claim, Claim.id == JuryCase.claim_id)
        .join(
            PlanVersion,
            (PlanVersion.plan_id == Claim.plan_id) & (PlanVersion.version == Claim.plan_version),
        )
        .where(
            JuryCase.id == bindparam("case_id"),
            JuryCase.status == "open",
            JuryCase.closes_at > bindparam("now"),
            JuryCase.mode == bindparam("mode"),
            Claim.ref == bindparam("claim_ref"),
            Claim.plan_id == bindparam("plan_id"),
            Claim.claimant_account_id == bindparam("claimant"),
            Claim.illness_code == bindparam("illness_code"),
            Claim.age_at_diagnosis == bindparam("age_at_diagnosis"),
            PlanVersion.rules_sha256 == bindparam("rules_sha256"),
        )
    )
    values: tuple[Any, ...] = (
        bindparam("case_id"),
        token_caller(),
        bindparam("choice"),
        bindparam("now"),
    )
    return (
        insert(JuryVote)
        .from_select(
            _BALLOT_COLUMNS, select(*values).where(open_case.exists(), right_to_vote.exists())
        )
        .returning(JuryVote.id)
    )


_FAST_BALLOTS = {
    "open_vote": CompiledStatement(
        _fast_ballot(
            eligible_juror_ids(
                bindparam("plan_id"),
                bindparam("latest_birth"),
                bindparam("joined_by"),
                bindparam("claimant"),
                token_caller(),
            )
        )
    ),
    "panel": CompiledStatement(
        _fast_ballot(
            select(JurySeat.id).where(
                JurySeat.jury_case_id == bindparam("case_id"),
                JurySeat.juror_account_id == token_caller(),
            )
        )
    ),
}
#: Each known case's quiz (its facts and its plan version's illnesses, by rules hash, decide it).
_QUIZZES: dict[tuple[str, str, str, int], tuple[QuizQuestion, ...]] = {}


def _known_case_quiz(case: Any, rules: PlanRules) -> tuple[QuizQuestion, ...]:
    key = (case.rules_sha256, case.ref, case.illness_code, case.age_at_diagnosis)
    quiz = _QUIZZES.get(key)
    if quiz is None:
        if len(_QUIZZES) >= _CASE_FACTS_KEPT:
            _QUIZZES.clear()
        quiz = _QUIZZES[key] = case_quiz(
            case.ref, case.illness_code, [i.code for i in rules.illnesses], case.age_at_diagnosis
        )
    return quiz


def _ballot_params(case: Any, rules: PlanRules, choice: str, now: datetime) -> dict[str, Any]:
    """The bound values every ballot statement takes (the juror's limits as of today)."""
    limits = juror_limits(rules.jury, local_date(now, rules.zone))
    return {
        "case_id": case.id,
        "choice": choice,
        "now": now,
        "plan_id": case.plan_id,
        "claimant": case.claimant_account_id,
        "latest_birth": limits.latest_birth_on,
        "joined_by": limits.joined_by_on,
    }


def _fast_vote(
    ctx: ServiceContext, token: BearerToken, jury_case_id: int, choice: str, answers: dict[str, str]
) -> VoteReceipt | None:
    """The vote in one round trip when this process knows the case and the vote is written;
    None otherwise (the slow path then finds out why, or reads the case first)."""
    case = _CASE_FACTS.get(jury_case_id)
    if case is None or case.mode not in _FAST_BALLOTS:
        return None
    now = ctx.clock.now()
    rules = cached_rules(case.rules_sha256)
    if rules is None:
        return None
    if choice != "recuse" and not quiz_passed(_known_case_quiz(case, rules), answers):
        return None
    params = _ballot_params(case, rules, choice, now) | {
        "mode": case.mode,
        "claim_ref": case.ref,
        "illness_code": case.illness_code,
        "age_at_diagnosis": case.age_at_diagnosis,
        "rules_sha256": case.rules_sha256,
        "token_hash": token.token_hash,
    }
    with ctx.autocommit() as connection:
        try:
            written = _FAST_BALLOTS[case.mode].run(connection, params).first()
        except IntegrityError:
            return None  # a second vote: the slow path answers with the first or refuses
    return VoteReceipt(case.id, choice, now) if written is not None else None


def cast_vote(
    ctx: ServiceContext,
    caller: Actor | BearerToken,
    jury_case_id: int,
    choice: str,
    quiz_answers: dict[str, str] | None = None,
) -> VoteReceipt:
    """One member, one vote (or a recusal) per round; the database refuses a second one.

    250,000 jurors may vote on one case within hours, so this is two statements in all, each
    committing by itself: the case (with, for an API caller, its bearer token: an unknown or
    expired one is still refused before anything else), and the conditional INSERT. The precise
    reason for a refusal is looked up only when the INSERT writes nothing. Sending the same vote
    again returns the first receipt; a different second vote is refused.
    """
    if choice not in ("approve", "reject", "recuse"):
        if isinstance(caller, BearerToken):
            authenticate(ctx, caller.token)  # 401 before 400
        raise DomainError("invalid_choice", "vote approve or reject, or recuse yourself", "choice")
    if isinstance(caller, BearerToken):
        fast = _fast_vote(ctx, caller, jury_case_id, choice, quiz_answers or {})
        if fast is not None:
            return fast
    now = ctx.clock.now()
    with ctx.autocommit() as connection:
        if isinstance(caller, BearerToken):
            case = connection.execute(
                _BALLOT_CASE_BY_TOKEN,
                {"case_id": jury_case_id, "token_hash": caller.token_hash, "now": now},
            ).first()
            actor = (
                Actor(case.caller_id, Role(case.caller_role))
                if case is not None and case.caller_id is not None
                else actor_of_token(connection, caller, now)
            )
        else:
            actor = caller
            case = connection.execute(_BALLOT_CASE, {"case_id": jury_case_id}).first()
        if case is None:
            raise NotFound(
                "jury_not_found", f"there is no jury case {jury_case_id}", "jury_case_id"
            )
        if case.status != "open" or case.closes_at is None or not now < case.closes_at:
            raise DomainError("vote_closed", "this vote is not open", "jury_case_id")
        rules = known_rules(connection, case.rules_sha256, case.plan_id, case.plan_version)
        if isinstance(caller, BearerToken):
            if len(_CASE_FACTS) >= _CASE_FACTS_KEPT:
                _CASE_FACTS.clear()
            _CASE_FACTS[case.id] = case
        params = _ballot_params(case, rules, choice, now) | {"juror": actor.account_id}
        panel = case.mode == "panel"
        quiz = case_quiz(
            case.ref, case.illness_code, [i.code for i in rules.illnesses], case.age_at_diagnosis
        )
        if choice != "recuse" and not quiz_passed(quiz, quiz_answers or {}):
            _refuse_voter(connection, panel, params)
            raise DomainError("quiz_failed", "answer the questions on the case file first", "quiz")
        try:
            written = connection.execute(
                _PANEL_BALLOT if panel else _OPEN_VOTE_BALLOT, params
            ).first()
        except IntegrityError:
            return _earlier_vote(connection, case.id, actor.account_id, choice)
        if written is None:
            _refuse_voter(connection, panel, params)
        return VoteReceipt(case.id, choice, now)


def _refuse_voter(connection: Connection, panel: bool, params: dict[str, Any]) -> None:
    """Raise why this account may not vote on the case (returns when it may)."""
    if panel:
        if (
            connection.scalar(
                select(JurySeat.id).where(
                    JurySeat.jury_case_id == params["case_id"],
                    JurySeat.juror_account_id == params["juror"],
                )
            )
            is None
        ):
            raise Forbidden("not_on_panel", "only the drawn panel votes on this case")
    elif (
        connection.scalar(
            eligible_juror_ids(
                params["plan_id"],
                params["latest_birth"],
                params["joined_by"],
                params["claimant"],
                params["juror"],
            )
        )
        is None
    ):
        raise Forbidden("not_eligible", "you are not an eligible juror for this plan")


def _earlier_vote(
    connection: Connection, case_id: int, account_id: int, choice: str
) -> VoteReceipt:
    earlier = connection.execute(
        select(JuryVote.choice, JuryVote.cast_at).where(
            JuryVote.jury_case_id == case_id, JuryVote.juror_account_id == account_id
        )
    ).one()
    if earlier.choice != choice:
        raise Conflict("already_voted", "you have already voted on this case", "jury_case_id")
    return VoteReceipt(case_id, choice, earlier.cast_at)
