"""`mutualaid payments …`: reconcile with the provider's statement, send payouts through it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from mutualaid.cli.common import EXIT_REFUSED, console, context, friendly_errors
from mutualaid.domain.money import format_yuan
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.payments.alipay import parse_statement
from mutualaid.services.payments.payout_desk import plan_of_claim, resend_transfer
from mutualaid.services.payments.providers import alipay_client
from mutualaid.services.payments.reconciliation import reconcile
from mutualaid.services.payments.transfers import send_payouts, transfer_client

app = typer.Typer(
    help="Payments: reconciliation with the provider's statement, payouts through the provider.",
    no_args_is_help=True,
)


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else format_yuan(fen, symbol=True, grouping=True)


@app.command("reconcile")
@friendly_errors
def reconcile_command(
    on: str = typer.Option(..., "--on", help="The statement's day (Beijing), YYYY-MM-DD"),
    provider: str = typer.Option("alipay", help="The provider (alipay)"),
    statement: Path | None = typer.Option(
        None, help="A statement already downloaded (Alipay's bill zip); default: download it"
    ),
) -> None:
    """List every difference between the provider's statement for a day and what we recorded
    (missing at the provider, amount mismatch, unknown reference, not paid here). Exits 1 when
    there is any, so the daily job is noticed."""
    ctx = context()
    day = date.fromisoformat(on)
    if statement is not None:
        lines = parse_statement(statement.read_bytes())
    else:
        with alipay_client(ctx) as client:
            lines = client.statement(day)
    differences = reconcile(ctx, SYSTEM_ACTOR, provider, day, lines)
    if not differences:
        console.print(f"{provider} {day}: {len(lines)} statement lines, no difference")
        return
    for d in differences:  # one plain line each, whole references (operators search for them)
        console.print(
            f"{d.kind}\t{d.out_ref}\tprovider ref {d.provider_ref or '—'}\t"
            f"ours {_yuan(d.ours_fen)}\tstatement {_yuan(d.theirs_fen)}",
            soft_wrap=True,
            highlight=False,
        )
    console.print(f"{provider} {day}: {len(differences)} difference(s)")
    raise typer.Exit(1)


@app.command("send-payouts")
@friendly_errors
def send_payouts_command(
    plan: str = typer.Argument(..., help="Plan code, e.g. xhb-main"),
    on: str = typer.Option(..., "--on", help="The period's publicity day, YYYY-MM-DD"),
) -> None:
    """Transfer the period's approved payouts through Alipay, once each; a payout above the
    plan's four-eyes amount waits until two staff members release it (API)."""
    ctx = context()
    with alipay_client(ctx) as client:
        views = send_payouts(ctx, SYSTEM_ACTOR, plan, date.fromisoformat(on), client)
    for view in views:
        console.print(f"{view.claim_ref}: {_yuan(view.amount_fen)} {view.status}")
    if any(view.status in ("failed", "no_payee") for view in views):
        raise typer.Exit(EXIT_REFUSED)


@app.command("resend")
@friendly_errors
def resend_command(
    claim: str = typer.Argument(..., help="The claim reference whose transfer failed"),
) -> None:
    """Send a failed payout transfer again through the plan's provider, as a new transfer (the
    failed one stays on record). Refused unless the payout's latest transfer failed."""
    ctx = context()
    with transfer_client(ctx, plan_of_claim(ctx, claim)) as client:
        view = resend_transfer(ctx, SYSTEM_ACTOR, claim, client)
    console.print(f"{view.claim_ref}: {_yuan(view.amount_fen)} {view.status}", highlight=False)
    if view.status in ("failed", "no_payee"):
        raise typer.Exit(EXIT_REFUSED)
