"""Risk controls over the database: a generated population with planted fraud patterns, the
scoring hooks on filing and on evidence, feedback, routing, the operator's figures, and proven
fraud with its appeal."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select
from tests.factories import (
    MAIN_PLAN,
    account,
    covered_member,
    enroll,
    publish_demo_plans,
    resident_id,
    staff,
)
from tests.risk_population import generate, insert_population, quality, table

from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    AuditEvent,
    Claim,
    ClaimRisk,
    ClaimRiskSignal,
    Evidence,
    JurorCertification,
    Plan,
)
from mutualaid.db.queries.plans import rules_of
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState, RejectionReason
from mutualaid.domain.errors import Conflict, DomainError, Forbidden
from mutualaid.domain.memberships import MembershipEvent, Relation
from mutualaid.domain.risk import CODES, ClaimLinks, SignalCode
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, file_investigation_report, start_review
from mutualaid.services.claims.routing import route_investigation
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import change_membership
from mutualaid.services.juries.eligibility import eligible_jurors
from mutualaid.services.plans.plans import publish_plan
from mutualaid.services.risk.figures import risk_operations, weight_report
from mutualaid.services.risk.fraud_records import (
    appeal_fraud_record,
    decide_appeal,
    flag_fraud,
    my_fraud_records,
)
from mutualaid.services.risk.reviews import claim_graph, claim_risk, record_feedback
from mutualaid.services.risk.risk import on_evidence_added, rescore_plan

TODAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def file(
    ctx: ServiceContext,
    holder: Actor,
    membership_id: int,
    links: ClaimLinks | None = None,
    **changes: object,
) -> str:
    fields: dict[str, object] = {
        "illness_code": "CI02",
        "diagnosed_on": TODAY - timedelta(days=3),
        "hospital": "浙江大学医学院附属第一医院",
    } | changes
    return report_claim(
        ctx, holder, ClaimReport(membership_id=membership_id, links=links, **fields)
    ).ref  # type: ignore[arg-type]


def codes_of(ctx: ServiceContext, ref: str) -> set[str]:
    return {s.code for s in claim_risk(ctx, staff(ctx, Role.REVIEWER), ref).signals}


# --- the generated population -------------------------------------------------------------------------

# Every signal must find (nearly) all of its planted pattern; on honest claims the strong signals
# must stay silent and the weak ones (with innocent explanations, hence low weights) nearly so.
MIN_RECALL = 0.9
MAX_HONEST_RATE = {
    SignalCode.SOON_AFTER_WAITING: 0.04,
    SignalCode.SHARED_ADDRESS: 0.03,
    SignalCode.DIAGNOSIS_NEAR_JOINING: 0.01,
    SignalCode.RECORDS_BEFORE_JOINING: 0.01,
}
STRONG_HONEST_RATE = 0.005


def test_every_signal_fires_on_its_planted_pattern_and_stays_quiet_on_honest_claims(
    ctx: ServiceContext,
) -> None:
    population = generate(honest=400, seed=9)
    ids = insert_population(ctx, population)
    operator = staff(ctx, Role.OPERATOR)
    result = rescore_plan(ctx, operator, MAIN_PLAN)
    assert result.scored == len(population.claims)
    with ctx.reading() as session:
        rows = session.execute(select(ClaimRiskSignal.claim_id, ClaimRiskSignal.code)).all()
        states = set(session.scalars(select(Claim.state).distinct()))
    row_of = {claim_id: i for i, claim_id in enumerate(ids.values())}
    fired = {code: np.zeros(len(population.claims), dtype=bool) for code in CODES}
    for claim_id, code in rows:
        fired[SignalCode(code)][row_of[claim_id]] = True
    report = quality(population, fired)
    print(
        f"\nRisk signals on {len(population.claims)} claims "
        f"({int(population.honest().sum())} honest), through the database:\n{table(report)}"
    )
    for q in report:
        assert q.recall >= MIN_RECALL, q
        assert q.honest_rate <= MAX_HONEST_RATE.get(q.code, STRONG_HONEST_RATE), q
    assert states == {"submitted"}  # a score never decides a claim


def stored_risk(ctx: ServiceContext) -> dict[int, tuple[object, ...]]:
    """Every stored score: claim id -> (score, level, mode, {signal: (weight, details)})."""
    with ctx.reading() as session:
        signals: dict[int, dict[str, object]] = {}
        for row in session.scalars(select(ClaimRiskSignal)):
            signals.setdefault(row.claim_id, {})[row.code] = (row.weight, row.details)
        return {
            r.claim_id: (r.score, r.level, r.mode, signals.get(r.claim_id, {}))
            for r in session.scalars(select(ClaimRisk))
        }


def test_scoring_one_claim_from_its_neighbours_gives_exactly_what_scoring_the_whole_plan_gives(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    population = generate(honest=400, seed=9)
    insert_population(ctx, population)
    with ctx.sessions.begin() as session:  # each claim as if its evidence just arrived
        for claim in session.scalars(select(Claim).order_by(Claim.reported_on, Claim.id)).all():
            on_evidence_added(session, claim, clock.now())
    one_by_one = stored_risk(ctx)
    rescore_plan(ctx, staff(ctx, Role.OPERATOR), MAIN_PLAN)
    whole_plan = stored_risk(ctx)
    assert len(one_by_one) == len(whole_plan) == len(population.claims)
    mismatched = {
        i: (one_by_one[i], whole_plan[i]) for i in whole_plan if one_by_one[i] != whole_plan[i]
    }
    assert not mismatched
    fired = {code for *_, signals in whole_plan.values() for code in signals}  # type: ignore[attr-defined]
    assert fired == {str(code) for code in CODES}  # every signal is part of the comparison


# --- scoring when a claim is filed and when evidence is added ------------------------------------------


def test_a_payee_account_shared_by_two_families_flags_both_claims_and_is_stored_only_hashed(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    first_holder, first = covered_member(ctx, clock)
    second_holder, second = covered_member(ctx, clock)
    first_ref = file(ctx, first_holder, first.id, ClaimLinks(payee_account="6222 0210 0000 1234"))
    assert SignalCode.SHARED_PAYEE not in codes_of(ctx, first_ref)
    second_ref = file(
        ctx, second_holder, second.id, ClaimLinks(payee_account="6222-0210-0000-1234")
    )
    assert SignalCode.SHARED_PAYEE in codes_of(ctx, second_ref)
    assert SignalCode.SHARED_PAYEE in codes_of(ctx, first_ref)  # the earlier open claim, re-scored
    view = claim_risk(ctx, staff(ctx, Role.REVIEWER), second_ref)
    payee = next(s for s in view.signals if s.code == SignalCode.SHARED_PAYEE)
    assert payee.explanation_en == "the payee account also appears on claims of 1 other family"
    assert view.score == 35 and view.level == "medium" and view.mode == "desk"
    with ctx.reading() as session:
        stored = session.scalars(select(Claim.payee_account_hash)).all()
    assert len(set(stored)) == 1 and "1234" not in stored[0]
    graph = claim_graph(ctx, staff(ctx, Role.REVIEWER), second_ref)
    assert {n.ref for n in graph.nodes} == {first_ref, second_ref}
    assert [e.kinds for e in graph.edges] == [["payee"]]


def test_one_family_filing_for_two_relatives_is_not_a_link(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    holder, own = covered_member(ctx, clock)
    clock.set(clock.now() - timedelta(days=200))
    spouse = enroll(ctx, holder, date(1991, 2, 3), relation="spouse", name="李四")  # type: ignore[arg-type]
    clock.set(datetime(2026, 3, 1, 2, tzinfo=UTC))
    links = ClaimLinks(contact_phone="13800000000", payee_account="62220210", device_id="phone-1")
    file(ctx, holder, own.id, links)
    ref = file(ctx, holder, spouse.id, links)
    assert codes_of(ctx, ref) & {"shared_phone", "shared_payee", "shared_device"} == set()


def picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).resize((640, 480))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = (int(v) for v in rng.integers(0, 600, 2))
        draw.rectangle(
            (x, y % 440, x + 40, y % 440 + 30), fill=tuple(int(v) for v in rng.integers(0, 255, 3))
        )
    return image


def encoded(image: Image.Image, kind: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def test_a_resaved_copy_of_another_patients_image_is_a_near_duplicate_and_the_same_file_is_exact(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    refs = []
    for _ in range(4):
        holder, membership = covered_member(ctx, clock)
        refs.append((holder, file(ctx, holder, membership.id)))
    original = encoded(picture(1))
    add_evidence(ctx, refs[0][0], refs[0][1], [original], "image/png", "诊断证明")
    # Re-saved as a smaller JPEG: another file, nearly the same picture.
    copy = encoded(picture(1).resize((480, 360)), "JPEG", quality=70)
    add_evidence(ctx, refs[1][0], refs[1][1], [copy], "image/jpeg", "诊断证明")
    add_evidence(ctx, refs[2][0], refs[2][1], [original], "image/png", "诊断证明")
    add_evidence(ctx, refs[3][0], refs[3][1], [encoded(picture(2))], "image/png", "诊断证明")
    assert SignalCode.NEAR_DUPLICATE_IMAGE in codes_of(ctx, refs[1][1])
    assert SignalCode.SAME_FILE in codes_of(ctx, refs[2][1])
    assert codes_of(ctx, refs[3][1]) == set()
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).where(Evidence.phash.is_not(None))) == 4


def test_a_medical_record_dated_before_joining_contradicts_the_declaration(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    holder, membership = covered_member(ctx, clock)
    ref = file(ctx, holder, membership.id)
    add_evidence(
        ctx,
        holder,
        ref,
        [b"%PDF-1.4 record"],
        "application/pdf",
        "门诊病历",
        document_on=TODAY - timedelta(days=260),
    )
    view = claim_risk(ctx, staff(ctx, Role.REVIEWER), ref)
    record = next(s for s in view.signals if s.code == SignalCode.RECORDS_BEFORE_JOINING)
    assert record.explanation_en == "a medical record is dated 60 days before joining"
    assert get_state(ctx, ref) == ClaimState.SUBMITTED


def test_a_claim_just_after_the_waiting_period_is_flagged_with_the_day(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    holder = account(ctx)
    clock.set(clock.now() - timedelta(days=100))
    membership = enroll(ctx, holder, date(1990, 5, 1))
    clock.set(datetime(2026, 3, 1, 2, tzinfo=UTC))
    ref = file(ctx, holder, membership.id, diagnosed_on=TODAY - timedelta(days=5))
    view = claim_risk(ctx, staff(ctx, Role.REVIEWER), ref)
    soon = next(s for s in view.signals if s.code == SignalCode.SOON_AFTER_WAITING)
    assert soon.explanation_zh == "等待期结束后第 5 天确诊"


def test_link_data_that_is_too_long_is_refused_with_its_field(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    holder, membership = covered_member(ctx, clock)
    with pytest.raises(DomainError) as caught:
        file(ctx, holder, membership.id, ClaimLinks(doctor="x" * 101))
    assert (caught.value.code, caught.value.field) == ("invalid_doctor", "doctor")
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 0


def get_state(ctx: ServiceContext, ref: str) -> str:
    with ctx.reading() as session:
        return str(session.scalar(select(Claim.state).where(Claim.ref == ref)))


# --- feedback, routing, the operator's figures ---------------------------------------------------------


def linked_pair(ctx: ServiceContext, clock: FixedClock, **links: str) -> tuple[str, str]:
    refs = []
    for _ in range(2):
        holder, membership = covered_member(ctx, clock)
        refs.append(file(ctx, holder, membership.id, ClaimLinks(**links)))
    return refs[0], refs[1]


def test_reviewers_feedback_is_counted_per_signal_in_the_weight_report(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    first, second = linked_pair(ctx, clock, payee_account="62220210", device_id="dev-9")
    reviewer = staff(ctx, Role.REVIEWER)
    record_feedback(ctx, reviewer, first, "shared_payee", True)
    record_feedback(ctx, reviewer, second, "shared_payee", True)
    record_feedback(ctx, reviewer, second, "shared_device", True)
    record_feedback(ctx, reviewer, second, "shared_device", False, "a shared family tablet")
    with pytest.raises(DomainError) as caught:
        record_feedback(ctx, reviewer, first, "same_file", True)
    assert caught.value.code == "signal_not_fired"
    with pytest.raises(Forbidden):
        record_feedback(ctx, account(ctx), first, "shared_payee", True)
    report = {a.code: a for a in weight_report(ctx, staff(ctx, Role.OPERATOR), MAIN_PLAN)}
    assert report[SignalCode.SHARED_PAYEE].useful_rate == 1.0
    assert report[SignalCode.SHARED_DEVICE].useful_rate == 0.0  # the reviewer changed their mind
    assert report[SignalCode.SHARED_PAYEE].suggested == 35  # too little feedback to move a weight
    assert claim_risk(ctx, reviewer, second).signals[0].my_feedback is True


def test_high_risk_goes_to_a_field_investigator_and_low_risk_to_a_desk_review(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    risky, _ = linked_pair(ctx, clock, payee_account="62220210", device_id="dev-9")
    holder, membership = covered_member(ctx, clock)
    plain = file(ctx, holder, membership.id)
    reviewer = staff(ctx, Role.REVIEWER)
    for ref in (risky, plain):
        start_review(ctx, reviewer, ref)
    with pytest.raises(DomainError) as caught:
        route_investigation(ctx, reviewer, risky)
    assert caught.value.code == "no_investigator"
    investigator = staff(ctx, Role.INVESTIGATOR)
    desk = staff(ctx, Role.REVIEWER)
    field_route = route_investigation(ctx, reviewer, risky)
    assert (field_route.mode, field_route.investigator_id, field_route.score) == (
        "field",
        investigator.account_id,
        60,
    )
    desk_route = route_investigation(ctx, reviewer, plain)
    assert (desk_route.mode, desk_route.investigator_id) == ("desk", desk.account_id)
    assert get_state(ctx, risky) == get_state(ctx, plain) == ClaimState.INVESTIGATING
    file_investigation_report(
        ctx, investigator, risky, "payee belongs to an agent", "reject", cost_fen=80_000
    )
    file_investigation_report(ctx, desk, plain, "documents consistent", "approve", cost_fen=5_001)
    decide_claim(
        ctx,
        reviewer,
        risky,
        approve=False,
        reason_code=RejectionReason.FRAUD,
        note="the payee account belongs to a claims agent",
    )
    figures = risk_operations(ctx, staff(ctx, Role.OPERATOR), MAIN_PLAN)
    modes = {m.mode: m for m in figures.modes}
    assert (modes["field"].cases, modes["field"].cost_per_case_fen) == (1, 80_000)
    assert (modes["desk"].cases, modes["desk"].cost_per_case_fen) == (1, 5_001)
    assert (
        figures.flagged,
        figures.flagged_decided,
        figures.flagged_rejected,
        figures.flagged_rejected_fraud,
    ) == (2, 1, 1, 1)
    assert (figures.unflagged_decided, figures.unflagged_rejected) == (0, 0)


def test_a_plan_version_that_tunes_risk_applies_to_the_next_scores_and_routing_of_every_member(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    members = [covered_member(ctx, clock) for _ in range(2)]  # joined under version 1
    tuned = publish_plan(
        ctx,
        None,
        read_plan_file("xhb-main.toml")
        + "\n[risk]\nfield_threshold = 30\n\n[risk.weights]\nshared_device = 0\n",
    )
    assert tuned.plan.version == 2
    links = ClaimLinks(payee_account="62220210", device_id="dev-9")
    first, second = (file(ctx, holder, membership.id, links) for holder, membership in members)
    reviewer = staff(ctx, Role.REVIEWER)
    for ref in (first, second):
        view = claim_risk(ctx, reviewer, ref)
        weights = {s.code: s.weight for s in view.signals}
        # Under the defaults: 35 + 25 = 60; the device link now adds nothing.
        assert weights == {"shared_payee": 35, "shared_device": 0}
        assert (view.score, view.level, view.mode) == (35, "medium", "field")  # 35 >= 30
    with ctx.reading() as session:
        assert set(session.scalars(select(Claim.plan_version))) == {1}
    start_review(ctx, reviewer, second)
    investigator = staff(ctx, Role.INVESTIGATOR)
    staff(ctx, Role.REVIEWER)
    routed = route_investigation(ctx, reviewer, second)
    assert (routed.mode, routed.investigator_id, routed.score) == (
        "field",
        investigator.account_id,
        35,
    )
    report = {a.code: a for a in weight_report(ctx, staff(ctx, Role.OPERATOR), MAIN_PLAN)}
    assert (report[SignalCode.SHARED_DEVICE].weight, report[SignalCode.SHARED_PAYEE].weight) == (
        0,
        35,
    )


# --- proven fraud ---------------------------------------------------------------------------------------


def test_proven_fraud_costs_juror_status_and_rejoining_until_an_appeal_succeeds(
    ctx: ServiceContext,
    clock: FixedClock,
) -> None:
    holder = account(ctx)
    id_number = resident_id(date(1990, 5, 1))
    clock.set(clock.now() - timedelta(days=200))
    membership = enroll(ctx, holder, date(1990, 5, 1), id_number=id_number)
    clock.set(datetime(2026, 3, 1, 2, tzinfo=UTC))
    with ctx.sessions.begin() as session:
        session.add(
            JurorCertification(account_id=holder.account_id, passed_at=clock.now(), score=10)
        )
    ref = file(ctx, holder, membership.id)
    reviewer, operator, other_operator = (
        staff(ctx, Role.REVIEWER),
        staff(ctx, Role.OPERATOR),
        staff(ctx, Role.OPERATOR),
    )
    with pytest.raises(DomainError) as caught:
        flag_fraud(ctx, operator, ref, "forged diagnosis certificate, hospital confirmed")
    assert caught.value.code == "fraud_not_proven"
    start_review(ctx, reviewer, ref)
    decide_claim(
        ctx,
        reviewer,
        ref,
        approve=False,
        reason_code=RejectionReason.FRAUD,
        note="the hospital has no record of this diagnosis",
    )

    def is_juror() -> bool:
        with ctx.reading() as session:
            plan = session.scalar(select(Plan).where(Plan.code == MAIN_PLAN))
            assert plan is not None
            rules = rules_of(session, plan.id, plan.current_version)
            return (
                session.scalar(eligible_jurors(plan.id, TODAY, rules, None, holder.account_id))
                is not None
            )

    assert is_juror()
    record = flag_fraud(ctx, operator, ref, "forged diagnosis certificate, hospital confirmed")
    with pytest.raises(Conflict):
        flag_fraud(ctx, operator, ref, "forged diagnosis certificate, hospital confirmed")
    assert not is_juror()
    change_membership(ctx, holder, membership.id, MembershipEvent.LEAVE)
    with pytest.raises(Forbidden) as excluded:
        enroll(ctx, holder, date(1990, 5, 1), id_number=id_number)
    assert (excluded.value.code, excluded.value.field) == ("excluded_for_fraud", "id_number")
    with pytest.raises(Forbidden) as newcomer:  # nor may the account enroll someone new
        enroll(ctx, holder, date(2015, 6, 1), relation=Relation.CHILD)
    assert newcomer.value.code == "excluded_for_fraud"

    assert [r.id for r in my_fraud_records(ctx, holder)] == [record.id]
    appeal = appeal_fraud_record(ctx, holder, record.id, "the hospital misfiled my records")
    with pytest.raises(Conflict):
        appeal_fraud_record(ctx, holder, record.id, "the hospital misfiled my records")
    with pytest.raises(Forbidden) as same_person:
        decide_appeal(ctx, operator, appeal.id, uphold=True, note="records found")
    assert same_person.value.code == "separated_duties"
    decided = decide_appeal(ctx, other_operator, appeal.id, uphold=True, note="records found")
    assert decided.state == "upheld"
    assert is_juror() is False  # the member left the plan, so not a juror for that reason
    enroll(ctx, holder, date(1990, 5, 1), id_number=id_number)
    with ctx.reading() as session:
        actions = set(
            session.scalars(
                select(AuditEvent.action).where(AuditEvent.subject_type == "fraud_record")
            )
        )
    assert actions == {"fraud_flagged", "fraud_appealed", "fraud_appeal_upheld"}


def test_a_dismissed_appeal_keeps_the_exclusion(ctx: ServiceContext, clock: FixedClock) -> None:
    holder, membership = covered_member(ctx, clock)
    ref = file(ctx, holder, membership.id)
    reviewer = staff(ctx, Role.REVIEWER)
    start_review(ctx, reviewer, ref)
    decide_claim(
        ctx,
        reviewer,
        ref,
        approve=False,
        reason_code=RejectionReason.FRAUD,
        note="forged certificate",
    )
    record = flag_fraud(ctx, staff(ctx, Role.OPERATOR), ref, "forged certificate, confirmed")
    appeal = appeal_fraud_record(ctx, holder, record.id, "I did not forge anything at all")
    decide_appeal(ctx, staff(ctx, Role.OPERATOR), appeal.id, uphold=False, note="confirmed again")
    assert my_fraud_records(ctx, holder)[0].revoked_at is None
    assert my_fraud_records(ctx, holder)[0].appeal_state == "dismissed"
