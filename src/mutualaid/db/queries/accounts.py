"""Accounts' queries: the owner of a bearer token, read inside a hot path's own first statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Label, bindparam, select

from mutualaid.db.models import Account, ApiToken


def token_caller() -> ColumnElement[int]:
    """The account of the token whose hash is bound as ``token_hash`` if it is still valid at
    ``now`` (else NULL), as a scalar subquery. A hot write (a join, a vote) checks its caller this
    way instead of in a round trip of its own; when it comes back NULL, the caller looks the token
    up again to refuse it (`services.accounts.actor_of_token`)."""
    return (
        select(ApiToken.account_id)
        .where(
            ApiToken.token_hash == bindparam("token_hash"),
            ApiToken.expires_at > bindparam("now"),
        )
        .scalar_subquery()
    )


def caller_columns(caller: ColumnElement[int]) -> tuple[Label[Any], Label[Any]]:
    """``caller_id`` and ``caller_role`` of a `token_caller`, to add to a statement."""
    return (
        caller.label("caller_id"),
        select(Account.role).where(Account.id == caller).scalar_subquery().label("caller_role"),
    )
