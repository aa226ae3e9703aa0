from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.refusals import refused

from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import (
    Sex,
    check_character,
    make_resident_id,
    mask_name,
    parse_resident_id,
)

# A published example number with a valid GB 11643 check digit (GB 11643-1999 appendix style).
KNOWN_VALID = "11010519491231002X"


def test_a_known_valid_number_gives_birth_date_sex_and_province() -> None:
    resident = parse_resident_id(KNOWN_VALID)
    assert resident.birth_on == date(1949, 12, 31)
    assert resident.sex is Sex.FEMALE
    assert resident.province_code == "11"


def test_lower_case_x_is_accepted() -> None:
    assert parse_resident_id(KNOWN_VALID.lower()).number == KNOWN_VALID


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110105194912310021", "check digit"),
        ("11010519491231002", "18 characters"),
        ("1101051949123100AX", "17 digits"),
        ("99010519491231002" + check_character("99010519491231002"), "province"),
        ("11010519491331002" + check_character("11010519491331002"), "not a date"),
    ],
)
def test_wrong_numbers_are_refused_with_a_precise_reason(number: str, reason: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_resident_id(number)
    assert refused.value.code == "invalid_id_number"
    assert refused.value.field == "id_number"
    assert reason in refused.value.message


@given(
    birth_on=st.dates(min_value=date(1930, 1, 1), max_value=date(2030, 12, 31)),
    sequence=st.integers(0, 499),
    sex=st.sampled_from(Sex),
    position=st.integers(0, 16),
)
def test_any_single_mistyped_digit_is_caught(
    birth_on: date, sequence: int, sex: Sex, position: int
) -> None:
    number = make_resident_id("44", birth_on, sequence, sex)
    assert parse_resident_id(number).sex is sex
    mistyped = number[:position] + str((int(number[position]) + 1) % 10) + number[position + 1 :]
    with refused("invalid_id_number"):
        parse_resident_id(mistyped)


def test_names_are_masked_like_the_public_notices() -> None:
    assert mask_name("张三华") == "张*华"
    assert mask_name("李四") == "李*"
    assert mask_name("欧阳娜娜") == "欧**娜"
