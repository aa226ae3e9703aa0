"""SQL the collections need that the two databases spell differently: one function per operation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mutualaid.db.models import Membership
from mutualaid.db.queries.periods import membership_plan_is


def next_payer_bound(session: Session, plan_id: int, after: int, chunk: int) -> int | None:
    """The payer id that ends a chunk of about `chunk` memberships after `after` (None: the rest).
    (On SQLite the plan test keeps the walk on the payer index: see `membership_plan_is`.)"""
    return session.scalar(
        select(Membership.payer_account_id)
        .where(membership_plan_is(session, plan_id), Membership.payer_account_id > after)
        .order_by(Membership.payer_account_id)
        .offset(max(chunk - 1, 0))
        .limit(1)
    )


def concatenated(session: Session, line: ColumnElement[Any]) -> Any:
    """The aggregate that joins a group's `line`s into one string, in the order they are read
    (SQLite ``group_concat``, PostgreSQL ``string_agg``)."""
    return (
        func.string_agg(line, literal(""))
        if session.get_bind().dialect.name == "postgresql"
        else func.group_concat(line, "")
    )
