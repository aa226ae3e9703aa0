"""Double clicks, retries and two workers at once: the database decides, exactly one wins."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from tests.builders.threads import THREADS, run_together
from tests.factories import account, enroll, publish_demo_plans, resident_id

from mutualaid.db.models import Membership, Person
from mutualaid.domain.errors import Conflict
from mutualaid.services.context import ServiceContext


@pytest.fixture
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


@pytest.mark.usefixtures("plans")
def test_concurrent_duplicate_joins_let_exactly_one_succeed(ctx: ServiceContext) -> None:
    holder = account(ctx)
    number = resident_id(date(1990, 5, 1))
    outcomes = run_together(lambda i: enroll(ctx, holder, date(1990, 5, 1), id_number=number))
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1
    assert all(isinstance(o, Conflict) and o.code == "already_member" for o in losers), losers
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Membership)) == 1
        assert session.scalar(select(func.count()).select_from(Person)) == 1


@pytest.mark.usefixtures("plans")
def test_concurrent_retries_with_one_key_return_one_membership(ctx: ServiceContext) -> None:
    holder = account(ctx)
    number = resident_id(date(1990, 5, 1))
    outcomes = run_together(
        lambda i: enroll(ctx, holder, date(1990, 5, 1), id_number=number, key="double-click")
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert len({o.id for o in outcomes}) == 1
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Membership)) == 1


@pytest.mark.usefixtures("plans")
def test_concurrent_joins_of_different_people_all_succeed(ctx: ServiceContext) -> None:
    holders = [account(ctx) for _ in range(THREADS)]
    outcomes = run_together(lambda i: enroll(ctx, holders[i], date(1990, 5, 1)))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Membership)) == THREADS
