from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from tests.builders.juries import (
    RIGHT_ANSWERS,
    TODAY,
    answers_for,
    jurors,
    rejected_claim,
    use_jury_rules,
)
from tests.factories import covered_member, publish_demo_plans, staff
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import FraudRecord, JuryVote, Notification
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Conflict, DomainError, Forbidden
from mutualaid.domain.juries import draw_panel
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.claims.views import get_claim
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.juries.closing import close_due_juries
from mutualaid.services.juries.juries import juror_ref, jury_rounds, open_votes_for
from mutualaid.services.juries.panels import dispute_rejection, refer_to_jury, seat_panel
from mutualaid.services.juries.votes import cast_vote, juror_case_file


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def test_certification_needs_every_answer_right(ctx: ServiceContext, clock: FixedClock) -> None:
    juror, _ = covered_member(ctx, clock)
    result = certify_juror(ctx, juror, dict(RIGHT_ANSWERS, conflict="vote"))
    assert (result.passed, result.wrong) == (False, ["conflict"])


def test_open_vote_approves_with_enough_votes_and_a_majority(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_jury_rules(ctx, min_votes=3, vote_hours=24)
    panel = jurors(ctx, clock, 4)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "the pathology report shows stage III")
    assert jury.status == "open" and jury.approve_votes is None
    with ctx.reading() as session:
        told = session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "jury_vote_open")
        )
    assert told == 4  # every eligible juror is told a vote opened
    for juror, choice in zip(panel, ["approve", "approve", "reject", "recuse"], strict=True):
        cast_vote(ctx, juror, jury.id, choice, answers_for(ctx, juror, jury.id))
    assert jury_rounds(ctx, ref)[0].approve_votes is None  # no live tally
    clock.advance(timedelta(hours=24))
    run = close_due_juries(ctx, staff(ctx, Role.OPERATOR))
    assert (run.closed, run.approved) == (1, 1)
    [closed] = jury_rounds(ctx, ref)
    assert (closed.approve_votes, closed.reject_votes, closed.recusals) == (2, 1, 1)
    assert get_claim(ctx, holder, ref).state is ClaimState.APPROVED


def test_a_tie_does_not_approve(ctx: ServiceContext, clock: FixedClock) -> None:
    use_jury_rules(ctx, min_votes=2, vote_hours=24)
    a, b = jurors(ctx, clock, 2)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    cast_vote(ctx, a, jury.id, "approve", answers_for(ctx, a, jury.id))
    cast_vote(ctx, b, jury.id, "reject", answers_for(ctx, b, jury.id))
    clock.advance(timedelta(hours=24))
    assert close_due_juries(ctx, staff(ctx, Role.OPERATOR)).rejected == 1
    assert get_claim(ctx, holder, ref).state is ClaimState.CLOSED_REJECTED


