"""Sponsored schemes and the end of a plan: the pure rules, with Hypothesis for the money."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.refusals import refused

from mutualaid.domain.apportionment import CapExcess, Cohort, apportion
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.memberships import MembershipState
from mutualaid.domain.schemes import (
    TRANSITIONS,
    MinimumStatus,
    PlanStatus,
    SchemeClaim,
    Sponsorship,
    SponsorshipKind,
    WindDownEvent,
    announcement_dates,
    check_refunds,
    join_refusal,
    minimum_status,
    parse_scheme,
    parse_scheme_toml,
    period_sponsorship,
    plan_transition,
    scheme_refusal,
    sponsor_pays_new_claims,
)
from mutualaid.transparency.archives import tile_refs

START = date(2020, 1, 31)
SCHEME = parse_scheme(
    {
        "code": "covid-19",
        "name_zh": "新冠",
        "name_en": "COVID-19",
        "starts_on": "2020-01-31",
        "payout_fen": 10_000_000,
        "new_member_min_days": 6,
    }
)
days = st.integers(-400, 400)


def claim(joined_on: date, diagnosed_on: date, **changes: object) -> SchemeClaim:
    fields: dict[str, object] = {
        "joined_on": joined_on,
        "diagnosed_on": diagnosed_on,
        "reported_on": max(diagnosed_on, joined_on) + timedelta(days=1),
        "ended_on": None,
        "ages_out_on": date(2060, 1, 1),
        "membership_state": MembershipState.COVERED,
        "has_open_claim": False,
        "deadline_days": 180,
    } | changes
    return SchemeClaim(**fields)  # type: ignore[arg-type]


@given(joined=days, waited=st.integers(0, 60))
def test_who_joined_after_the_start_is_covered_only_more_than_6_days_after_joining(
    joined: int, waited: int
) -> None:
    joined_on = START + timedelta(days=joined)
    diagnosed_on = max(joined_on + timedelta(days=waited), START)
    refusal = scheme_refusal(SCHEME, claim(joined_on, diagnosed_on))
    waiting = joined_on > START and (diagnosed_on - joined_on).days <= 6
    assert (refusal is not None and refusal[0] == "scheme_waiting_period") == waiting
    if not waiting:
        assert refusal is None


def test_the_6_day_boundary_and_the_scheme_dates() -> None:
    joined = START + timedelta(days=10)
    assert (
        scheme_refusal(SCHEME, claim(joined, joined + timedelta(days=6)))[0]
        == "scheme_waiting_period"
    )  # type: ignore[index]
    assert scheme_refusal(SCHEME, claim(joined, joined + timedelta(days=7))) is None
    assert (
        scheme_refusal(SCHEME, claim(START, START - timedelta(days=1)))[0] == "before_scheme_start"
    )  # type: ignore[index]
    ended = parse_scheme({**SCHEME.to_json(), "ends_on": "2020-12-31"})
    assert scheme_refusal(ended, claim(START, date(2021, 1, 1)))[0] == "after_scheme_end"  # type: ignore[index]
    late = claim(START, date(2020, 3, 1), reported_on=date(2020, 8, 29))
    assert scheme_refusal(SCHEME, late)[0] == "claim_deadline_passed"  # type: ignore[index]
    left = claim(START, date(2020, 3, 1), ended_on=date(2020, 3, 1))
    assert scheme_refusal(SCHEME, left)[0] == "not_covered_member"  # type: ignore[index]
    suspended = claim(START, date(2020, 3, 1), membership_state=MembershipState.SUSPENDED)
    assert scheme_refusal(SCHEME, suspended)[0] == "membership_suspended"  # type: ignore[index]


def test_a_scheme_file_is_checked_strictly_and_fingerprinted_stably() -> None:
    text = (
        'code = "covid-19"\nname_zh = "新冠"\nname_en = "COVID-19"\nstarts_on = 2020-01-31\n'
        "payout_fen = 10_000_000\n"
    )
    assert parse_scheme_toml(text).fingerprint() == SCHEME.fingerprint()
    with pytest.raises(DomainError) as error:
        parse_scheme_toml(text.replace("payout_fen = 10_000_000", 'payout_fen = "100000"'))
    assert (error.value.code, error.value.field) == ("invalid_scheme", "payout_fen")
    with pytest.raises(DomainError) as error:
        parse_scheme_toml(text + "ends_on = 2019-12-31\n")
    assert error.value.code == "invalid_scheme"
    assert error.value.field == "ends_on"


@given(
    aid=st.integers(1, 10**9),
    cases=st.integers(1, 50),
    surplus=st.integers(0, 10**5),
    members=st.integers(0, 10**8),
    fee_bp=st.integers(0, 1000),
)
def test_a_sponsored_period_charges_nobody_and_the_sponsor_pays_exactly_the_need(
    aid: int, cases: int, surplus: int, members: int, fee_bp: int
) -> None:
    promised = period_sponsorship([Sponsorship(SponsorshipKind.PERIOD, START, START)], START)
    assert promised.pays_shares and promised.pays_cap_excess and promised.reason == "promotion"
    # How a sponsored period is closed: a per-case cap of 0, the excess on the sponsor.
    figures = apportion(
        aid_fen=aid,
        case_count=cases,
        fee_bp=fee_bp,
        surplus_in_fen=surplus,
        cohorts=[Cohort("all", members)],
        per_case_cap_fen=0,
        annual_cap_fen=None,
        cap_excess=CapExcess.SPONSOR,
    )
    assert figures.total_charged_fen == 0 and figures.share_fen == 0
    assert figures.sponsor_fen == max(0, figures.need_fen)
    assert figures.surplus_out_fen == 0 or figures.need_fen < 0


def test_only_a_period_in_a_sponsorship_range_is_sponsored() -> None:
    ranges = [Sponsorship(SponsorshipKind.CAP_EXCESS, date(2026, 1, 1), date(2026, 12, 31))]
    assert period_sponsorship(ranges, date(2026, 3, 7)).reason is None
    assert period_sponsorship(ranges, date(2026, 3, 7)).pays_cap_excess
    assert not period_sponsorship(ranges, date(2027, 1, 7)).pays_cap_excess


@given(st.lists(st.integers(0, 10**9), max_size=50), st.integers(-3, 3))
def test_refunds_are_accepted_only_when_they_equal_the_balances_and_the_ledger_to_the_fen(
    balances: list[int], error: int
) -> None:
    total = sum(balances)
    if error == 0:
        check = check_refunds(len(balances), total, total, total, 0)
        assert check.exact and check.refunded_fen == total
    else:
        with pytest.raises(Conflict) as caught:
            check_refunds(len(balances), total + error, total, total, 0)
        assert caught.value.code == "refunds_do_not_balance"
        with pytest.raises(Conflict):
            check_refunds(len(balances), total, total, total + error, 0)


def test_a_negative_balance_stops_every_refund() -> None:
    with pytest.raises(Conflict) as caught:
        check_refunds(1, 0, 0, 0, negative_balances=1)
    assert caught.value.code == "negative_prepaid_balance"


@given(st.sampled_from(list(PlanStatus)), st.sampled_from(list(WindDownEvent)))
def test_a_plan_moves_only_forward_through_its_end(
    status: PlanStatus, event: WindDownEvent
) -> None:
    if (status, event) in TRANSITIONS:
        assert (
            list(PlanStatus).index(plan_transition(status, event))
            == list(PlanStatus).index(status) + 1
        )
    else:
        with refused("invalid_plan_transition", Conflict):
            plan_transition(status, event)


def test_what_each_status_allows() -> None:
    assert join_refusal("open") is None
    assert join_refusal("winding_down")[0] == "plan_winding_down"  # type: ignore[index]
    assert join_refusal("closed")[0] == "plan_closed"  # type: ignore[index]
    assert not sponsor_pays_new_claims("open", "sponsor_paid")
    assert sponsor_pays_new_claims("winding_down", "sponsor_paid")
    assert not sponsor_pays_new_claims("winding_down", "shared_until_end")
    assert sponsor_pays_new_claims("run_off", "shared_until_end")


@given(
    today=st.dates(date(2000, 1, 1), date(2090, 1, 1)),
    ahead=st.integers(1, 400),
    notice=st.integers(0, 60),
    deadline=st.integers(1, 365),
)
def test_the_run_off_lasts_the_claim_deadline_from_the_last_day_of_cover(
    today: date, ahead: int, notice: int, deadline: int
) -> None:
    end_on = today + timedelta(days=ahead)
    if ahead < notice:
        with refused("notice_too_short"):
            announcement_dates(today, end_on, notice_days=notice, deadline_days=deadline)
        return
    dates = announcement_dates(today, end_on, notice_days=notice, deadline_days=deadline)
    assert dates.run_off_until_on - (end_on - timedelta(days=1)) == timedelta(days=deadline)


@given(st.integers(0, 10**8), st.integers(0, 10**8), st.integers(0, 60))
def test_below_the_minimum_is_reported_only_after_the_grace_days(
    active: int, minimum: int, age: int
) -> None:
    launched = date(2026, 1, 1)
    status = minimum_status(active, minimum, launched, launched + timedelta(days=age), 30)
    if minimum == 0:
        assert status is MinimumStatus.NO_MINIMUM
    elif active >= minimum:
        assert status is MinimumStatus.OK
    else:
        assert status is (MinimumStatus.FILLING_UP if age < 30 else MinimumStatus.BELOW)


@given(st.integers(0, 300_000))
def test_an_archive_holds_every_leaf_once_and_every_tile_level(size: int) -> None:
    refs = list(tile_refs(size))
    assert sum(r.width for r in refs if r.level is None) == size
    for level in range(4):
        assert sum(r.width for r in refs if r.level == level) == size >> (8 * level)
    assert len({r.path for r in refs}) == len(refs)
