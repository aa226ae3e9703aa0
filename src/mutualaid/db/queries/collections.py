"""SQL the collections need that the two databases spell differently: one function per operation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from mutualaid.db.models import Membership


def next_payer_bound(session: Session, plan_id: int, after: int, chunk: int) -> int | None:
    """The payer id that ends a chunk of about `chunk` memberships after `after` (None: the rest).
    (On SQLite ``plan_id + 0`` keeps the walk on the payer index.)"""
    plan_match = (
        (Membership.plan_id + 0 == plan_id)
        if session.get_bind().dialect.name == "sqlite"
        else (Membership.plan_id == plan_id)
    )
    return session.scalar(
        select(Membership.payer_account_id)
        .where(plan_match, Membership.payer_account_id > after)
        .order_by(Membership.payer_account_id)
        .offset(max(chunk - 1, 0))
        .limit(1)
    )


def concatenated(line: ColumnElement[Any], dialect: str) -> Any:
    """The aggregate that joins a group's `line`s into one string, in the order they are read
    (SQLite ``group_concat``, PostgreSQL ``string_agg``)."""
    return (
        func.string_agg(line, literal(""))
        if dialect == "postgresql"
        else func.group_concat(line, "")
    )
