"""Issue 14: every join, change of a membership's state and published plan version is a leaf of
the transparency log, queued in the transaction of the change (a refused change writes none), with
no personal data; bulk paths build theirs in SQL exactly as `membership_event_leaf` does."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from tests.builders.claims import through_investigation
from tests.builders.wind_down import at
from tests.factories import (
    MAIN_PLAN,
    MARCH_7,
    account,
    close_on,
    covered_member,
    enroll,
    publish_demo_plans,
    resident_id,
    staff,
    use_rules,
)
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import LogEntry, Membership, Plan
from mutualaid.db.queries.memberships import advance_with_leaves
from mutualaid.domain.accounts import Role
from mutualaid.domain.calendars import local_date, start_of_day
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.memberships import MembershipEvent
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.member_imports import import_members
from mutualaid.services.enrollment.memberships import advance_memberships, change_membership
from mutualaid.services.plans.plans import plan_file, plan_file_sha256, publish_plan
from mutualaid.services.transparency.log import integrate_all
from mutualaid.transparency.leaves import decode_leaf, membership_events_leaves
from mutualaid.transparency.merkle import hash_leaf
from mutualaid.transparency.period_audit import audit_period

SHANGHAI_MIDNIGHT = timedelta(hours=8)


def leaves(ctx: ServiceContext, leaf_type: str) -> list[dict[str, str | int]]:
    """Every queued leaf of a type, decoded (which refuses any non-canonical bytes), after
    checking its stored hash."""
    with ctx.reading() as session:
        rows = session.execute(
            select(LogEntry.leaf_data, LogEntry.leaf_hash, LogEntry.subject_ref)
            .where(LogEntry.leaf_type == leaf_type)
            .order_by(LogEntry.id)
        ).all()
    found = []
    for data, hashed, subject_ref in rows:
        assert bytes(hashed) == hash_leaf(bytes(data))
        fields = dict(decode_leaf(bytes(data)).fields)
        if leaf_type == "membership_event":
            assert subject_ref == fields["membership_ref"]
        found.append(fields)
    return found


@pytest.fixture
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


@pytest.mark.usefixtures("plans")
class TestJoins:
    def test_a_join_is_a_leaf_naming_the_membership_never_the_person(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1), name="张三华")
        [leaf] = leaves(ctx, "membership_event")
        assert leaf == {
            "plan_ref": MAIN_PLAN,
            "membership_ref": f"m-{membership.id}",
            "event": "join",
            "state": "waiting",
            "occurred_at": int(clock.now().timestamp()),
        }
        with ctx.reading() as session:
            data = b"".join(session.scalars(select(LogEntry.leaf_data)))
        assert "张".encode() not in data and b"1990" not in data

    def test_a_refused_join_writes_no_leaf(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        id_number = resident_id(date(1990, 5, 1))
        enroll(ctx, holder, date(1990, 5, 1), id_number=id_number)
        with refused("already_member", Conflict):
            enroll(ctx, holder, date(1990, 5, 1), id_number=id_number, relation="spouse")  # type: ignore[arg-type]
        with pytest.raises(DomainError):
            enroll(ctx, account(ctx), date(1940, 5, 1))  # too old
        assert len(leaves(ctx, "membership_event")) == 1

    def test_an_imported_member_joins_the_log_with_the_import(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        rows = "".join(
            f"1380000{index:04d},张三华,{resident_id(date(1985, 1, 1 + index))},self,2025-06-01\n"
            for index in range(5)
        )
        text = "payer_phone,full_name,id_number,relation,joined_on\n" + rows
        report = import_members(ctx, SYSTEM_ACTOR, MAIN_PLAN, io.StringIO(text), io.StringIO())
        assert report.imported == 5
        found = leaves(ctx, "membership_event")
        joined_at = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp() - 8 * 3600)
        assert [(f["event"], f["state"], f["occurred_at"]) for f in found] == [
            ("join", "covered", joined_at)
        ] * 5
        assert len({f["membership_ref"] for f in found}) == 5


@pytest.mark.usefixtures("plans")
class TestChanges:
    def test_leaving_is_a_leaf_and_a_refused_change_writes_none(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))
        change_membership(ctx, holder, membership.id, MembershipEvent.LEAVE)
        with refused("invalid_transition", DomainError):
            change_membership(ctx, holder, membership.id, MembershipEvent.LEAVE)
        found = leaves(ctx, "membership_event")
        assert [(f["event"], f["state"]) for f in found] == [("join", "waiting"), ("leave", "left")]
        assert found[1]["occurred_at"] == int(clock.now().timestamp())

    def test_the_daily_job_writes_batch_leaves_set_based_at_the_effective_day(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        start = clock.now()
        waiting = enroll(ctx, holder, date(1990, 5, 1))
        also_waiting = enroll(ctx, account(ctx), date(1991, 5, 1))
        # Aged 59 when joining: the exit age (60 in the demo plan) is reached on 20 May 2026.
        old = enroll(ctx, account(ctx), date(1966, 5, 20))
        clock.set(start + timedelta(days=60))
        advance_memberships(ctx, MAIN_PLAN)
        clock.set(start + timedelta(days=200))
        advance_memberships(ctx, MAIN_PLAN)
        # One leaf per (event, effective day), listing the memberships by id, none per member.
        assert [f["event"] for f in leaves(ctx, "membership_event")] == ["join"] * 3
        found = {f["event"]: f for f in leaves(ctx, "membership_events")}
        assert set(found) == {"waiting_period_over", "age_out"}
        covered = found["waiting_period_over"]
        assert covered["membership_ids"] == f"{waiting.id},{also_waiting.id}"
        zone_midnight = start_of_day(waiting.covered_from_on, _zone())
        assert covered["occurred_at"] == int(zone_midnight.timestamp())
        assert (covered["state"], covered["plan_ref"]) == ("covered", MAIN_PLAN)
        aged = found["age_out"]
        assert (aged["membership_ids"], aged["state"]) == (str(old.id), "ended")
        assert aged["occurred_at"] == int(start_of_day(old.ages_out_on, _zone()).timestamp())
        # Run again: nothing changes, nothing new on the log.
        advance_memberships(ctx, MAIN_PLAN)
        assert len(leaves(ctx, "membership_events")) == 2

    def test_a_large_day_is_cut_into_batches_built_by_the_database_as_in_python(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        """The SQL (PostgreSQL: in the UPDATE's own statement) makes the bytes and hash that
        `membership_events_leaves` makes, ids ascending, `batch_size` to a leaf, one day each."""
        start = clock.now()
        first = [enroll(ctx, account(ctx), date(1990, 5, 1 + i)).id for i in range(3)]
        clock.set(start + timedelta(days=1))
        second = [enroll(ctx, account(ctx), date(1990, 6, 1 + i)).id for i in range(2)]
        clock.set(start + timedelta(days=400))
        now = clock.now()
        zone = _zone()
        with ctx.sessions.begin() as session:
            plan = session.scalars(select(Plan).where(Plan.code == MAIN_PLAN)).one()
            counts = advance_with_leaves(
                session,
                plan_id=plan.id,
                plan_ref=MAIN_PLAN,
                today=local_date(now, zone),
                zone=zone,
                now=now,
                batch_size=2,
            )
            covered_from = dict(
                session.execute(
                    select(Membership.id, Membership.covered_from_on).where(
                        Membership.id.in_(first + second)
                    )
                ).all()
            )
        assert counts == (0, 5)
        expected = []
        for ids in (first, second):
            instant = int(start_of_day(covered_from[ids[0]], zone).timestamp())
            assert {covered_from[i] for i in ids} == {covered_from[ids[0]]}
            expected += membership_events_leaves(
                MAIN_PLAN, "waiting_period_over", "covered", instant, ids[::-1], batch_size=2
            )
        with ctx.reading() as session:
            rows = session.execute(
                select(LogEntry.leaf_data, LogEntry.leaf_hash, LogEntry.subject_ref)
                .where(LogEntry.leaf_type == "membership_events")
                .order_by(LogEntry.id)
            ).all()
        assert [bytes(r[0]) for r in rows] == expected  # 2 + 1 ids, then 2
        assert [bytes(r[1]) for r in rows] == [hash_leaf(data) for data in expected]
        assert {r[2] for r in rows} == {MAIN_PLAN}


@pytest.mark.usefixtures("plans")
class TestAuditFromBatches:
    def test_a_period_recomputes_from_batch_leaves_and_an_altered_batch_fails(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        """Two members age out by the daily job (one age_out batch leaf) before the lock of
        7 March; `verify period` counts the others, and a copy of the log with one membership
        taken out of, or put into, that batch no longer agrees."""
        at(clock, date(2025, 6, 1))
        for _ in range(3):
            enroll(ctx, account(ctx), date(1990, 5, 1))
        old = [enroll(ctx, account(ctx), date(1966, 3, 1)).id for _ in range(2)]
        at(clock, date(2026, 3, 3))
        result = advance_memberships(ctx, MAIN_PLAN)
        assert result.aged_out == 2
        view = close_on(ctx, clock, MARCH_7)
        assert view.member_count == 3
        integrate_all(ctx)
        with ctx.reading() as session:
            entries = [
                bytes(d)
                for d in session.scalars(
                    select(LogEntry.leaf_data)
                    .where(LogEntry.leaf_index.is_not(None))
                    .order_by(LogEntry.leaf_index)
                )
            ]
        decoded = [decode_leaf(data) for data in entries]
        files = {
            str(leaf.fields["rules_sha256"]): plan_file(ctx, str(leaf.fields["rules_sha256"]))
            for leaf in decoded
            if leaf.type == "plan_version"
        }
        honest = audit_period(decoded, files, MAIN_PLAN, MARCH_7)
        assert honest.agrees, honest.differences
        assert honest.recomputed["member_count"] == 3
        [batch] = [
            i
            for i, leaf in enumerate(decoded)
            if leaf.type == "membership_events" and leaf.fields["event"] == "age_out"
        ]
        assert decoded[batch].fields["membership_ids"] == f"{old[0]},{old[1]}"
        first_member = min(
            int(str(leaf.fields["membership_ref"]).removeprefix("m-"))
            for leaf in decoded
            if leaf.type == "membership_event"
        )
        for forged_ids, count in ((str(old[1]), 4), (f"{first_member},{old[0]},{old[1]}", 2)):
            forged = list(decoded)
            forged[batch] = decode_leaf(
                entries[batch].replace(
                    f'"membership_ids":"{old[0]},{old[1]}"'.encode(),
                    f'"membership_ids":"{forged_ids}"'.encode(),
                )
            )
            audit = audit_period(forged, files, MAIN_PLAN, MARCH_7)
            assert not audit.agrees
            [differs] = [d for d in audit.differences if d.figure == "member_count"]
            assert (differs.recomputed, differs.committed) == (count, 3)


def _zone() -> ZoneInfo:
    return ZoneInfo("Asia/Shanghai")


class TestPlanVersions:
    def test_each_published_version_is_a_leaf_naming_the_exact_file(
        self, ctx: ServiceContext
    ) -> None:
        source = read_plan_file("xhb-main.toml")
        publish_plan(ctx, None, source)
        publish_plan(ctx, None, source)  # unchanged rules: no new version, no leaf
        use_rules(ctx, fee_bp=500)
        found = leaves(ctx, "plan_version")
        assert [(f["plan_ref"], f["version"]) for f in found] == [(MAIN_PLAN, 1), (MAIN_PLAN, 2)]
        assert found[0]["rules_sha256"] == hashlib.sha256(source.encode()).hexdigest()
        assert found[0]["effective_on"] == "2026-03-01"
        for leaf in found:
            data = plan_file(ctx, str(leaf["rules_sha256"]))
            assert plan_file_sha256(data.decode()) == leaf["rules_sha256"]

    def test_a_refused_plan_file_writes_no_leaf(self, ctx: ServiceContext) -> None:
        with pytest.raises(DomainError):
            publish_plan(ctx, None, "code = 'x'\n")
        assert leaves(ctx, "plan_version") == []


@pytest.mark.usefixtures("plans")
class TestClaimDecisions:
    def test_a_rejection_is_a_decision_leaf_and_a_refused_decision_writes_none(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        ref = report_claim(
            ctx,
            holder,
            ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=2), "医院"),
        ).ref
        _, investigator = through_investigation(ctx, ref)
        with pytest.raises(DomainError):
            decide_claim(ctx, investigator, ref, approve=False, reason_code="not_covered")
        assert leaves(ctx, "claim_decision") == []
        decide_claim(
            ctx,
            staff(ctx, Role.REVIEWER),
            ref,
            approve=False,
            reason_code=RejectionReason.PRE_EXISTING_CONDITION,
            note="treated before joining",
        )
        assert leaves(ctx, "claim_decision") == [
            {
                "claim_ref": ref,
                "decision": "rejected",
                "aid_fen": 0,
                "decided_at": int(clock.now().timestamp()),
                "stage": "review",
                "reason_code": "pre_existing_condition",
                "plan_ref": MAIN_PLAN,
                "funding": "shared",
            }
        ]
