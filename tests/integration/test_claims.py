from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.builders.claims import through_investigation
from tests.factories import account, covered_member, enroll, publish_demo_plans, staff
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import Claim, ClaimEventRow, LogEntry, Notification
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState, RejectionReason
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.memberships import MembershipEvent, Relation
from mutualaid.services.claims.filing import ClaimReport, report_claim, withdraw_claim
from mutualaid.services.claims.publicity import (
    cases_in_publicity,
    object_to_claim,
    review_objection,
    run_publicity,
)
from mutualaid.services.claims.review import (
    assign_investigation,
    decide_claim,
    file_investigation_report,
    provide_documents,
    request_documents,
    start_review,
)
from mutualaid.services.claims.views import claim_timeline, get_claim, work_queue
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import change_membership

# The clock fixture: 1 March 2026, 10:00 in Shanghai.
TODAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def report(ctx: ServiceContext, holder, membership_id: int, **changes) -> object:  # type: ignore[no-untyped-def]
    fields = {
        "illness_code": "CI02",
        "diagnosed_on": TODAY - timedelta(days=3),
        "hospital": "浙江大学医学院附属第一医院",
        "accident": False,
    } | changes
    return report_claim(ctx, holder, ClaimReport(membership_id=membership_id, **fields))


class TestReporting:
    def test_a_covered_member_reports_a_claim_and_the_payout_comes_from_the_schedule(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock, birth_on=date(1990, 5, 1))
        claim = report(ctx, holder, membership.id)
        assert claim.state is ClaimState.SUBMITTED
        assert claim.age_at_diagnosis == 35
        assert claim.payout_fen == 30_000_000
        older_holder, older = covered_member(ctx, clock, birth_on=date(1980, 5, 1))
        assert report(ctx, older_holder, older.id).payout_fen == 10_000_000
        mild_holder, mild = covered_member(ctx, clock, birth_on=date(1995, 5, 1))
        assert report(ctx, mild_holder, mild.id, illness_code="MI01").payout_fen == 5_000_000

    def test_an_illness_outside_the_catalogue_is_refused(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        with pytest.raises(DomainError) as refused:
            report(ctx, holder, membership.id, illness_code="FLU")
        assert (refused.value.code, refused.value.field) == ("illness_not_covered", "illness_code")

    def test_in_the_waiting_period_only_accidents_may_claim(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))
        assert (
            report(ctx, holder, membership.id, diagnosed_on=TODAY, accident=True).state
            is ClaimState.SUBMITTED
        )
        ill_holder = account(ctx)
        ill = enroll(ctx, ill_holder, date(1991, 5, 1))
        closed = report(ctx, ill_holder, ill.id, diagnosed_on=TODAY)
        assert (closed.state, closed.payout_fen, closed.decision_reason) == (
            ClaimState.CLOSED_REJECTED,
            0,
            "waiting_period",
        )

    def test_diagnosis_on_day_90_is_waiting_and_on_day_91_is_covered(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))
        other = enroll(ctx, holder, date(2015, 5, 1), relation=Relation.CHILD, name="张小华")
        clock.advance(timedelta(days=100))
        on_day_90 = report(ctx, holder, membership.id, diagnosed_on=TODAY + timedelta(days=90))
        assert on_day_90.state is ClaimState.CLOSED_REJECTED
        on_day_91 = report(ctx, holder, other.id, diagnosed_on=TODAY + timedelta(days=91))
        assert on_day_91.state is ClaimState.SUBMITTED

    def test_a_claim_after_the_180_day_deadline_is_refused(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        clock.advance(timedelta(days=200))
        with pytest.raises(DomainError) as refused:
            report(ctx, holder, membership.id, diagnosed_on=TODAY + timedelta(days=19))
        assert refused.value.code == "claim_deadline_passed"
        report(ctx, holder, membership.id, diagnosed_on=TODAY + timedelta(days=20))

    def test_illness_before_joining_is_not_covered(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        with pytest.raises(DomainError) as refused:
            report(ctx, holder, membership.id, diagnosed_on=TODAY - timedelta(days=201))
        assert refused.value.code == "not_covered_member"

    def test_a_member_who_left_may_claim_for_an_illness_diagnosed_while_covered(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        change_membership(ctx, holder, membership.id, MembershipEvent.LEAVE)
        clock.advance(timedelta(days=5))
        report(ctx, holder, membership.id, diagnosed_on=TODAY - timedelta(days=1))

    def test_illness_diagnosed_after_leaving_is_not_covered(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        change_membership(ctx, holder, membership.id, MembershipEvent.LEAVE)
        clock.advance(timedelta(days=5))
        with pytest.raises(DomainError) as refused:
            report(ctx, holder, membership.id, diagnosed_on=TODAY + timedelta(days=2))
        assert refused.value.code == "not_covered_member"

    def test_a_second_open_claim_is_refused(self, ctx: ServiceContext, clock: FixedClock) -> None:
        holder, membership = covered_member(ctx, clock)
        report(ctx, holder, membership.id)
        with pytest.raises(Conflict) as refused:
            report(ctx, holder, membership.id, illness_code="CI03")
        assert refused.value.code == "duplicate_open_claim"

    def test_a_severe_payout_ends_cover_and_refuses_new_claims(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        operator = staff(ctx, Role.OPERATOR)
        change_membership(ctx, operator, membership.id, MembershipEvent.SEVERE_PAYOUT)
        with pytest.raises(DomainError) as refused:
            report(ctx, holder, membership.id)
        assert refused.value.code == "severe_payout_made"

    def test_a_suspended_member_cannot_claim_until_they_pay(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        change_membership(ctx, staff(ctx, Role.OPERATOR), membership.id, MembershipEvent.SUSPEND)
        with pytest.raises(DomainError) as refused:
            report(ctx, holder, membership.id)
        assert refused.value.code == "membership_suspended"

    def test_only_the_payer_of_the_membership_may_report(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        _, membership = covered_member(ctx, clock)
        with refused("membership_not_found", NotFound):
            report(ctx, account(ctx), membership.id)

    def test_a_retried_report_with_the_same_key_files_one_claim(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        request = ClaimReport(membership.id, "CI02", TODAY, "医院", False)
        first = report_claim(ctx, holder, request, idempotency_key="claim-1")
        assert report_claim(ctx, holder, request, idempotency_key="claim-1") == first
        with ctx.reading() as session:
            assert session.scalar(select(func.count()).select_from(Claim)) == 1


class TestDecision:
    def test_the_full_path_to_approval_through_publicity(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        through_investigation(ctx, ref)
        approver = staff(ctx, Role.REVIEWER)
        decided = decide_claim(ctx, approver, ref, approve=True)
        assert decided.state is ClaimState.APPROVAL_PROPOSED
        assert decided.publicity_on == date(2026, 3, 7)  # the next of the 7th and 21st
        operator = staff(ctx, Role.OPERATOR)
        assert run_publicity(ctx, "xhb-main", operator).published == 0  # not yet the 7th
        clock.set(datetime(2026, 3, 6, 16, 0, tzinfo=UTC))  # 00:00 on 7 March in Shanghai
        assert run_publicity(ctx, "xhb-main", operator).published == 1
        notice = cases_in_publicity(ctx, "xhb-main")
        assert [(c.ref, c.name_masked, c.payout_fen, c.illness_en) for c in notice] == [
            (ref, "张*华", 30_000_000, "Severe acute myocardial infarction")
        ]
        clock.set(datetime(2026, 3, 9, 15, 59, tzinfo=UTC))  # 23:59 on 9 March: still open
        assert run_publicity(ctx, "xhb-main", operator).approved == 0
        clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))  # 00:00 on 10 March: three days passed
        assert run_publicity(ctx, "xhb-main", operator).approved == 1
        approved = get_claim(ctx, holder, ref)
        assert approved.state is ClaimState.APPROVED
        assert approved.approved_at == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)

    def test_every_transition_leaves_a_timeline_row_a_log_leaf_and_a_notice(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        through_investigation(ctx, ref)
        decide_claim(
            ctx,
            staff(ctx, Role.REVIEWER),
            ref,
            approve=False,
            reason_code=RejectionReason.PRE_EXISTING_CONDITION,
            note="the records show treatment before joining",
        )
        timeline = claim_timeline(ctx, holder, ref)
        assert [t.event for t in timeline] == [
            "report",
            "start_review",
            "assign_investigation",
            "file_report",
            "reject",
        ]
        assert timeline[-1].reason_code == "pre_existing_condition"
        assert "investigation recommends" not in " ".join(t.note or "" for t in timeline)
        with ctx.reading() as session:
            leaves = session.scalars(
                select(LogEntry.leaf_data).where(
                    LogEntry.subject_ref == ref, LogEntry.leaf_type == "claim_event"
                )
            ).all()
            # Issue 14: the rejection is also a claim_decision leaf, in the same transaction.
            decision = session.scalars(
                select(LogEntry.leaf_data).where(
                    LogEntry.subject_ref == ref, LogEntry.leaf_type == "claim_decision"
                )
            ).one()
            notices = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.account_id == holder.account_id,
                    Notification.subject_type == "claim",
                )
            )
        assert len(leaves) == 5
        assert b"pre_existing_condition" in leaves[-1]
        assert b'"decision":"rejected"' in decision and b"pre_existing_condition" in decision
        assert "张".encode() not in b"".join(leaves)  # no personal data on the public log
        assert notices == 5  # claim received (issue 17) + the 4 transitions

    def test_whoever_investigated_a_claim_cannot_approve_it(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        reviewer = staff(ctx, Role.REVIEWER)
        desk_investigator = staff(ctx, Role.REVIEWER)
        start_review(ctx, reviewer, ref)
        assign_investigation(ctx, reviewer, ref, desk_investigator.account_id)
        file_investigation_report(
            ctx, desk_investigator, ref, "documents are consistent", "approve"
        )
        with pytest.raises(Forbidden) as refused:
            decide_claim(ctx, desk_investigator, ref, approve=True)
        assert refused.value.code == "separated_duties"
        assert decide_claim(ctx, reviewer, ref, approve=True).state is ClaimState.APPROVAL_PROPOSED

    def test_an_investigator_cannot_decide_at_all(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        _, investigator = through_investigation(ctx, ref)
        with refused("forbidden", Forbidden):
            decide_claim(ctx, investigator, ref, approve=True)

    def test_a_rejection_needs_a_reason_code_and_words(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        through_investigation(ctx, ref)
        approver = staff(ctx, Role.REVIEWER)
        with pytest.raises(DomainError) as refused:
            decide_claim(ctx, approver, ref, approve=False, note="no")
        assert refused.value.field == "reason_code"
        with pytest.raises(DomainError) as refused:
            decide_claim(ctx, approver, ref, approve=False, reason_code=RejectionReason.FRAUD)
        assert refused.value.code == "note_required"
        assert refused.value.field == "note"

    def test_investigator_requests_documents_and_the_member_answers(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        reviewer = staff(ctx, Role.REVIEWER)
        investigator = staff(ctx, Role.INVESTIGATOR)
        other_investigator = staff(ctx, Role.INVESTIGATOR)
        start_review(ctx, reviewer, ref)
        assign_investigation(ctx, reviewer, ref, investigator.account_id)
        with refused("not_assigned", Forbidden):
            request_documents(ctx, other_investigator, ref, "please upload the pathology report")
        waiting = request_documents(ctx, investigator, ref, "please upload the pathology report")
        assert waiting.state is ClaimState.AWAITING_DOCUMENTS
        assert provide_documents(ctx, holder, ref, "uploaded").state is ClaimState.INVESTIGATING

    def test_assigning_someone_who_is_not_an_investigator_is_refused(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        reviewer = staff(ctx, Role.REVIEWER)
        start_review(ctx, reviewer, ref)
        with pytest.raises(DomainError) as refused:
            assign_investigation(ctx, reviewer, ref, account(ctx).account_id)
        assert refused.value.code == "not_an_investigator"

    def test_members_cannot_review_and_cannot_see_other_families_claims(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        with refused("forbidden", Forbidden):
            start_review(ctx, holder, ref)
        with refused("claim_not_found", NotFound):
            get_claim(ctx, account(ctx), ref)
        with refused("forbidden", Forbidden):
            work_queue(ctx, holder)

    def test_a_member_may_withdraw_before_a_decision(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        assert withdraw_claim(ctx, holder, ref).state is ClaimState.WITHDRAWN
        report(ctx, holder, membership.id)  # no longer an open claim

    def test_work_queue_filters_by_state_and_assignment(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        refs = []
        for _ in range(3):
            holder, membership = covered_member(ctx, clock)
            refs.append(report(ctx, holder, membership.id).ref)
        reviewer = staff(ctx, Role.REVIEWER)
        investigator = staff(ctx, Role.INVESTIGATOR)
        start_review(ctx, reviewer, refs[0])
        assign_investigation(ctx, reviewer, refs[0], investigator.account_id)
        assert [q.ref for q in work_queue(ctx, reviewer, states=[ClaimState.SUBMITTED])] == refs[1:]
        assert [q.ref for q in work_queue(ctx, investigator, assigned_to_me=True)] == refs[:1]


class TestPublicityAndObjections:
    def published(self, ctx: ServiceContext, clock: FixedClock) -> str:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        through_investigation(ctx, ref)
        decide_claim(ctx, staff(ctx, Role.REVIEWER), ref, approve=True)
        clock.set(datetime(2026, 3, 7, 1, 0, tzinfo=UTC))
        run_publicity(ctx, "xhb-main", staff(ctx, Role.OPERATOR))
        return ref

    def test_a_covered_member_objects_once_and_an_upheld_objection_sends_it_back(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        ref = self.published(ctx, clock)
        objector, _ = covered_member(ctx, clock)
        objection = object_to_claim(ctx, objector, ref, "I know this person was ill before joining")
        with pytest.raises(Conflict) as refused:
            object_to_claim(ctx, objector, ref, "and I say it again, louder this time")
        assert refused.value.code == "already_objected"
        reviewed = review_objection(
            ctx,
            staff(ctx, Role.REVIEWER),
            objection.id,
            uphold=True,
            note="records confirm an earlier diagnosis",
        )
        assert reviewed.state == "upheld"
        assert get_claim(ctx, staff(ctx, Role.REVIEWER), ref).state is ClaimState.RE_REVIEW

    def test_a_pending_objection_holds_the_case_past_the_window_until_reviewed(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        ref = self.published(ctx, clock)
        objector, _ = covered_member(ctx, clock)
        objection = object_to_claim(ctx, objector, ref, "the hospital named does not exist")
        operator = staff(ctx, Role.OPERATOR)
        clock.set(datetime(2026, 3, 10, 1, 0, tzinfo=UTC))
        assert run_publicity(ctx, "xhb-main", operator).held_by_objections == 1
        review_objection(
            ctx,
            staff(ctx, Role.REVIEWER),
            objection.id,
            uphold=False,
            note="the hospital is real; the records check out",
        )
        assert run_publicity(ctx, "xhb-main", operator).approved == 1

    def test_objections_close_with_the_window_in_the_plans_time_zone(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        ref = self.published(ctx, clock)
        objector, _ = covered_member(ctx, clock)
        clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))  # 00:00 on 10 March in Shanghai
        with pytest.raises(DomainError) as refused:
            object_to_claim(ctx, objector, ref, "too late but I still want to say it")
        assert refused.value.code == "publicity_closed"
        clock.set(datetime(2026, 3, 9, 15, 59, tzinfo=UTC))
        object_to_claim(ctx, objector, ref, "just in time: this looks wrong to me")

    def test_members_in_their_waiting_period_cannot_object(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        ref = self.published(ctx, clock)
        newcomer = account(ctx)
        enroll(ctx, newcomer, date(1991, 1, 1))
        with refused("not_covered_member", Forbidden):
            object_to_claim(ctx, newcomer, ref, "I just joined and already object")

    def test_the_public_notice_shows_no_personal_data(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        self.published(ctx, clock)
        [case] = cases_in_publicity(ctx, "xhb-main")
        text = repr(case)
        assert "张三华" not in text and "hospital" not in text.lower()
        assert case.province_en == "Zhejiang" and case.age == 35


def test_transition_rows_match_the_claims_state(ctx: ServiceContext, clock: FixedClock) -> None:
    holder, membership = covered_member(ctx, clock)
    ref = report(ctx, holder, membership.id).ref
    through_investigation(ctx, ref)
    with ctx.reading() as session:
        claim = session.scalars(select(Claim).where(Claim.ref == ref)).one()
        last = session.scalars(
            select(ClaimEventRow)
            .where(ClaimEventRow.claim_id == claim.id)
            .order_by(ClaimEventRow.id.desc())
        ).first()
    assert last is not None and last.to_state == claim.state == ClaimState.RE_REVIEW


class TestRetries:
    def test_every_step_of_a_claim_retried_with_its_key_acts_once(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report(ctx, holder, membership.id).ref
        reviewer, investigator = staff(ctx, Role.REVIEWER), staff(ctx, Role.INVESTIGATOR)
        approver = staff(ctx, Role.REVIEWER)
        steps = [
            lambda key: start_review(ctx, reviewer, ref, idempotency_key=key),
            lambda key: assign_investigation(
                ctx, reviewer, ref, investigator.account_id, idempotency_key=key
            ),
            lambda key: request_documents(
                ctx, investigator, ref, "the discharge summary", idempotency_key=key
            ),
            lambda key: provide_documents(ctx, holder, ref, "uploaded", idempotency_key=key),
            lambda key: file_investigation_report(
                ctx,
                investigator,
                ref,
                "records confirm it",
                "approve",
                cost_fen=20_000,
                idempotency_key=key,
            ),
            lambda key: decide_claim(ctx, approver, ref, approve=True, idempotency_key=key),
        ]
        for number, step in enumerate(steps):
            first = step(f"step-{number}")
            clock.advance(timedelta(minutes=1))
            # A double click, a retry after a timeout: the same answer, and nothing happens twice.
            assert step(f"step-{number}") == first
        events = [entry.event for entry in claim_timeline(ctx, reviewer, ref)]
        assert len(events) == len(set(events)) == len(steps) + 1, events
        with ctx.reading() as session:
            # Counted among the claim's leaves: joins and plan versions are on the log too (#14).
            claim_leaves = select(func.count()).where(LogEntry.leaf_type == "claim_event")
            assert session.scalar(claim_leaves) == len(steps) + 1
