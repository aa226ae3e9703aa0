"""The end of a plan: announcement, end of cover, refunds, run-off, closure and the archive."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.builders.wind_down import LOG_KEY, ORIGIN, WITNESS_KEYS, at, publish_rules
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    account,
    approved_claim,
    close_on,
    covered_member,
    enroll,
    members,
    publish_demo_plans,
    staff,
)
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    Claim,
    CollectionFailure,
    LogEntry,
    Membership,
    Notification,
    PrepaidBalance,
    PrepaidRefund,
)
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.schemes import PlanStatus
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.prepaid import prepaid_balance, top_up
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import MembershipView
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.transparency.checkpoints import LogConfig, WitnessEndpoint
from mutualaid.services.wind_down.wind_down import (
    announce_end,
    check_minimum_membership,
    close_plan,
    end_cover,
    wind_down_status,
)
from mutualaid.transparency.archives import verify_archive
from mutualaid.transparency.leaves import decode_leaf
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.verification import TrustPolicy

PREPAID = f"plan:{MAIN_PLAN}:prepaid"


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def report(ctx: ServiceContext, holder, membership_id: int, diagnosed_on: date) -> str:  # type: ignore[no-untyped-def]
    return report_claim(
        ctx,
        holder,
        ClaimReport(
            membership_id=membership_id,
            illness_code="CI02",
            diagnosed_on=diagnosed_on,
            hospital="浙江大学医学院附属第一医院",
        ),
    ).ref


def announced_with_a_case(
    ctx: ServiceContext, clock: FixedClock, count: int, end_on: date, **rules: str
) -> list[tuple[Actor, MembershipView]]:
    """`count` members, a 10-yuan case before the lock of 7 March, and the end announced."""
    publish_rules(ctx, **rules)
    people = members(ctx, clock, count)
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=2))
    announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, end_on, "closing")
    return people


class TestAnnouncement:
    def test_after_the_announcement_nobody_joins_and_every_member_is_told(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        people = members(ctx, clock, 3)
        view = announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 4, 15), "too few members")
        assert (view.status, view.end_on, view.run_off_until_on) == (
            PlanStatus.WINDING_DOWN,
            date(2026, 4, 15),
            date(2026, 10, 11),
        )
        with pytest.raises(DomainError) as error:
            enroll(ctx, account(ctx), date(1990, 1, 1))
        assert (error.value.code, error.value.field) == ("plan_winding_down", "plan_code")
        with ctx.reading() as session:
            told = set(
                session.scalars(
                    select(Notification.account_id).where(
                        Notification.kind == "plan_wind_down_announced"
                    )
                )
            )
        assert told == {holder.account_id for holder, _ in people}

    def test_announcing_again_is_idempotent_and_another_date_is_refused(
        self, ctx: ServiceContext
    ) -> None:
        first = announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 4, 15), "closing")
        assert announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 4, 15), "closing") == first
        with pytest.raises(Conflict) as error:
            announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 5, 1), "closing")
        assert error.value.code == "already_announced"

    def test_the_end_date_must_respect_the_plans_notice(self, ctx: ServiceContext) -> None:
        publish_rules(ctx, notice_days=30)
        for end_on, code in (
            (date(2026, 3, 1), "end_date_not_in_future"),
            (date(2026, 3, 30), "notice_too_short"),
        ):
            with pytest.raises(DomainError) as error:
                announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, end_on, "closing")
            assert (error.value.code, error.value.field) == (code, "end_on")
        assert wind_down_status(ctx, MAIN_PLAN).status is PlanStatus.OPEN
        with pytest.raises(DomainError) as error:
            announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 4, 30), "  ")
        assert error.value.code == "reason_required"

    def test_sponsor_paid_the_shares_stop_at_once(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        announced_with_a_case(ctx, clock, 4, date(2026, 4, 15))
        period = close_on(ctx, clock, MARCH_7)
        assert (period.share_fen, period.total_charged_fen, period.sponsored_aid_fen) == (
            0,
            0,
            1000,
        )

    def test_shared_until_end_members_keep_sharing_until_the_end_date(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        people = announced_with_a_case(ctx, clock, 4, date(2026, 4, 15), rule="shared_until_end")
        holder, membership = people[1]
        assert not report_claim(
            ctx,
            holder,
            ClaimReport(
                membership_id=membership.id,
                illness_code="CI02",
                diagnosed_on=date(2026, 2, 20),
                hospital="医院",
            ),
        ).sponsored
        period = close_on(ctx, clock, MARCH_7)
        assert (period.share_fen, period.total_charged_fen) == (270, 1080)


class TestEndOfCover:
    def test_cover_cannot_end_before_the_end_date_or_with_a_period_uncollected(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        members(ctx, clock, 2)
        with refused("not_announced", NotFound):
            end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 15), "closing")
        with pytest.raises(Conflict) as error:
            end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        assert error.value.code == "end_not_reached"
        at(clock, date(2026, 3, 15))
        with pytest.raises(Conflict) as error:
            end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        assert (error.value.code, "2026-03-07" in error.value.message) == (
            "periods_unsettled",
            True,
        )
        close_on(ctx, clock, MARCH_7)  # closed, not collected
        at(clock, date(2026, 3, 15))
        with pytest.raises(Conflict) as error:
            end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        assert (error.value.code, error.value.message) == (
            "periods_unsettled",
            f"collect period(s) {MAIN_PLAN}/2026-03-07 first",
        )
        assert wind_down_status(ctx, MAIN_PLAN).status is PlanStatus.WINDING_DOWN

    def test_cover_ends_for_everyone_and_run_off_claims_are_sponsor_paid(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder, membership = covered_member(ctx, clock)
        members(ctx, clock, 2)
        announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 15), "closing")
        close_on(ctx, clock, MARCH_7)
        at(clock, date(2026, 3, 14))
        collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, SimulatedProvider())
        at(clock, date(2026, 3, 15))
        view = end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        assert (view.status, view.memberships_ended, view.active_members) == (
            PlanStatus.RUN_OFF,
            3,
            0,
        )
        assert end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN) == view  # idempotent
        with ctx.reading() as session:
            assert set(session.execute(select(Membership.state, Membership.end_reason)).all()) == {
                ("ended", "plan_ended")
            }
            # Issue 14: the ends of cover are on the log, written once: one membership_events
            # leaf listing the three memberships, effective at the end of cover.
            ended_ids = sorted(session.scalars(select(Membership.id)))
            events = session.scalars(
                select(LogEntry.leaf_data).where(LogEntry.leaf_type == "membership_events")
            )
            ended = [
                fields
                for fields in (decode_leaf(data).fields for data in events)
                if fields["event"] == "cover_ended"
            ]
        end_at = int(datetime(2026, 3, 14, 16, tzinfo=UTC).timestamp())  # 00:00 on the 15th
        assert [(f["state"], f["occurred_at"], f["membership_ids"]) for f in ended] == [
            ("ended", end_at, ",".join(map(str, ended_ids)))
        ]
        at(clock, date(2026, 4, 20))
        ref = report(ctx, holder, membership.id, date(2026, 3, 14))  # the last day of cover
        with ctx.reading() as session:
            assert session.scalar(select(Claim.sponsored).where(Claim.ref == ref)) is True
        with pytest.raises(DomainError) as error:
            report(ctx, holder, membership.id, date(2026, 3, 15))
        assert error.value.code == "not_covered_member"

    def test_shares_still_unpaid_at_the_end_are_written_off_to_the_sponsor(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        people = announced_with_a_case(ctx, clock, 3, date(2026, 3, 15), rule="shared_until_end")
        close_on(ctx, clock, MARCH_7)
        at(clock, date(2026, 3, 14))
        collect_period(
            ctx,
            SYSTEM_ACTOR,
            MAIN_PLAN,
            MARCH_7,
            SimulatedProvider(failing={people[2][0].account_id}),
        )
        at(clock, date(2026, 3, 15))
        view = end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        assert view.written_off_fen == 360
        with ctx.reading() as session:
            assert (
                balances(session, f"plan:{MAIN_PLAN}:members").get(f"plan:{MAIN_PLAN}:members", 0)
                == 0
            )
            assert session.scalar(select(CollectionFailure.status)) == "written_off"


class TestRefunds:
    def test_every_prepaid_balance_is_refunded_exactly_and_nothing_more_can_be_paid_in(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        publish_rules(ctx, funding_model="prepaid", rule="shared_until_end")
        people = members(ctx, clock, 4)
        for n, (holder, _) in enumerate(people):
            top_up(ctx, holder, MAIN_PLAN, 1_000 + 7 * n)
        approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=2))
        announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 15), "closing")
        close_on(ctx, clock, MARCH_7)  # 1080 over 4: 270 each
        at(clock, date(2026, 3, 14))
        collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
        at(clock, date(2026, 3, 15))
        view = end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        expected = {holder.account_id: 1_000 + 7 * n - 270 for n, (holder, _) in enumerate(people)}
        assert (view.refunds, view.refunded_fen) == (4, sum(expected.values()))
        with ctx.reading() as session:
            refunds = dict(
                session.execute(
                    select(PrepaidRefund.payer_account_id, PrepaidRefund.amount_fen)
                ).all()
            )
            assert refunds == expected
            assert session.scalar(select(func.sum(PrepaidBalance.balance_fen))) == 0
            assert balances(session, PREPAID).get(PREPAID, 0) == 0
            assert unbalanced_transactions(session) == []
        assert prepaid_balance(ctx, people[0][0], MAIN_PLAN).balance_fen == 0
        with pytest.raises(DomainError) as error:
            top_up(ctx, people[0][0], MAIN_PLAN, 100)
        assert error.value.code == "plan_ended"

    def test_a_balance_out_of_step_with_the_ledger_refunds_nothing(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        publish_rules(ctx, funding_model="prepaid")
        people = members(ctx, clock, 2)
        for holder, _ in people:
            top_up(ctx, holder, MAIN_PLAN, 500)
        with ctx.sessions.begin() as session:  # someone edited a balance behind the ledger's back
            row = session.scalars(select(PrepaidBalance)).first()
            assert row is not None
            row.balance_fen += 1
        announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 5), "closing")
        at(clock, date(2026, 3, 5))
        with pytest.raises(Conflict) as error:
            end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        assert error.value.code == "refunds_do_not_balance"
        with ctx.reading() as session:
            assert session.scalar(select(func.count()).select_from(PrepaidRefund)) == 0
            assert session.scalar(select(func.sum(PrepaidBalance.balance_fen))) == 1001
        assert wind_down_status(ctx, MAIN_PLAN).status is PlanStatus.WINDING_DOWN


class TestClosing:
    def test_a_plan_closes_only_after_its_run_off_with_a_cosigned_checkpoint_and_an_archive(
        self,
        ctx: ServiceContext,
        clock: FixedClock,
        tmp_path: Path,
        witnesses: tuple[LogConfig, httpx.Client, TrustPolicy],
    ) -> None:
        config, http, policy = witnesses
        members(ctx, clock, 2)
        announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 5), "closing")
        archive = tmp_path / "archive"
        with pytest.raises(Conflict) as error:
            close_plan(ctx, SYSTEM_ACTOR, MAIN_PLAN, config, archive, http=http)
        assert error.value.code == "invalid_plan_transition"
        at(clock, date(2026, 3, 5))
        end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        with pytest.raises(Conflict) as error:
            close_plan(ctx, SYSTEM_ACTOR, MAIN_PLAN, config, archive, http=http)
        assert (error.value.code, "2026-08-31" in error.value.message) == ("run_off_open", True)
        at(clock, date(2026, 9, 1))
        view = close_plan(ctx, SYSTEM_ACTOR, MAIN_PLAN, config, archive, http=http)
        assert view.status is PlanStatus.CLOSED and view.final_checkpoint_size is not None
        report = verify_archive(archive, policy)
        assert report.ok, report.checks
        with pytest.raises(DomainError) as refused:
            enroll(ctx, account(ctx), date(1990, 1, 1))
        assert refused.value.code == "plan_closed"

    def test_an_open_claim_holds_the_closure(
        self,
        ctx: ServiceContext,
        clock: FixedClock,
        tmp_path: Path,
        witnesses: tuple[LogConfig, httpx.Client, TrustPolicy],
    ) -> None:
        config, http, _ = witnesses
        holder, membership = covered_member(ctx, clock)
        report(ctx, holder, membership.id, date(2026, 2, 26))
        announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 5), "closing")
        at(clock, date(2026, 3, 5))
        end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        at(clock, date(2026, 9, 1))
        with pytest.raises(Conflict) as error:
            close_plan(ctx, SYSTEM_ACTOR, MAIN_PLAN, config, tmp_path / "a", http=http)
        assert error.value.code == "claims_open"

    def test_a_checkpoint_without_the_witness_quorum_does_not_close_the_plan(
        self,
        ctx: ServiceContext,
        clock: FixedClock,
        tmp_path: Path,
        witnesses: tuple[LogConfig, httpx.Client, TrustPolicy],
    ) -> None:
        config, http, _ = witnesses
        unreachable = LogConfig(
            LOG_KEY,
            (
                *config.witnesses[:1],
                WitnessEndpoint("w9", WITNESS_KEYS[1].verifier(), "http://w9.invalid"),
            ),
            quorum=2,
        )
        announce_end(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 5), "closing")
        at(clock, date(2026, 3, 5))
        end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        at(clock, date(2026, 9, 1))
        only_w0 = httpx.MockTransport(
            lambda request: (
                http.post(str(request.url), content=request.content)
                if request.url.host == "w0.test"
                else httpx.Response(503)
            )
        )
        with httpx.Client(transport=only_w0) as partial, pytest.raises(Conflict) as error:
            close_plan(ctx, SYSTEM_ACTOR, MAIN_PLAN, unreachable, tmp_path / "a", http=partial)
        assert error.value.code == "final_checkpoint_not_cosigned"
        assert wind_down_status(ctx, MAIN_PLAN).status is PlanStatus.RUN_OFF


class TestArchive:
    @pytest.fixture
    def archive(
        self,
        ctx: ServiceContext,
        clock: FixedClock,
        tmp_path: Path,
        witnesses: tuple[LogConfig, httpx.Client, TrustPolicy],
    ) -> Path:
        config, http, _ = witnesses
        announced_with_a_case(ctx, clock, 3, date(2026, 3, 10), rule="shared_until_end")
        close_on(ctx, clock, MARCH_7)
        at(clock, date(2026, 3, 9))
        collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, SimulatedProvider())
        from mutualaid.services.collections.payouts import pay_approved_claims

        pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
        at(clock, date(2026, 3, 10))
        end_cover(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        at(clock, date(2026, 9, 10))
        out = tmp_path / "archive"
        close_plan(ctx, SYSTEM_ACTOR, MAIN_PLAN, config, out, http=http)
        return out

    def test_the_archive_holds_the_log_and_the_notices_and_verifies_without_a_database(
        self, archive: Path, witnesses: tuple[LogConfig, httpx.Client, TrustPolicy]
    ) -> None:
        report = verify_archive(archive, witnesses[2])
        assert report.ok, report.checks
        assert [c.name for c in report.checks] == [
            "manifest",
            "checkpoint",
            "root",
            "hash tiles",
            "notices",
            "ledger",
        ]
        notice = json.loads((archive / "notices/2026-03-07.json").read_text())
        assert (notice["period"]["total_charged_fen"], len(notice["cases"])) == (1080, 1)
        assert (archive / "tile/entries/000.p").is_dir() and (archive / "index.html").is_file()

    def test_a_changed_notice_or_a_missing_tile_or_another_log_key_fails(
        self, archive: Path, witnesses: tuple[LogConfig, httpx.Client, TrustPolicy]
    ) -> None:
        policy = witnesses[2]
        other = TrustPolicy(
            ORIGIN,
            generate_signer_key(ORIGIN, seed=b"\x99" * 32).verifier(),
            policy.witness_keys,
            2,
        )
        assert [c.name for c in verify_archive(archive, other).checks if not c.passed] == [
            "checkpoint"
        ]
        name = archive / "notices/2026-03-07.json"
        notice = json.loads(name.read_text())
        notice["period"]["total_charged_fen"] -= 3
        name.write_text(json.dumps(notice))
        failed = {c.name for c in verify_archive(archive, policy).checks if not c.passed}
        assert failed == {"manifest"}
        manifest = json.loads((archive / "manifest.json").read_text())
        from mutualaid.transparency.archives import sha256_hex

        manifest["files"]["notices/2026-03-07.json"] = sha256_hex(name.read_bytes())
        (archive / "manifest.json").write_text(json.dumps(manifest))
        failing = [c for c in verify_archive(archive, policy).checks if not c.passed]
        assert [c.name for c in failing] == ["notices"]
        assert "total_charged_fen is 1077, the log says 1080" in failing[0].detail
        for tile in (archive / "tile").rglob("*"):
            if tile.is_file() and "entries" in tile.parts:
                tile.unlink()
                break
        assert "manifest" in {
            c.name for c in verify_archive(archive, policy).checks if not c.passed
        }


class TestMinimumMembership:
    def test_below_the_minimum_after_the_grace_days_the_operators_are_alerted(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        publish_rules(ctx, minimum=5)
        operator = staff(ctx, Role.OPERATOR)
        members(ctx, clock, 3)
        assert check_minimum_membership(ctx, SYSTEM_ACTOR, MAIN_PLAN).status == "filling_up"
        at(clock, date(2026, 3, 20))
        check = check_minimum_membership(ctx, SYSTEM_ACTOR, MAIN_PLAN)
        assert (check.status, check.active_members, check.action) == ("below", 3, "alerted")
        with ctx.reading() as session:
            assert (
                session.scalar(
                    select(Notification.account_id).where(Notification.kind == "plan_below_minimum")
                )
                == operator.account_id
            )
        assert wind_down_status(ctx, MAIN_PLAN).status is PlanStatus.OPEN
        members(ctx, clock, 2)
        assert check_minimum_membership(ctx, SYSTEM_ACTOR, MAIN_PLAN).action == "none"

    def test_a_plan_whose_rule_is_to_wind_down_announces_its_end(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        publish_rules(ctx, minimum=5, below_minimum="wind_down", notice_days=30)
        members(ctx, clock, 3)
        at(clock, date(2026, 3, 20))
        assert (
            check_minimum_membership(ctx, SYSTEM_ACTOR, MAIN_PLAN).action == "wind_down_announced"
        )
        view = wind_down_status(ctx, MAIN_PLAN)
        assert (view.status, view.end_on) == (PlanStatus.WINDING_DOWN, date(2026, 4, 19))
