from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.refusals import refused
from tests.unit.forecasts.builders import main_plan, model_data, small_model

from mutualaid.domain.apportionment import Cohort, apportion
from mutualaid.domain.errors import DomainError
from mutualaid.domain.sharing import SharingRule
from mutualaid.forecasts.models import default_model, parse_model
from mutualaid.forecasts.simulation import (
    BATCH_SIZE,
    SimulationResult,
    SimulationSettings,
    build_setup,
    publicity_dates,
    settle,
    simulate,
)

PLAN = main_plan()


def _run(
    model: object = None,
    *,
    periods: int = 40,
    scenarios: int = 10,
    seed: int = 7,
    rule: SharingRule = SharingRule.UNIFORM,
    plan: object = None,
    workers: int = 1,
) -> SimulationResult:
    return simulate(
        plan or PLAN,
        model or small_model(),  # type: ignore[arg-type]
        SimulationSettings(
            periods=periods, scenarios=scenarios, seed=seed, rule=rule, workers=workers
        ),
    )


@pytest.fixture(scope="module")
def uniform() -> SimulationResult:
    return _run(periods=60, scenarios=12)


def test_periods_fall_on_the_plans_publicity_days() -> None:
    assert publicity_dates(date(2018, 10, 16), [7, 21], 4) == [
        date(2018, 10, 21),
        date(2018, 11, 7),
        date(2018, 11, 21),
        date(2018, 12, 7),
    ]
    assert publicity_dates(date(2019, 1, 7), [7, 21], 1) == [date(2019, 1, 21)]


def test_the_same_seed_gives_the_same_scenarios_and_another_seed_others() -> None:
    first, again, other = _run(seed=3), _run(seed=3), _run(seed=4)
    assert np.array_equal(first["share_fen"], again["share_fen"])
    assert not np.array_equal(first["cases"], other["cases"])


def test_the_first_batches_do_not_depend_on_how_many_scenarios_follow() -> None:
    short = _run(scenarios=BATCH_SIZE, periods=20)
    long = _run(scenarios=BATCH_SIZE + 5, periods=20)
    assert np.array_equal(short["cases"], long["cases"][:BATCH_SIZE])
    assert long["cases"].shape == (BATCH_SIZE + 5, 20)


def test_members_are_conserved_period_by_period(uniform: SimulationResult) -> None:
    members = uniform["members"]
    previous = np.concatenate(
        [np.zeros((members.shape[0], 1), dtype=np.int64), members[:, :-1]], axis=1
    )
    assert np.array_equal(
        members,
        previous + uniform["joins"] - uniform["leavers"] - uniform["exits"] - uniform["ended"],
    )
    assert (uniform["joins"].sum(axis=1) == 200_000).all()


def test_every_period_balances_to_the_fen(uniform: SimulationResult) -> None:
    surplus_out = uniform["surplus_fen"]
    surplus_in = np.concatenate(
        [np.zeros((surplus_out.shape[0], 1), dtype=np.int64), surplus_out[:, :-1]], axis=1
    )
    left = uniform["charged_fen"] + uniform["sponsor_fen"]
    right = uniform["aid_fen"] + uniform["fee_fen"] - surplus_in + surplus_out
    assert np.array_equal(left, right)


def test_no_case_no_fee_no_charge(uniform: SimulationResult) -> None:
    quiet = uniform["cases"] == 0
    assert quiet.any()
    for name in ("aid_fen", "fee_fen", "charged_fen", "share_fen"):
        assert (uniform[name][quiet] == 0).all()


def test_caps_hold_and_the_sponsor_pays_the_rest() -> None:
    # A plan too small for its per-case cap: 200,000 members × 0.10 yuan cannot pay 300,000 yuan.
    result = _run(scenarios=6)
    cases = result["cases"]
    assert (result["share_fen"] <= cases * PLAN.caps.per_case_fen).all()
    assert (result["annual_cap_use"] <= 1).all()
    assert result["sponsor_fen"].sum() > 0
    assert (result["per_case_cap_use"][cases > 0] > 1).any()


