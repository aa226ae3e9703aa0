"""Chinese resident identity numbers (GB 11643-1999) and what they tell: birth date, sex, province."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from mutualaid.domain.errors import DomainError

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"

#: GB/T 2260 province-level codes (first two digits of the address code), names in zh and en.
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("北京", "Beijing"),
    "12": ("天津", "Tianjin"),
    "13": ("河北", "Hebei"),
    "14": ("山西", "Shanxi"),
    "15": ("内蒙古", "Inner Mongolia"),
    "21": ("辽宁", "Liaoning"),
    "22": ("吉林", "Jilin"),
    "23": ("黑龙江", "Heilongjiang"),
    "31": ("上海", "Shanghai"),
    "32": ("江苏", "Jiangsu"),
    "33": ("浙江", "Zhejiang"),
    "34": ("安徽", "Anhui"),
    "35": ("福建", "Fujian"),
    "36": ("江西", "Jiangxi"),
    "37": ("山东", "Shandong"),
    "41": ("河南", "Henan"),
    "42": ("湖北", "Hubei"),
    "43": ("湖南", "Hunan"),
    "44": ("广东", "Guangdong"),
    "45": ("广西", "Guangxi"),
    "46": ("海南", "Hainan"),
    "50": ("重庆", "Chongqing"),
    "51": ("四川", "Sichuan"),
    "52": ("贵州", "Guizhou"),
    "53": ("云南", "Yunnan"),
    "54": ("西藏", "Tibet"),
    "61": ("陕西", "Shaanxi"),
    "62": ("甘肃", "Gansu"),
    "63": ("青海", "Qinghai"),
    "64": ("宁夏", "Ningxia"),
    "65": ("新疆", "Xinjiang"),
    "71": ("台湾", "Taiwan"),
    "81": ("香港", "Hong Kong"),
    "82": ("澳门", "Macau"),
}


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str
    birth_on: date
    sex: Sex
    province_code: str


def check_character(first_17_digits: str) -> str:
    total = sum(int(d) * w for d, w in zip(first_17_digits, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def parse_resident_id(raw: str, field: str = "id_number") -> ResidentId:
    """Validate an 18-character resident ID number and read its facts, or refuse precisely."""
    number = raw.strip().upper()
    if len(number) != 18:
        raise DomainError(
            "invalid_id_number",
            f"an identity number has 18 characters, this one has {len(number)}",
            field,
            details={"variant": "length", "length": len(number)},
        )
    body, check = number[:17], number[17]
    if not body.isdigit() or not (check.isdigit() or check == "X"):
        raise DomainError(
            "invalid_id_number",
            "an identity number is 17 digits followed by a digit or X",
            field,
            details={"variant": "format"},
        )
    expected = check_character(body)
    if check != expected:
        raise DomainError(
            "invalid_id_number",
            "the identity number's check digit does not match (a digit was mistyped)",
            field,
            details={"variant": "check_digit"},
        )
    province = body[:2]
    if province not in PROVINCES:
        raise DomainError(
            "invalid_id_number",
            f"{province} is not a province code",
            field,
            details={"variant": "province", "province": province},
        )
    try:
        birth_on = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        raise DomainError(
            "invalid_id_number",
            f"{body[6:14]} in the identity number is not a date",
            field,
            details={"variant": "birth_date", "digits": body[6:14]},
        ) from None
    sex = Sex.MALE if int(body[16]) % 2 == 1 else Sex.FEMALE
    return ResidentId(number=number, birth_on=birth_on, sex=sex, province_code=province)


def make_resident_id(province_code: str, birth_on: date, sequence: int, sex: Sex) -> str:
    """Build a valid ID number (for demo data, tests and benchmarks): sequence 0..499."""
    order = sequence * 2 + (1 if sex is Sex.MALE else 0)
    body = f"{province_code}0101{birth_on:%Y%m%d}{order:03d}"
    return body + check_character(body)


def mask_name(full_name: str) -> str:
    """Mask a name for public notices the way the platforms did: 张三华 -> 张*华, 李四 -> 李*."""
    name = full_name.strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


#: A person's name as enrolled (the masked form is stored in a column of this length).
MAX_NAME_LENGTH = 50


def check_full_name(raw: str, field: str = "full_name") -> str:
    """A person's name, stripped of surrounding blanks: 1 to MAX_NAME_LENGTH characters."""
    name = raw.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise DomainError("invalid_name", "a name has 1 to 50 characters", field)
    return name
