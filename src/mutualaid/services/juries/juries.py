"""Member juries: certification, disputes and referrals, panels drawn verifiably, votes, results.

No live tally: counts are computed only when a vote closes. One member, one vote per round is a
UNIQUE constraint. Too few votes: a new round (a new draw for panels), up to the plan's limit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    FraudRecord,
    JurorCertification,
    JuryCase,
    JurySeat,
    JuryVote,
    LogCheckpoint,
    Membership,
    Person,
    Plan,
    PlanVersion,
)
from mutualaid.db.queries.plans import known_rules, plan_by_code, rules_of
from mutualaid.domain.accounts import STAFF_ROLES, Role, require_role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimEvent
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.juries import (
    CERTIFICATION_QUIZ,
    JuryOutcome,
    QuizQuestion,
    Tally,
    candidates_commitment,
    case_quiz,
    decide,
    draw_panel,
    quiz_passed,
)
from mutualaid.domain.plans import PlanRules
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import PublicCase, _apply, _load, public_case
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import run_idempotent
from mutualaid.services.notifications import notify, notify_many
from mutualaid.services.transparency.log import queue_leaf, unix_seconds


def juror_ref(account_id: int) -> str:
    """A juror's public pseudonym in draws (the account id itself is not published)."""
    return hashlib.sha256(f"mutualaid/juror/{account_id}".encode()).hexdigest()[:32]


# --- certification --------------------------------------------------------------------------------


def certification_quiz() -> list[dict[str, Any]]:
    return [
        {"code": q.code, "text_zh": q.text_zh, "text_en": q.text_en, "choices": list(q.choices)}
        for q in CERTIFICATION_QUIZ
    ]


@dataclass(frozen=True, slots=True)
class CertificationResult:
    passed: bool
    wrong: list[str]


def certify_juror(
    ctx: ServiceContext, actor: Actor, answers: dict[str, str]
) -> CertificationResult:
    wrong = [q.code for q in CERTIFICATION_QUIZ if answers.get(q.code) != q.answer]
    if wrong:
        return CertificationResult(False, wrong)
    with ctx.transaction() as session:
        now = ctx.clock.now()
        row = session.get(JurorCertification, actor.account_id)
        if row is None:
            session.add(
                JurorCertification(
                    account_id=actor.account_id, passed_at=now, score=len(CERTIFICATION_QUIZ)
                )
            )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="juror_certified",
            subject_type="account",
            subject_id=actor.account_id,
        )
    return CertificationResult(True, [])


# --- eligibility (one query, also used set-based to notify every eligible juror) -------------------


def eligible_jurors(
    plan_id: int,
    today: date,
    rules: PlanRules,
    exclude_account: int | None,
    only_account: int | None = None,
) -> Select[Any]:
    """Accounts that may serve: certified, paying for an active membership, themself a member of
    the plan for >= 30 days and >= 18 years old, with no fraud record."""
    latest_birth, joined_by = _juror_limits(rules, today)
    return _eligibility(plan_id, latest_birth, joined_by, exclude_account, only_account)


def _juror_limits(rules: PlanRules, today: date) -> tuple[date, date]:
    """The latest birth date and the latest joining date of an eligible juror today."""
    jury = rules.jury
    latest_birth = date(
        today.year - jury.juror_min_age_years,
        today.month,
        28 if (today.month, today.day) == (2, 29) else today.day,
    )
    return latest_birth, today - timedelta(days=jury.juror_min_membership_days)