def test_the_annual_cap_binds_with_a_low_cap() -> None:
    plan = main_plan(
        lambda text: text.replace("annual_fen = 18_800", "annual_fen = 150").replace(
            "per_case_fen = 10 ", "per_case_fen = 100_000 "
        )
    )
    result = _run(plan=plan, scenarios=4, periods=40)
    assert (result["annual_cap_use"] <= 1).all()
    assert result["capped_members"].sum() > 0
    assert result["sponsor_fen"].sum() > 0


def test_nobody_claims_an_illness_during_the_waiting_period_without_accidents() -> None:
    model = small_model(accident_share=0.0)
    result = _run(model, periods=10, scenarios=5)
    # 90 days + joining mid-period: the first joiners' illnesses count from the 7th period.
    assert (result["diagnosed"][:, :6] == 0).all()
    assert result["diagnosed"][:, 6:].sum() > 0


def test_members_age_out_of_the_plan_at_the_exit_age() -> None:
    data = model_data()
    data["joins"]["cumulative"] = [[0, 0], [10, 100_000]]
    data["joins"]["age_mix"] = [{"from_age": 55, "to_age": 59, "weight": 1.0}]
    data["churn"]["bands"] = [
        {"from_age": 0, "to_age": 89, "base_per_period": 0.0, "per_yuan": 0.0}
    ]
    data["incidence_level"] = 0.0
    result = _run(parse_model(data), periods=130, scenarios=2)
    # Five years of ageing: almost everyone has left through the exit age, nobody by choice.
    assert (result["leavers"] == 0).all()
    assert (result["members"][:, -1] < 2_000).all()
    assert (result["exits"].sum(axis=1) > 98_000).all()


def test_a_higher_share_drives_more_members_out() -> None:
    calm = small_model()
    data = model_data()
    data["joins"]["cumulative"] = [[0, 0], [100, 200_000]]
    data["incidence_level"] = 5.0
    costly = parse_model(data)
    plan = main_plan(lambda text: text.replace("per_case_fen = 10 ", "per_case_fen = 100_000 "))
    quiet = _run(calm, plan=plan, scenarios=4, periods=60)
    busy = _run(costly, plan=plan, scenarios=4, periods=60)
    assert busy["leavers"].sum() > 1.5 * quiet["leavers"].sum()


def test_the_proportional_rule_charges_older_bands_more() -> None:
    plan = main_plan(lambda text: text.replace("per_case_fen = 10 ", "per_case_fen = 100_000 "))
    result = _run(plan=plan, scenarios=4, periods=40, rule=SharingRule.PROPORTIONAL)
    charges = result["band_charge_fen"]  # (S, N, A): bands 0-4 … 55-59
    charged = charges.sum(axis=2) > 0
    young, old = charges[..., 5][charged], charges[..., 11][charged]  # 25-29 and 55-59
    assert (old > young).all()


@pytest.mark.parametrize("rule", [SharingRule.PROPORTIONAL, SharingRule.CONDITIONAL_MEAN])
def test_risk_rated_rules_are_fairer_than_the_uniform_rule(rule: SharingRule) -> None:
    plan = main_plan(
        lambda text: text.replace("per_case_fen = 10 ", "per_case_fen = 100_000 ").replace(
            "annual_fen = 18_800", "annual_fen = 10_000_000"
        )
    )
    model = small_model(500_000)
    spread = {}
    for each in (SharingRule.UNIFORM, rule):
        result = _run(model, plan=plan, scenarios=4, periods=80, rule=each)
        ratio = result["band_paid_fen"].sum(axis=0) / result["band_benefit_fen"].sum(axis=0)
        spread[each] = float(np.std(np.log(ratio)))
    assert spread[rule] < spread[SharingRule.UNIFORM] / 2


def test_bad_settings_are_refused() -> None:
    for code, kwargs in (
        ("invalid_periods", {"periods": 0, "scenarios": 1, "seed": 1}),
        ("invalid_scenarios", {"periods": 10, "scenarios": 0, "seed": 1}),
        ("invalid_seed", {"periods": 10, "scenarios": 1, "seed": -1}),
    ):
        with refused(code):
            SimulationSettings(**kwargs)  # type: ignore[arg-type]