def test_too_few_votes_opens_a_new_round_then_returns_to_staff(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_jury_rules(ctx, min_votes=1000, vote_hours=24, max_rounds=2)
    [juror] = jurors(ctx, clock, 1)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    cast_vote(ctx, juror, jury.id, "approve", answers_for(ctx, juror, jury.id))
    operator = staff(ctx, Role.OPERATOR)
    clock.advance(timedelta(hours=24))
    assert close_due_juries(ctx, operator).new_rounds == 1
    clock.advance(timedelta(hours=24))
    assert close_due_juries(ctx, operator).inconclusive == 1
    assert [r.outcome for r in jury_rounds(ctx, ref)] == ["too_few_votes", "too_few_votes"]
    assert get_claim(ctx, holder, ref).state is ClaimState.RE_REVIEW


def test_one_member_one_vote_and_the_quiz_comes_first(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_jury_rules(ctx, min_votes=1)
    [juror] = jurors(ctx, clock, 1)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    with pytest.raises(DomainError) as refused:
        cast_vote(ctx, juror, jury.id, "approve", {"illness": "CI99", "age_band": "0-9"})
    assert refused.value.code == "quiz_failed"
    first = cast_vote(ctx, juror, jury.id, "approve", answers_for(ctx, juror, jury.id))
    clock.advance(timedelta(minutes=1))
    # A retry (the same vote again) gets the first receipt; a change of mind is refused.
    assert cast_vote(ctx, juror, jury.id, "approve", answers_for(ctx, juror, jury.id)) == first
    with pytest.raises(Conflict) as refused:
        cast_vote(ctx, juror, jury.id, "reject", answers_for(ctx, juror, jury.id))
    assert refused.value.code == "already_voted"
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(JuryVote)) == 1


def test_the_applicant_and_uncertified_or_fraudulent_members_cannot_vote(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_jury_rules(ctx, min_votes=1)
    [flagged] = jurors(ctx, clock, 1)
    uncertified, _ = covered_member(ctx, clock)
    holder, ref = rejected_claim(ctx, clock)
    certify_juror(ctx, holder, RIGHT_ANSWERS)
    with ctx.sessions.begin() as session:
        session.add(
            FraudRecord(
                account_id=flagged.account_id, reason="forged records", recorded_at=clock.now()
            )
        )
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    # They may not read the case file, and answers copied from someone who may do not let them vote.
    answers = answers_for(ctx, staff(ctx, Role.REVIEWER), jury.id)
    for outsider in (holder, uncertified, flagged):
        with refused("not_a_juror", Forbidden):
            juror_case_file(ctx, outsider, jury.id)
        with refused("not_eligible", Forbidden):
            cast_vote(ctx, outsider, jury.id, "approve", answers)
    assert open_votes_for(ctx, holder, "xhb-main") == []


def test_members_of_less_than_30_days_cannot_serve(ctx: ServiceContext, clock: FixedClock) -> None:
    from tests.factories import account, enroll

    use_jury_rules(ctx, min_votes=1)
    newcomer = account(ctx)
    enroll(ctx, newcomer, date(1980, 1, 1))
    certify_juror(ctx, newcomer, RIGHT_ANSWERS)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    answers = answers_for(ctx, staff(ctx, Role.REVIEWER), jury.id)
    with refused("not_eligible", Forbidden):
        cast_vote(ctx, newcomer, jury.id, "approve", answers)


def test_votes_close_at_the_deadline(ctx: ServiceContext, clock: FixedClock) -> None:
    use_jury_rules(ctx, min_votes=1, vote_hours=5)
    [juror] = jurors(ctx, clock, 1)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    clock.advance(timedelta(hours=5))
    with pytest.raises(DomainError) as refused:
        cast_vote(ctx, juror, jury.id, "approve", answers_for(ctx, juror, jury.id))
    assert refused.value.code == "vote_closed"


def test_a_panel_is_drawn_reproducibly_from_a_later_seed(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_jury_rules(ctx, mode="panel", panel_size=3, vote_hours=24)
    pool = jurors(ctx, clock, 6)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    assert jury.status == "awaiting_seed" and jury.candidates_sha256
    seed = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
    seated = seat_panel(ctx, jury.id, seed, seed_tree_size=8)
    assert seated.status == "open" and seated.seed_hex == seed.hex()
    refs = {juror_ref(j.account_id): j for j in pool}
    expected = draw_panel(seed, ref, sorted(refs), 3)
    # Anyone can recompute the panel from the public seed and the committed candidate list.
    panel = [refs[r] for r in expected]
    outsider = next(j for j in pool if j not in panel)
    with refused("not_a_juror", Forbidden):
        juror_case_file(ctx, outsider, jury.id)
    with refused("not_on_panel", Forbidden):
        cast_vote(ctx, outsider, jury.id, "approve", answers_for(ctx, panel[0], jury.id))
    for juror in panel:
        cast_vote(ctx, juror, jury.id, "reject", answers_for(ctx, juror, jury.id))
    clock.advance(timedelta(hours=24))
    assert close_due_juries(ctx, staff(ctx, Role.OPERATOR)).rejected == 1


def test_a_panel_with_no_shows_is_redrawn_without_them(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_jury_rules(ctx, mode="panel", panel_size=2, vote_hours=24, max_rounds=3)
    pool = jurors(ctx, clock, 5)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    seat_panel(ctx, jury.id, b"\x01" * 32, 5)
    clock.advance(timedelta(hours=24))
    assert close_due_juries(ctx, staff(ctx, Role.OPERATOR)).new_rounds == 1
    second = jury_rounds(ctx, ref)[1]
    seat_panel(ctx, second.id, b"\x02" * 32, 9)
    refs = {juror_ref(j.account_id) for j in pool}
    first_panel = set(draw_panel(b"\x01" * 32, ref, sorted(refs), 2))
    second_panel = set(draw_panel(b"\x02" * 32, ref, sorted(refs), 2, frozenset(first_panel)))
    assert not first_panel & second_panel


def test_an_operator_refers_a_contested_case_in_publicity(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    from mutualaid.services.claims.publicity import run_publicity
    from mutualaid.services.claims.review import assign_investigation, file_investigation_report

    use_jury_rules(ctx, min_votes=1)
    holder, membership = covered_member(ctx, clock)
    ref = report_claim(ctx, holder, ClaimReport(membership.id, "CI02", TODAY, "医院")).ref
    reviewer, investigator = staff(ctx, Role.REVIEWER), staff(ctx, Role.INVESTIGATOR)
    start_review(ctx, reviewer, ref)
    assign_investigation(ctx, reviewer, ref, investigator.account_id)
    file_investigation_report(ctx, investigator, ref, "mixed findings", "approve")
    decide_claim(ctx, reviewer, ref, approve=True)
    operator = staff(ctx, Role.OPERATOR)
    clock.advance(timedelta(days=6))
    run_publicity(ctx, "xhb-main", operator)
    jury = refer_to_jury(ctx, operator, ref, "many objections")
    assert jury.round == 1 and get_claim(ctx, holder, ref).state is ClaimState.JURY_VOTING


def test_concurrent_votes_are_counted_exactly_once_each(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    from tests.builders.threads import run_together

    use_jury_rules(ctx, min_votes=1)
    people = jurors(ctx, clock, 4)
    holder, ref = rejected_claim(ctx, clock)
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    answers = answers_for(ctx, people[0], jury.id)
    # Eight requests at once: each juror double-clicks, one of each pair votes the other way.
    outcomes = run_together(
        lambda i: cast_vote(ctx, people[i // 2], jury.id, ("approve", "reject")[i % 2], answers)
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 4 and all(getattr(o, "code", None) == "already_voted" for o in refused)
    clock.advance(timedelta(days=4))
    close_due_juries(ctx, staff(ctx, Role.OPERATOR))
    [closed] = jury_rounds(ctx, ref)
    assert (closed.approve_votes or 0) + (closed.reject_votes or 0) == 4
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(JuryVote)) == 4


def test_panels_are_seeded_by_the_first_checkpoint_published_after_referral(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    from mutualaid.services.juries.panels import seat_waiting_panels
    from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
    from mutualaid.transparency.notes import generate_signer_key

    config = LogConfig(generate_signer_key("aid.example/log", seed=b"\x07" * 32))
    use_jury_rules(ctx, mode="panel", panel_size=3, vote_hours=24)
    pool = jurors(ctx, clock, 6)
    holder, ref = rejected_claim(ctx, clock)
    publish_checkpoint(ctx, config)  # known before the referral: must not be the seed
    clock.advance(timedelta(minutes=1))
    jury = dispute_rejection(ctx, holder, ref, "please look again")
    assert seat_waiting_panels(ctx).waiting == 1  # no checkpoint since the referral yet

    clock.advance(timedelta(minutes=10))
    seed = publish_checkpoint(ctx, config).checkpoint
    clock.advance(timedelta(minutes=10))
    run = seat_waiting_panels(ctx)
    assert (run.seated, run.waiting) == (1, 0)
    [seated] = jury_rounds(ctx, ref)
    assert (seated.status, seated.seed_hex) == ("open", seed.root_hash.hex())
    # Anyone can redo the draw from the published root and the committed candidates.
    refs = {juror_ref(j.account_id): j for j in pool}
    panel = [refs[r] for r in draw_panel(seed.root_hash, ref, sorted(refs), 3)]
    for juror in panel:
        cast_vote(ctx, juror, jury.id, "approve", answers_for(ctx, juror, jury.id))
    assert seat_waiting_panels(ctx).seated == 0  # drawn once only


def test_a_retried_dispute_opens_one_jury(ctx: ServiceContext, clock: FixedClock) -> None:
    use_jury_rules(ctx, min_votes=1)
    jurors(ctx, clock, 2)
    holder, ref = rejected_claim(ctx, clock)
    first = dispute_rejection(ctx, holder, ref, "please look again", idempotency_key="d-1")
    clock.advance(timedelta(seconds=30))
    assert dispute_rejection(ctx, holder, ref, "please look again", idempotency_key="d-1") == first
    assert [r.id for r in jury_rounds(ctx, ref)] == [first.id]
    with ctx.reading() as session:  # each eligible juror told once
        assert (
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.kind == "jury_vote_open")
            )
            == 2
        )


def test_a_jury_referral_needs_a_note(ctx: ServiceContext, clock: FixedClock) -> None:
    _, ref = rejected_claim(ctx, clock)
    with refused("note_required"):
        refer_to_jury(ctx, staff(ctx, Role.OPERATOR), ref, "   ")
