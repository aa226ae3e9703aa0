from __future__ import annotations

import pytest

from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import Tier, params_of, parse_plan_toml, rules_fingerprint
from mutualaid.domain.risk import DEFAULT_PARAMS, SignalCode, weight_of
from mutualaid.plan_files import DEMO_PLAN_FILES, read_plan_file

MAIN = read_plan_file("xhb-main.toml")


@pytest.mark.parametrize("name", DEMO_PLAN_FILES)
def test_shipped_demo_plans_are_valid(name: str) -> None:
    parse_plan_toml(read_plan_file(name))


def test_demo_main_plan_has_the_real_xiang_hu_bao_rules() -> None:
    rules = parse_plan_toml(MAIN)
    assert len(rules.illnesses) >= 30
    assert rules.payout_fen(39, Tier.SEVERE, accident=False) == 30_000_000
    assert rules.payout_fen(40, Tier.SEVERE, accident=False) == 10_000_000
    assert rules.payout_fen(25, Tier.MILD, accident=False) == 5_000_000
    assert rules.payout_fen(60, Tier.SEVERE, accident=False) is None
    assert rules.fees.management_fee_bp == 800
    assert (rules.caps.per_case_fen, rules.caps.annual_fen) == (10, 18_800)
    assert rules.waiting_period.days == 90
    assert rules.periods.publicity_days == [7, 21] and rules.periods.debit_days == [14, 28]
    assert rules.claims.deadline_days == 180


def test_a_cause_specific_band_beats_a_general_one() -> None:
    text = MAIN.replace(
        "[[payout_bands]]\nfrom_age = 40",
        '[[payout_bands]]\nfrom_age = 40\nto_age = 59\ntier = "severe"\ncause = "accident"\n'
        "amount_fen = 20_000_000\n\n[[payout_bands]]\nfrom_age = 40",
        1,
    )
    rules = parse_plan_toml(text)
    assert rules.payout_fen(45, Tier.SEVERE, accident=True) == 20_000_000
    assert rules.payout_fen(45, Tier.SEVERE, accident=False) == 10_000_000


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            ("amount_fen = 10_000_000", 'amount_fen = "lots"'),
            "payout_bands[1].amount_fen",
            "integer",
        ),
        (
            ("amount_fen = 10_000_000", "amount_fen = 100000.5"),
            "payout_bands[1].amount_fen",
            "integer",
        ),
        (("days = 90", "dayz = 90"), "waiting_period.dayz", "unknown key"),
        (
            ("management_fee_bp = 800", "management_fee_bp = true"),
            "fees.management_fee_bp",
            "integer",
        ),
        (
            ("management_fee_bp = 800", "management_fee_bp = 90000"),
            "fees.management_fee_bp",
            "5000",
        ),
        (('tier = "mild"', 'tier = "medium"'), "payout_bands[2].tier", "severe"),
        (('time_zone = "Asia/Shanghai"', 'time_zone = "Mars/Olympus"'), "time_zone", "time zone"),
        (
            ("debit_days = [14, 28]", "debit_days = [8, 28]"),
            "periods.debit_days[0]",
            "before publicity",
        ),
        (
            ("publicity_days = [7, 21]", "publicity_days = [7, 31]"),
            "periods.publicity_days[1]",
            "28",
        ),
        (('code = "CI02"', 'code = "CI01"'), "illnesses[1].code", "twice"),
        (("to_age = 39", "to_age = 35"), "payout_bands", "age 36"),
        (("max_age_years = 59", "max_age_years = 60"), "entry.max_age_years", "exit age"),
        (('code = "xhb-main"', 'code = "XHB main"'), "code", "pattern"),
        # Extreme amounts (security #13): bounded so sums at 100M members fit int64.
        (
            ("amount_fen = 10_000_000", "amount_fen = 9223372036854775807"),
            "payout_bands[1].amount_fen",
            "100000000",
        ),
        (
            ("amount_fen = 10_000_000", "amount_fen = 100_000_001"),
            "payout_bands[1].amount_fen",
            "100000000",
        ),
        (
            ("per_case_fen = 10", "per_case_fen = 9223372036854775807"),
            "caps.per_case_fen",
            "1000000000",
        ),
        (("annual_fen = 18_800", "annual_fen = 1_000_000_001"), "caps.annual_fen", "1000000000"),
    ],
)
def test_malformed_plan_files_are_refused_with_the_exact_key_and_reason(
    change: tuple[str, str], field: str, words: str
) -> None:
    old, new = change
    assert old in MAIN
    with pytest.raises(DomainError) as refused:
        parse_plan_toml(MAIN.replace(old, new, 1))
    assert refused.value.code == "invalid_plan"
    assert refused.value.field == field
    assert words in refused.value.message


def test_a_missing_required_key_is_named() -> None:
    text = MAIN.replace('name_en = "Critical illness mutual aid plan (example)"\n', "")
    with pytest.raises(DomainError) as refused:
        parse_plan_toml(text)
    assert refused.value.code == "invalid_plan"
    assert refused.value.field == "name_en"


def test_toml_syntax_errors_give_the_line() -> None:
    with pytest.raises(DomainError) as refused:
        parse_plan_toml('code = "x"\nname_zh = \n')
    assert refused.value.code == "invalid_plan"
    assert "line 2" in refused.value.message


RISK_TABLE = """
[risk]
field_threshold = 30
frequency_z = 5

[risk.weights]
shared_device = 0
shared_payee = 45
"""


def test_a_risk_table_tunes_thresholds_and_weights_and_the_rest_keep_their_defaults() -> None:
    rules = parse_plan_toml(MAIN + RISK_TABLE)
    params = params_of(rules.risk)
    assert (params.field_threshold, params.frequency_z) == (30, 5.0)
    assert params.high_threshold == DEFAULT_PARAMS.high_threshold == 50
    assert weight_of(SignalCode.SHARED_DEVICE, params) == 0
    assert weight_of(SignalCode.SHARED_PAYEE, params) == 45
    assert weight_of(SignalCode.SAME_FILE, params) == 40  # not in the table: the default


def test_a_plan_without_a_risk_table_scores_with_the_defaults_and_keeps_its_hash() -> None:
    rules = parse_plan_toml(MAIN)
    assert rules.risk is None and params_of(rules.risk) == DEFAULT_PARAMS
    assert "risk" not in rules.to_json()
    assert rules_fingerprint(parse_plan_toml(MAIN + "\n[risk]\n")) != rules_fingerprint(rules)


@pytest.mark.parametrize(
    ("table", "field", "words"),
    [
        ("[risk.weights]\nshared_payer = 10", "risk.weights.shared_payer", "unknown signal"),
        (
            "[risk.weights]\nshared_payee = -5",
            "risk.weights.shared_payee",
            "greater than or equal to 0",
        ),
        ("[risk.weights]\nshared_payee = 101", "risk.weights.shared_payee", "100"),
        ("[risk.weights]\nshared_payee = 10.5", "risk.weights.shared_payee", "integer"),
        ("[risk]\nfield_treshold = 30", "risk.field_treshold", "unknown key"),
        ("[risk]\nnear_duplicate_bits = 65", "risk.near_duplicate_bits", "64"),
        ("[risk]\nmedium_threshold = 60", "risk.medium_threshold", "high_threshold"),
    ],
)
def test_a_bad_risk_table_is_refused_with_the_exact_key(table: str, field: str, words: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_plan_toml(MAIN + "\n" + table + "\n")
    assert (refused.value.code, refused.value.field) == ("invalid_plan", field)
    assert refused.value.message.startswith(f"{field}: ") and words in refused.value.message