def _eligibility(
    plan_id: Any, latest_birth: Any, joined_by: Any, exclude_account: Any, only_account: Any = None
) -> Select[Any]:
    # Takes values or bind parameters, so the vote path can build its statement once.
    own = (
        select(Membership.payer_account_id)
        .join(Person, Person.id == Membership.person_id)
        .where(
            Membership.plan_id == plan_id,
            Person.relation == "self",
            Membership.state.in_(["waiting", "covered"]),
            Membership.joined_on <= joined_by,
            Person.birth_on <= latest_birth,
        )
    )
    if only_account is not None:
        # Checking one juror (a vote): narrow every part to that account so it is index lookups.
        own = own.where(Membership.payer_account_id == only_account)
    fraud = select(FraudRecord.account_id).where(
        FraudRecord.revoked_at.is_(None), FraudRecord.account_id.is_not(None)
    )
    query = select(JurorCertification.account_id).where(
        JurorCertification.account_id.in_(own), JurorCertification.account_id.not_in(fraud)
    )
    if exclude_account is not None:
        query = query.where(JurorCertification.account_id != exclude_account)
    if only_account is not None:
        query = query.where(JurorCertification.account_id == only_account)
    return query


def _eligible(
    session: Session, account_id: int, claim: Claim, rules: PlanRules, today: date
) -> bool:
    query = eligible_jurors(claim.plan_id, today, rules, claim.claimant_account_id, account_id)
    return session.scalar(query) is not None


# --- referral --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JuryView:
    id: int
    claim_ref: str
    round: int
    mode: str
    status: str
    opens_at: datetime | None
    closes_at: datetime | None
    seats: int
    candidates_sha256: str | None
    seed_hex: str | None
    outcome: str | None
    approve_votes: int | None
    reject_votes: int | None
    recusals: int | None


def _jury_view(case: JuryCase, ref: str) -> JuryView:
    # Counts stay hidden until the vote has closed: no live tally sways the jurors.
    closed = case.status == "closed"
    return JuryView(
        case.id,
        ref,
        case.round,
        case.mode,
        case.status,
        case.opens_at,
        case.closes_at,
        case.seats,
        case.candidates_sha256,
        case.seed_hex,
        case.outcome,
        case.approve_votes if closed else None,
        case.reject_votes if closed else None,
        case.recusals if closed else None,
    )


def _open_round(
    session: Session, claim: Claim, plan: Plan, rules: PlanRules, round_no: int, now: datetime
) -> JuryCase:
    jury_rules = rules.jury
    case = JuryCase(
        claim_id=claim.id,
        round=round_no,
        mode=jury_rules.mode,
        referred_at=now,
        status="open" if jury_rules.mode == "open_vote" else "awaiting_seed",
    )
    today = local_date(now, rules.zone)
    if jury_rules.mode == "open_vote":
        case.opens_at, case.closes_at = now, now + timedelta(hours=jury_rules.vote_hours)
        session.add(case)
        session.flush()
        notify_many(
            session,
            at=now,
            account_ids=eligible_jurors(plan.id, today, rules, claim.claimant_account_id),
            kind="jury_vote_open",
            subject_type="jury_case",
            subject_id=case.id,
            payload={"claim_ref": claim.ref, "closes_at": case.closes_at.isoformat()},
        )
    else:
        candidates = [
            juror_ref(a)
            for a in session.scalars(
                eligible_jurors(plan.id, today, rules, claim.claimant_account_id)
            )
        ]
        case.candidates_sha256 = candidates_commitment(candidates)
        case.seats = jury_rules.panel_size
        session.add(case)
        session.flush()
    return case


def dispute_rejection(
    ctx: ServiceContext, actor: Actor, ref: str, reason: str, *, idempotency_key: str | None = None
) -> JuryView:
    """The applicant disputes a rejection: the case goes to a member jury."""
    if not reason.strip():
        raise DomainError("reason_required", "say why you dispute the decision", "reason")

    def run(session: Session) -> JuryView:
        now = ctx.clock.now()
        claim, plan, _ = _load(session, ref)
        if claim.claimant_account_id != actor.account_id:
            raise NotFound("claim_not_found", f"there is no claim {ref}", "claim_ref")
        rules = rules_of(session, plan.id, claim.plan_version)
        _apply(session, claim, plan, ClaimEvent.DISPUTE, actor, now, public_note=reason.strip())
        return _jury_view(_open_round(session, claim, plan, rules, 1, now), claim.ref)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation=f"dispute:{ref}",
        request={"r": reason},
        result_type=JuryView,
        action=run,
    )


