"""The shipped catalogues and example plans (issue 19): Xiang Hu Bao's 100 critical illnesses,
its four plans at the close, each in the plan file format alone."""

from __future__ import annotations

from datetime import date

import pytest

from mutualaid.domain.claims import ClaimFacts, filing_refusal, payout_for
from mutualaid.domain.errors import DomainError
from mutualaid.domain.memberships import MembershipState, coverage_dates
from mutualaid.domain.plans import Tier, parse_plan_toml, rules_fingerprint
from mutualaid.plan_files import EXAMPLE_PLAN_FILES, read_plan_file

MAIN = read_plan_file("xhb-main.toml")


@pytest.mark.parametrize("name", EXAMPLE_PLAN_FILES)
def test_every_example_plan_loads_and_says_it_is_an_example(name: str) -> None:
    text = read_plan_file(name)
    rules = parse_plan_toml(text)
    assert "(example)" in rules.name_en and "示例" in rules.name_zh
    assert "not medical" in text or "not legal advice" in text


def test_the_main_plan_ships_the_full_catalogue_of_100_critical_illnesses() -> None:
    rules = parse_plan_toml(MAIN)
    assert len(rules.illnesses) == 100
    assert len({i.code for i in rules.illnesses}) == 100
    assert len({i.name_zh for i in rules.illnesses}) == 100
    assert len({i.name_en for i in rules.illnesses}) == 100
    assert rules.illnesses[0].name_en == "Malignant tumour (severe)"
    assert {i.tier for i in rules.illnesses} == {Tier.SEVERE, Tier.MILD}
    sources = {s.code for s in rules.definition_sources}
    assert sources == {"iac-2020", "xhb-terms"}
    assert all(i.source in sources for i in rules.illnesses)
    assert {i.code for i in rules.illnesses if i.cause == "accident"} >= {"CI18", "CI20"}


@pytest.mark.parametrize("name", EXAMPLE_PLAN_FILES)
def test_every_illness_maps_to_a_payout_at_every_age_a_member_can_have(name: str) -> None:
    rules = parse_plan_toml(read_plan_file(name))
    birth_on = date(1950, 6, 1)
    for illness in rules.illnesses:
        accident = illness.cause == "accident"
        for age in range(rules.entry.min_age_years, rules.entry.exit_age_years):
            diagnosed_on = date(birth_on.year + age, 7, 1)
            assert payout_for(rules, illness.code, birth_on, diagnosed_on, accident) > 0, (
                illness.code,
                age,
            )


def test_the_elderly_plan_stays_cancer_only_and_keeps_its_rules_hash() -> None:
    rules = parse_plan_toml(read_plan_file("xhb-elderly-cancer.toml"))
    assert [i.code for i in rules.illnesses] == ["CI01"]
    # The new catalogue keys are left out of the hash when unused: the published hash holds.
    assert rules_fingerprint(rules).startswith("622c68db")


def test_an_illness_naming_an_unknown_definition_source_is_refused() -> None:
    with pytest.raises(DomainError) as refused:
        parse_plan_toml(MAIN.replace('source = "xhb-terms"', 'source = "nowhere"', 1))
    assert refused.value.code == "invalid_plan"
    assert refused.value.field.startswith("illnesses[") and "source" in refused.value.field


def test_an_accident_only_illness_needs_an_accident_band() -> None:
    text = read_plan_file("xhb-transit-accident.toml").replace(
        'cause = "accident"\namount', 'cause = "illness"\namount'
    )
    with pytest.raises(DomainError) as refused:
        parse_plan_toml(text)
    assert (refused.value.code, refused.value.field) == ("invalid_plan", "payout_bands")
    assert "(accident)" in refused.value.message


def test_a_plan_cannot_move_its_members_into_itself() -> None:
    with pytest.raises(DomainError) as refused:
        parse_plan_toml(MAIN.replace('to_plan = "xhb-elderly-cancer"', 'to_plan = "xhb-main"'))
    assert refused.value.field == "age_out_move.to_plan"


def _facts(rules_name: str, illness: str, accident: bool) -> tuple[object, ClaimFacts]:
    rules = parse_plan_toml(read_plan_file(rules_name))
    coverage = coverage_dates(rules, date(2025, 1, 1), date(1990, 5, 1))
    return rules, ClaimFacts(
        illness_code=illness,
        diagnosed_on=date(2026, 1, 5),
        accident=accident,
        reported_on=date(2026, 1, 10),
        coverage=coverage,
        membership_state=MembershipState.COVERED,
    )


def test_the_transit_plan_refuses_a_claim_not_caused_by_an_accident() -> None:
    rules, facts = _facts("xhb-transit-accident.toml", "TA01", accident=False)
    refusal = filing_refusal(rules, facts, has_open_claim=False)  # type: ignore[arg-type]
    assert refusal is not None and refusal[0] == "accident_only"
    rules, facts = _facts("xhb-transit-accident.toml", "TA01", accident=True)
    assert filing_refusal(rules, facts, has_open_claim=False) is None  # type: ignore[arg-type]


def test_an_illness_in_the_waiting_period_is_the_waiting_period_outcome() -> None:
    rules = parse_plan_toml(MAIN)
    coverage = coverage_dates(rules, date(2026, 1, 1), date(1990, 5, 1))
    facts = ClaimFacts(
        "CI02", date(2026, 3, 1), False, date(2026, 3, 2), coverage, MembershipState.WAITING
    )
    refusal = filing_refusal(rules, facts, has_open_claim=False)
    assert refusal is not None and refusal[0] == "waiting_period"
    accident = ClaimFacts(
        "CI02", date(2026, 3, 1), True, date(2026, 3, 2), coverage, MembershipState.WAITING
    )
    assert filing_refusal(rules, accident, has_open_claim=False) is None
