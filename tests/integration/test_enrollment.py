from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.factories import account, enroll, publish_demo_plans, resident_id
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import AuditEvent, IdempotencyKey, Membership, Person
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.memberships import MembershipEvent, MembershipState, Relation
from mutualaid.services.context import ServiceContext
from mutualaid.services.credit_checks import SimulatedCreditBureau
from mutualaid.services.enrollment.memberships import (
    advance_memberships,
    change_membership,
    get_membership,
    list_family_memberships,
)

TODAY = date(2026, 3, 1)  # the clock fixture's date in Shanghai


@pytest.fixture
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def count(ctx: ServiceContext, model: type) -> int:
    with ctx.reading() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.usefixtures("plans")
class TestEnrollment:
    def test_a_member_enrolls_themself_and_their_family_and_pays_for_all(
        self, ctx: ServiceContext
    ) -> None:
        holder = account(ctx)
        me = enroll(ctx, holder, date(1990, 5, 1))
        child = enroll(
            ctx, holder, TODAY - timedelta(days=30), relation=Relation.CHILD, name="张小雨"
        )
        spouse = enroll(ctx, holder, date(1991, 1, 1), relation=Relation.SPOUSE, name="李梅")
        parent = enroll(ctx, holder, date(1967, 3, 2), relation=Relation.PARENT, name="张建国")
        family = list_family_memberships(ctx, holder)
        assert [m.id for m in family] == [me.id, child.id, spouse.id, parent.id]
        assert {m.state for m in family} == {MembershipState.WAITING}
        assert me.joined_on == TODAY and me.waiting_ends_on == TODAY + timedelta(days=90)
        assert me.covered_from_on == TODAY + timedelta(days=91)
        assert parent.ages_out_on == date(2027, 3, 2)
        assert child.name_masked == "张*雨"
        with ctx.reading() as session:
            payers = set(session.scalars(select(Membership.payer_account_id)))
        assert payers == {holder.account_id}

    def test_the_identity_number_is_never_stored_in_plain_text(self, ctx: ServiceContext) -> None:
        number = resident_id(date(1990, 5, 1))
        enroll(ctx, account(ctx), date(1990, 5, 1), id_number=number, name="王芳")
        with ctx.reading() as session:
            person = session.scalars(select(Person)).one()
        assert number not in person.identity_hash
        assert number.encode() not in person.identity_ciphertext
        assert "王芳".encode() not in person.name_ciphertext
        assert ctx.protector.decrypt(person.identity_ciphertext) == number
        assert ctx.protector.decrypt(person.name_ciphertext) == "王芳"

    def test_a_wrong_id_number_is_refused_and_nothing_is_written(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        good = resident_id(date(1990, 5, 1))
        bad = good[:-1] + ("0" if good[-1] != "0" else "1")
        with pytest.raises(DomainError) as refused:
            enroll(ctx, holder, date(1990, 5, 1), id_number=bad)
        assert (refused.value.code, refused.value.field) == ("invalid_id_number", "id_number")
        assert count(ctx, Person) == 0 and count(ctx, Membership) == 0

    def test_a_yes_in_the_health_declaration_refuses_with_the_question(
        self, ctx: ServiceContext
    ) -> None:
        with pytest.raises(DomainError) as refused:
            enroll(
                ctx,
                account(ctx),
                date(1990, 5, 1),
                answers={
                    "long_medication": True,
                    "long_hospital_stay": False,
                    "tumour": False,
                    "heart_disease": False,
                    "diabetes": False,
                },
            )
        assert refused.value.code == "health_declaration"
        assert refused.value.field == "health_answers.long_medication"
        assert count(ctx, Membership) == 0

    @pytest.mark.parametrize(
        ("birth_on", "code"),
        [
            (TODAY - timedelta(days=29), "too_young"),
            (date(1966, 3, 1), "too_old"),
        ],
    )
    def test_age_limits_refuse_with_a_reason(
        self, ctx: ServiceContext, birth_on: date, code: str
    ) -> None:
        with pytest.raises(DomainError) as refused:
            enroll(ctx, account(ctx), birth_on, relation=Relation.CHILD)
        assert refused.value.code == code

    def test_one_active_membership_per_person_per_plan(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        number = resident_id(date(1990, 5, 1))
        enroll(ctx, holder, date(1990, 5, 1), id_number=number)
        with pytest.raises(Conflict) as refused:
            enroll(ctx, holder, date(1990, 5, 1), id_number=number)
        assert refused.value.code == "already_member"
        assert count(ctx, Membership) == 1

    def test_the_same_person_may_join_another_plan_as_a_separate_pool(
        self, ctx: ServiceContext
    ) -> None:
        holder = account(ctx)
        number = resident_id(date(1966, 6, 1))
        enroll(ctx, holder, date(1966, 6, 1), id_number=number, relation=Relation.PARENT)
        elderly_answers = {"tumour": False, "long_hospital_stay": False}
        with pytest.raises(DomainError) as refused:
            enroll(
                ctx,
                holder,
                date(1966, 6, 1),
                id_number=number,
                relation=Relation.PARENT,
                plan="xhb-elderly-cancer",
                answers=elderly_answers,
            )
        assert refused.value.code == "too_young"  # 59: the pools have their own rules
        old = resident_id(date(1960, 6, 1))
        elderly = enroll(
            ctx,
            holder,
            date(1960, 6, 1),
            id_number=old,
            relation=Relation.PARENT,
            plan="xhb-elderly-cancer",
            answers=elderly_answers,
        )
        assert elderly.plan_code == "xhb-elderly-cancer"

    def test_another_account_cannot_enroll_a_person_already_registered(
        self, ctx: ServiceContext
    ) -> None:
        number = resident_id(date(1990, 5, 1))
        enroll(ctx, account(ctx), date(1990, 5, 1), id_number=number)
        with pytest.raises(Conflict) as refused:
            enroll(ctx, account(ctx), date(1990, 5, 1), id_number=number)
        assert refused.value.code == "identity_unavailable"

    def test_an_account_has_one_self(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        enroll(ctx, holder, date(1990, 5, 1))
        with pytest.raises(Conflict) as refused:
            enroll(ctx, holder, date(1992, 5, 1))
        assert refused.value.field == "relation"

    def test_a_closed_plan_takes_no_one(self, ctx: ServiceContext) -> None:
        from mutualaid.db.models import Plan

        with ctx.sessions.begin() as session:
            session.scalars(select(Plan).where(Plan.code == "xhb-main")).one().status = "closed"
        with pytest.raises(DomainError) as refused:
            enroll(ctx, account(ctx), date(1990, 5, 1))
        assert refused.value.code == "plan_closed"

    def test_unknown_plan_is_not_found(self, ctx: ServiceContext) -> None:
        with refused("plan_not_found", NotFound):
            enroll(ctx, account(ctx), date(1990, 5, 1), plan="no-such-plan")

    def test_a_credit_check_below_650_refuses_when_configured(self, ctx: ServiceContext) -> None:
        ctx.credit_check = SimulatedCreditBureau()
        scores = {}
        for _ in range(12):
            number = resident_id(date(1990, 5, 1))
            scores[number] = SimulatedCreditBureau().score(
                ctx.protector.identity_hash(number), date(1990, 5, 1)
            )
        low = next(n for n, s in scores.items() if s is not None and s < 650)
        high = next(n for n, s in scores.items() if s is not None and s >= 650)
        with pytest.raises(DomainError) as refused:
            enroll(ctx, account(ctx), date(1990, 5, 1), id_number=low)
        assert refused.value.code == "credit_check_failed"
        enroll(ctx, account(ctx), date(1990, 5, 1), id_number=high)

    def test_every_enrollment_writes_an_audit_row(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))
        with ctx.reading() as session:
            row = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "member_enrolled")
            ).one()
        assert (row.actor_account_id, row.subject_id) == (holder.account_id, membership.id)