def refer_to_jury(ctx: ServiceContext, actor: Actor, ref: str, note: str) -> JuryView:
    """An operator refers a contested case (in re-review or publicity) to a jury."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.transaction() as session:
        now = ctx.clock.now()
        claim, plan, _ = _load(session, ref)
        rules = rules_of(session, plan.id, claim.plan_version)
        _apply(
            session,
            claim,
            plan,
            ClaimEvent.REFER_TO_JURY,
            actor,
            now,
            internal_note=note,
            public_note="the case was referred to a member jury",
        )
        next_round = (
            session.scalar(select(func.max(JuryCase.round)).where(JuryCase.claim_id == claim.id))
            or 0
        ) + 1
        return _jury_view(_open_round(session, claim, plan, rules, next_round, now), claim.ref)


def seat_panel(
    ctx: ServiceContext, jury_case_id: int, seed: bytes, seed_tree_size: int
) -> JuryView:
    """Draw the panel from a seed no one knew at referral: a checkpoint root published after it.

    Anyone with the candidate list (committed at referral), the seed and the case ref can redo the
    draw with `mutualaid.domain.juries.draw_panel`.
    """
    with ctx.transaction() as session:
        now = ctx.clock.now()
        case = session.get(JuryCase, jury_case_id, with_for_update=True)
        if case is None:
            raise NotFound(
                "jury_not_found", f"there is no jury case {jury_case_id}", "jury_case_id"
            )
        if case.status != "awaiting_seed":
            raise Conflict("already_seated", "this panel has been drawn", "jury_case_id")
        claim = session.get(Claim, case.claim_id)
        assert claim is not None
        rules = rules_of(session, claim.plan_id, claim.plan_version)
        today = local_date(now, rules.zone)
        accounts = list(
            session.scalars(eligible_jurors(claim.plan_id, today, rules, claim.claimant_account_id))
        )
        by_ref = {juror_ref(a): a for a in accounts}
        earlier = set(
            session.scalars(
                select(JurySeat.juror_ref)
                .join(JuryCase, JuryCase.id == JurySeat.jury_case_id)
                .where(JuryCase.claim_id == claim.id)
            )
        )
        drawn = draw_panel(seed, claim.ref, sorted(by_ref), case.seats, frozenset(earlier))
        if not drawn:
            raise DomainError("no_jurors", "no eligible jurors to draw from", "jury_case_id")
        case.seed_hex, case.seed_tree_size = seed.hex(), seed_tree_size
        case.status, case.opens_at = "open", now
        case.closes_at = now + timedelta(hours=rules.jury.vote_hours)
        for ref in drawn:
            session.add(
                JurySeat(
                    jury_case_id=case.id, juror_account_id=by_ref[ref], juror_ref=ref, drawn_at=now
                )
            )
            notify(
                session,
                at=now,
                account_id=by_ref[ref],
                kind="jury_vote_open",
                subject_type="jury_case",
                subject_id=case.id,
                claim_ref=claim.ref,
                closes_at=case.closes_at.isoformat(),
            )
        audit.record(
            session,
            at=now,
            actor_account_id=None,
            action="jury_panel_drawn",
            subject_type="jury_case",
            subject_id=case.id,
            seats=len(drawn),
            seed=case.seed_hex,
            seed_tree_size=seed_tree_size,
        )
        return _jury_view(case, claim.ref)


@dataclass(frozen=True, slots=True)
class SeatingRun:
    seated: int
    waiting: int


def seat_waiting_panels(ctx: ServiceContext) -> SeatingRun:
    """Draw every panel whose seed now exists: the root of the FIRST checkpoint published after
    the case was referred. Nobody (the operator included) could know that root at referral, and
    anyone can find the same checkpoint again and redo the draw. Run it after each checkpoint."""
    with ctx.reading() as session:
        waiting = session.execute(
            select(JuryCase.id, JuryCase.referred_at)
            .where(JuryCase.status == "awaiting_seed")
            .order_by(JuryCase.id)
        ).all()
        seeds = [
            (
                case_id,
                session.execute(
                    select(LogCheckpoint.root_hash, LogCheckpoint.size)
                    .where(LogCheckpoint.published, LogCheckpoint.published_at > referred_at)
                    .order_by(LogCheckpoint.published_at, LogCheckpoint.size)
                    .limit(1)
                ).first(),
            )
            for case_id, referred_at in waiting
        ]
    seated = 0
    for case_id, seed in seeds:
        if seed is None:
            continue
        try:
            seat_panel(ctx, case_id, bytes(seed.root_hash), seed.size)
            seated += 1
        except Conflict:
            pass  # another worker drew it first: the same draw, from the same seed
    return SeatingRun(seated=seated, waiting=len(waiting) - seated)


# --- the juror's side -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JurorCaseFile:
    jury: JuryView
    case: PublicCase
    findings_summary: str
    quiz: list[dict[str, Any]]


def _case_parts(session: Session, case: JuryCase) -> tuple[Claim, Plan, PlanRules, PublicCase]:
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
        case.mode == "open_vote" and _eligible(session, actor.account_id, claim, rules, today)
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
        claim, _, rules, public = _case_parts(session, case)
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
        return JurorCaseFile(_jury_view(case, claim.ref), public, summary, quiz)


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
    _eligibility(
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


def cast_vote(
    ctx: ServiceContext,
    actor: Actor,
    jury_case_id: int,
    choice: str,
    quiz_answers: dict[str, str] | None = None,
) -> VoteReceipt:
    """One member, one vote (or a recusal) per round; the database refuses a second one.

    250,000 jurors may vote on one case within hours, so this is three statements in all (the
    caller's token, the case, the conditional INSERT), each committing by itself. The precise
    reason for a refusal is looked up only when the INSERT writes nothing. Sending the same vote
    again returns the first receipt; a different second vote is refused.
    """
    if choice not in ("approve", "reject", "recuse"):
        raise DomainError("invalid_choice", "vote approve or reject, or recuse yourself", "choice")
    now = ctx.clock.now()
    with ctx.autocommit() as connection:
        case = connection.execute(_BALLOT_CASE, {"case_id": jury_case_id}).first()
        if case is None:
            raise NotFound(
                "jury_not_found", f"there is no jury case {jury_case_id}", "jury_case_id"
            )
        if case.status != "open" or case.closes_at is None or not now < case.closes_at:
            raise DomainError("vote_closed", "this vote is not open", "jury_case_id")
        rules = known_rules(connection, case.rules_sha256, case.plan_id, case.plan_version)
        latest_birth, joined_by = _juror_limits(rules, local_date(now, rules.zone))
        params = {
            "case_id": case.id,
            "juror": actor.account_id,
            "choice": choice,
            "now": now,
            "plan_id": case.plan_id,
            "claimant": case.claimant_account_id,
            "latest_birth": latest_birth,
            "joined_by": joined_by,
        }
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
            _eligibility(
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


# --- closing --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JuryCloseRun:
    closed: int
    approved: int
    rejected: int
    new_rounds: int
    inconclusive: int


def close_due_juries(ctx: ServiceContext, actor: Actor) -> JuryCloseRun:
    """Close every vote whose window has passed: tally, decide, move the claim, or start a new round."""
    require_role(actor.role, Role.OPERATOR)
    closed = approved = rejected = new_rounds = inconclusive = 0
    with ctx.transaction() as session:
        now = ctx.clock.now()
        due = session.scalars(
            select(JuryCase)
            .where(JuryCase.status == "open", JuryCase.closes_at <= now)
            .order_by(JuryCase.id)
            .with_for_update()
        ).all()
        for case in due:
            counts = dict(
                session.execute(
                    select(JuryVote.choice, func.count())
                    .where(JuryVote.jury_case_id == case.id)
                    .group_by(JuryVote.choice)
                ).all()
            )
            tally = Tally(approve=counts.get("approve", 0), reject=counts.get("reject", 0))
            claim, plan, rules, _ = _case_parts(session, case)
            outcome = decide(tally, rules.jury, seats=case.seats or None)
            case.status, case.outcome = "closed", str(outcome)
            case.approve_votes, case.reject_votes = tally.approve, tally.reject
            case.recusals = counts.get("recuse", 0)
            closed += 1
            queue_leaf(
                session,
                at=now,
                leaf_type="jury_result",
                subject_type="claim",
                subject_ref=claim.ref,
                fields={
                    "claim_ref": claim.ref,
                    "jury_ref": f"J{case.id}",
                    "votes_for": tally.approve,
                    "votes_against": tally.reject,
                    "outcome": "no_quorum"
                    if outcome is JuryOutcome.TOO_FEW_VOTES
                    else str(outcome),
                    "closed_at": unix_seconds(now),
                },
            )
            note = f"jury: {tally.approve} approve, {tally.reject} reject, {case.recusals} recused"
            if outcome is JuryOutcome.APPROVED:
                claim.approved_at = now
                _apply(session, claim, plan, ClaimEvent.JURY_APPROVES, actor, now, public_note=note)
                approved += 1
            elif outcome is JuryOutcome.REJECTED:
                _apply(session, claim, plan, ClaimEvent.JURY_REJECTS, actor, now, public_note=note)
                rejected += 1
            elif case.round < rules.jury.max_rounds:
                _open_round(session, claim, plan, rules, case.round + 1, now)
                new_rounds += 1
            else:
                _apply(
                    session,
                    claim,
                    plan,
                    ClaimEvent.JURY_INCONCLUSIVE,
                    actor,
                    now,
                    public_note=f"too few jurors voted in {case.round} rounds; staff will decide",
                )
                inconclusive += 1
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="juries_closed",
            subject_type="jury_case",
            subject_id=None,
            closed=closed,
        )
    return JuryCloseRun(closed, approved, rejected, new_rounds, inconclusive)


def jury_rounds(ctx: ServiceContext, ref: str) -> list[JuryView]:
    with ctx.reading() as session:
        claim = session.scalars(select(Claim).where(Claim.ref == ref)).first()
        if claim is None:
            raise NotFound("claim_not_found", f"there is no claim {ref}", "claim_ref")
        cases = session.scalars(
            select(JuryCase).where(JuryCase.claim_id == claim.id).order_by(JuryCase.round)
        ).all()
        return [_jury_view(c, ref) for c in cases]


def open_votes_for(ctx: ServiceContext, actor: Actor, plan_code: str) -> list[JuryView]:
    """Votes a juror may take part in now (open votes of the plan, and panels they sit on)."""
    with ctx.reading() as session:
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        seated = select(JurySeat.jury_case_id).where(JurySeat.juror_account_id == actor.account_id)
        voted = select(JuryVote.jury_case_id).where(JuryVote.juror_account_id == actor.account_id)
        rows = session.execute(
            select(JuryCase, Claim.ref)
            .join(Claim, Claim.id == JuryCase.claim_id)
            .where(
                Claim.plan_id == plan.id,
                JuryCase.status == "open",
                JuryCase.closes_at > now,
                Claim.claimant_account_id != actor.account_id,
                or_(JuryCase.mode == "open_vote", JuryCase.id.in_(seated)),
                JuryCase.id.not_in(voted),
            )
            .order_by(JuryCase.id)
        ).all()
        return [_jury_view(case, ref) for case, ref in rows]
