"""`mutualaid notifications …`: the outbox's dead letters, and sending what is due."""

from __future__ import annotations

import typer

from mutualaid.cli.common import console, context, friendly_errors
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.notifications import (
    dispatch_notifications,
    list_dead_letters,
    retry_dead_letters,
)

app = typer.Typer(help="Messages to members: dead letters and sending.", no_args_is_help=True)


@app.command("dead-letters")
@friendly_errors
def dead_letters(limit: int = typer.Option(100, min=1, max=1000)) -> None:
    """Messages whose tries are spent: their id, kind, tries and the channel's last error."""
    letters = list_dead_letters(context(), limit=limit)
    if not letters:
        console.print("no dead letters")
        return
    for letter in letters:  # one line each, for grep and for people
        console.print(
            f"#{letter.id} account {letter.account_id} {letter.kind}: {letter.attempts} tries, "
            f"dead since {letter.dead_at.isoformat(timespec='seconds')} "
            f"({letter.last_error or 'no error recorded'})",
            soft_wrap=True,
            highlight=False,
        )
    console.print(f"{len(letters)} dead letters; `mutualaid notifications retry [ID…]` sends again")


@app.command("retry")
@friendly_errors
def retry(
    ids: list[int] = typer.Argument(None, help="Dead letters to retry (none given: all)"),
    send: bool = typer.Option(True, help="Send what is due right away"),
) -> None:
    """Put dead letters back in the outbox with fresh tries (after fixing the channel)."""
    ctx = context()
    count = retry_dead_letters(ctx, SYSTEM_ACTOR.recorded_id, ids or None)
    console.print(f"{count} dead letters back in the outbox")
    if send:
        result = dispatch_notifications(ctx)
        console.print(
            f"{result.sent} sent, {result.failed} to retry, {result.dead} dead letters again"
        )