@pytest.mark.usefixtures("plans")
class TestIdempotency:
    def test_a_retried_join_with_the_same_key_creates_one_membership(
        self, ctx: ServiceContext
    ) -> None:
        holder = account(ctx)
        number = resident_id(date(1990, 5, 1))
        first = enroll(ctx, holder, date(1990, 5, 1), id_number=number, key="join-1")
        again = enroll(ctx, holder, date(1990, 5, 1), id_number=number, key="join-1")
        assert again == first
        assert count(ctx, Membership) == 1 and count(ctx, IdempotencyKey) == 1

    def test_a_key_reused_for_another_request_is_refused(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        enroll(ctx, holder, date(1990, 5, 1), key="join-1")
        with pytest.raises(Conflict) as refused:
            enroll(ctx, holder, date(1991, 5, 1), relation=Relation.SPOUSE, key="join-1")
        assert refused.value.code == "idempotency_key_reused"
        assert count(ctx, Membership) == 1

    def test_a_refused_request_does_not_burn_its_key(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        with refused("health_answer_missing"):
            enroll(ctx, holder, date(1990, 5, 1), key="k", answers={"tumour": True})
        assert count(ctx, IdempotencyKey) == 0

    def test_a_retried_leave_acts_once(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))
        left = change_membership(
            ctx, holder, membership.id, MembershipEvent.LEAVE, idempotency_key="l"
        )
        assert (
            change_membership(
                ctx, holder, membership.id, MembershipEvent.LEAVE, idempotency_key="l"
            )
            == left
        )
        assert left.state is MembershipState.LEFT


@pytest.mark.usefixtures("plans")
class TestLifecycle:
    def test_leaving_and_rejoining_starts_a_new_waiting_period(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        number = resident_id(date(1990, 5, 1))
        first = enroll(ctx, holder, date(1990, 5, 1), id_number=number)
        clock.advance(timedelta(days=200))
        assert get_membership(ctx, holder, first.id).state is MembershipState.COVERED
        change_membership(ctx, holder, first.id, MembershipEvent.LEAVE, reason="too expensive")
        clock.advance(timedelta(days=1))
        again = enroll(ctx, holder, date(1990, 5, 1), id_number=number)
        assert again.id != first.id
        assert again.state is MembershipState.WAITING
        assert again.joined_on == TODAY + timedelta(days=201)
        assert get_membership(ctx, holder, first.id).state is MembershipState.LEFT

    def test_only_operators_suspend_and_reinstate(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        operator = account(ctx, Role.OPERATOR)
        membership = enroll(ctx, holder, date(1990, 5, 1))
        with pytest.raises(DomainError) as refused:
            change_membership(ctx, holder, membership.id, MembershipEvent.SUSPEND)
        assert refused.value.code == "forbidden"
        suspended = change_membership(ctx, operator, membership.id, MembershipEvent.SUSPEND)
        assert suspended.state is MembershipState.SUSPENDED
        removed = change_membership(ctx, operator, membership.id, MembershipEvent.REMOVE)
        assert (removed.state, removed.end_reason) == (MembershipState.ENDED, "removed_unpaid")

    def test_a_member_cannot_see_or_change_another_familys_membership(
        self, ctx: ServiceContext
    ) -> None:
        membership = enroll(ctx, account(ctx), date(1990, 5, 1))
        stranger = account(ctx)
        with refused("membership_not_found", NotFound):
            get_membership(ctx, stranger, membership.id)
        with refused("membership_not_found", NotFound):
            change_membership(ctx, stranger, membership.id, MembershipEvent.LEAVE)

    def test_the_daily_job_covers_after_day_90_and_ends_at_60(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        young = enroll(ctx, holder, date(1990, 5, 1))
        parent = enroll(ctx, holder, date(1966, 6, 1), relation=Relation.PARENT, name="张建国")
        clock.advance(timedelta(days=90))
        assert advance_memberships(ctx, "xhb-main").now_covered == 0
        clock.advance(timedelta(days=1))
        result = advance_memberships(ctx, "xhb-main")
        assert (result.now_covered, result.aged_out) == (2, 0)
        clock.set(datetime(2026, 5, 31, 15, 59, tzinfo=UTC))  # 23:59 on 31 May in Shanghai
        assert advance_memberships(ctx, "xhb-main").aged_out == 0
        clock.advance(timedelta(minutes=1))  # 00:00 on 1 June 2026, the 60th birthday
        assert advance_memberships(ctx, "xhb-main").aged_out == 1
        assert get_membership(ctx, holder, parent.id).end_reason == "aged_out"
        assert get_membership(ctx, holder, young.id).state is MembershipState.COVERED
        with ctx.reading() as session:
            actions = list(
                session.scalars(
                    select(AuditEvent.action).where(
                        AuditEvent.subject_id == parent.id, AuditEvent.subject_type == "membership"
                    )
                )
            )
        assert "membership_age_out" in actions

    def test_ageing_out_follows_the_birthday_in_the_plans_time_zone(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        parent = enroll(ctx, holder, date(1966, 6, 1), relation=Relation.PARENT)
        # 31 May 16:30 UTC is already 1 June 00:30 in Shanghai.
        clock.set(datetime(2026, 5, 31, 16, 30, tzinfo=UTC))
        assert get_membership(ctx, holder, parent.id).state is MembershipState.ENDED
        clock.set(datetime(2026, 5, 31, 15, 30, tzinfo=UTC))
        assert get_membership(ctx, holder, parent.id).state is MembershipState.COVERED
