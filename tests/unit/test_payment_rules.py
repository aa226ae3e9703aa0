"""A plan file's `[payments]` table: the provider by name, never keys; old plans keep their hash."""

from __future__ import annotations

import pytest
from tests.refusals import refused

from mutualaid.domain.plans import PaymentRules, parse_plan_toml
from mutualaid.plan_files import read_plan_file

MAIN = read_plan_file("xhb-main.toml")


def test_a_plan_without_payments_uses_the_simulated_provider_and_keeps_its_json() -> None:
    rules = parse_plan_toml(MAIN)
    assert rules.payments is None
    assert "payments" not in rules.to_json()  # so the published rules hash is unchanged


def test_a_plan_names_its_provider_and_four_eyes_amount() -> None:
    rules = parse_plan_toml(
        MAIN + '\n[payments]\nprovider = "alipay"\nfour_eyes_above_fen = 1_000_000\n'
    )
    assert rules.payments == PaymentRules("alipay", 1_000_000)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('provider = "paypal"', "payments.provider"),
        ('provider = "alipay"\nprivate_key = "MIIE..."', "payments.private_key"),
        ("four_eyes_above_fen = -1", "payments.four_eyes_above_fen"),
    ],
)
def test_an_unknown_provider_a_key_or_a_negative_amount_is_refused(table: str, field: str) -> None:
    with refused("invalid_plan") as caught:
        parse_plan_toml(MAIN + f"\n[payments]\n{table}\n")
    assert getattr(caught.value, "field", None) == field