def test_a_joiner_mix_outside_the_entry_ages_is_refused() -> None:
    elderly = main_plan(lambda text: text)  # main plan: entry 0-59
    data = model_data()
    data["joins"]["age_mix"] = [{"from_age": 60, "to_age": 89, "weight": 1.0}]
    with pytest.raises(DomainError) as error:
        build_setup(elderly, parse_model(data), SimulationSettings(periods=5, scenarios=1, seed=1))
    assert error.value.code == "invalid_model"
    assert error.value.field == "joins.age_mix"


def test_results_do_not_depend_on_the_number_of_workers() -> None:
    scenarios = 4 * BATCH_SIZE
    alone = _run(scenarios=scenarios, periods=8)
    together = _run(scenarios=scenarios, periods=8, workers=2)
    for name in ("members", "cases", "share_fen"):
        assert np.array_equal(alone[name], together[name])


def test_the_default_model_reaches_a_hundred_million_members() -> None:
    result = simulate(PLAN, default_model(), SimulationSettings(periods=40, scenarios=2, seed=1))
    assert result["members"].max() > 100_000_000


# --- the period arithmetic is the domain's --------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    cohorts=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 20_000)), min_size=1, max_size=6
    ),
    cases=st.integers(0, 5),
    aid_per_case=st.sampled_from([5_000_000, 10_000_000, 30_000_000]),
    surplus=st.integers(0, 50_000),
    per_case_cap=st.sampled_from([None, 10, 1_000]),
    annual_cap=st.sampled_from([None, 18_800, 500]),
)
def test_vectorised_settlement_matches_the_domain_apportionment(
    cohorts: list[tuple[int, int]],
    cases: int,
    aid_per_case: int,
    surplus: int,
    per_case_cap: int | None,
    annual_cap: int | None,
) -> None:
    aid = cases * aid_per_case
    counts = np.array([[[count] for count, _ in cohorts]], dtype=np.int64)  # (1, C, 1)
    ytd = np.array([[[paid] for _, paid in cohorts]], dtype=np.int64)
    result = settle(
        cases=np.array([cases]),
        aid_fen=np.array([aid]),
        surplus_in_fen=np.array([surplus]),
        counts=counts,
        ytd_fen=ytd,
        weights=np.ones((1, 1), dtype=np.int64),
        fee_bp=800,
        per_case_cap_fen=per_case_cap,
        annual_cap_fen=annual_cap,
    )
    figures = apportion(
        aid_fen=aid,
        case_count=cases,
        fee_bp=800,
        surplus_in_fen=surplus,
        cohorts=[Cohort(str(i), count, paid) for i, (count, paid) in enumerate(cohorts)],
        per_case_cap_fen=per_case_cap,
        annual_cap_fen=annual_cap,
    )
    assert int(result.fee_fen[0]) == figures.fee_fen
    assert int(result.uncapped_fen[0, 0]) == figures.uncapped_share_fen
    assert int(result.charge_fen[0, 0]) == figures.share_fen
    assert [int(p) for p in result.pay_fen[0, :, 0]] == [c.charge_fen for c in figures.charges]
    assert int(result.total_fen[0]) == figures.total_charged_fen
    assert int(result.sponsor_fen[0]) == figures.sponsor_fen
    assert int(result.surplus_out_fen[0]) == figures.surplus_out_fen


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 1_000_000), min_size=2, max_size=5),
    weights=st.lists(st.integers(1, 1 << 20), min_size=5, max_size=5),
    need=st.integers(1, 10**11),
)
def test_weighted_charges_cover_the_need_with_less_than_a_fen_per_member(
    counts: list[int],
    weights: list[int],
    need: int,
) -> None:
    bands = len(counts)
    result = settle(
        cases=np.array([1]),
        aid_fen=np.array([need]),
        surplus_in_fen=np.array([0]),
        counts=np.array([[counts]], dtype=np.int64),
        ytd_fen=np.zeros((1, 1, bands), dtype=np.int64),
        weights=np.array([weights[:bands]], dtype=np.int64),
        fee_bp=0,
        per_case_cap_fen=None,
        annual_cap_fen=None,
    )
    members = sum(counts)
    if members == 0:
        assert int(result.sponsor_fen[0]) == need
        return
    total = int(result.total_fen[0])
    assert need <= total < need + members
    assert int(result.surplus_out_fen[0]) == total - need
