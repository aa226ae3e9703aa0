"""Security #13 finding 12: joining with someone else's ID number is refused without saying whose
it is or whether they hold cover, and staff see the attempt (without the ID number)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from tests.factories import account, enroll, publish_demo_plans, resident_id

from mutualaid.db.models import AuditEvent
from mutualaid.domain.errors import Conflict
from mutualaid.services.context import ServiceContext


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def test_a_member_s_id_number_and_a_registered_one_answer_alike_and_staff_see_it(
    ctx: ServiceContext,
) -> None:
    member_number = resident_id(date(1990, 5, 1))
    enroll(ctx, account(ctx), date(1990, 5, 1), id_number=member_number)
    prober = account(ctx)
    with pytest.raises(Conflict) as refused:
        enroll(ctx, prober, date(1990, 5, 1), id_number=member_number)
    assert refused.value.code == "identity_unavailable"
    assert "another account" not in refused.value.message
    with ctx.reading() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "identity_probe")
        ).all()
    assert [row.actor_account_id for row in rows] == [prober.account_id]
    assert member_number not in str(rows[0].details)
