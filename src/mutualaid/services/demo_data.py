"""Generated members with valid ID numbers, for the demo's crowd (services/demo), tests and
benchmarks."""

from __future__ import annotations

import random
from datetime import date, timedelta

from mutualaid.domain.identities import PROVINCES, Sex, make_resident_id

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华"


def random_member_rows(count: int, today: date, seed: int = 2018) -> list[dict[str, str]]:
    """Plausible members (valid ID numbers, families of one to three) for demos and benchmarks."""
    rng = random.Random(seed)
    provinces = [code for code in PROVINCES if code < "70"]
    rows: list[dict[str, str]] = []
    serial = 0
    while len(rows) < count:
        serial += 1
        phone = f"139{serial:08d}"
        family = rng.choice((1, 1, 2, 3))
        for position in range(min(family, count - len(rows))):
            if position == 0:
                relation, age = "self", rng.randint(18, 58)
            elif position == 1:
                relation, age = "spouse", rng.randint(18, 58)
            else:
                relation, age = "child", rng.randint(1, 17)
            born = today - timedelta(days=age * 365 + rng.randint(0, 364))
            sex = rng.choice((Sex.MALE, Sex.FEMALE))
            rows.append(
                {
                    "payer_phone": phone,
                    "full_name": rng.choice(_SURNAMES)
                    + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2)))),
                    "id_number": make_resident_id(
                        rng.choice(provinces), born, (serial * 7 + position) % 500, sex
                    ),
                    "relation": relation,
                    "joined_on": (today - timedelta(days=rng.randint(0, 360))).isoformat(),
                }
            )
    return rows
