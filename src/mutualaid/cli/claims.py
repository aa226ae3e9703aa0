"""`mutualaid claims …` and `mutualaid jobs …`: queues, the publicity and jury jobs, notifications."""

from __future__ import annotations

import typer
from rich.table import Table

from mutualaid.cli.common import console, context, friendly_errors, print_json
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.money import format_yuan
from mutualaid.metrics import timed_job
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.views import claim_timeline, get_claim, work_queue
from mutualaid.services.enrollment.memberships import advance_memberships
from mutualaid.services.juries.closing import close_due_juries
from mutualaid.services.juries.panels import seat_waiting_panels
from mutualaid.services.notifications import dispatch_notifications

app = typer.Typer(help="Claims: work queues and the daily publicity job.", no_args_is_help=True)
jobs = typer.Typer(
    help="Scheduled jobs, one at a time (`mutualaid worker` runs them all on the plan's calendar).",
    no_args_is_help=True,
)


@app.command("queue")
@friendly_errors
def queue(
    state: list[ClaimState] = typer.Option(None, help="Only claims in this state (repeatable)"),
    plan: str = typer.Option(None, help="Only this plan"),
    after_id: int = typer.Option(0, help="Paging: show claims after this id"),
    limit: int = typer.Option(50, min=1, max=200),
) -> None:
    """List claims waiting for staff, oldest first."""
    table = Table(
        "ref", "plan", "state", "illness", "payout (yuan)", "reported", "evidence", "objections"
    )
    for item in work_queue(
        context(),
        SYSTEM_ACTOR,
        states=state or None,
        plan_code=plan,
        after_id=after_id,
        limit=limit,
    ):
        table.add_row(
            item.ref,
            item.plan_code,
            item.state,
            item.illness_code,
            format_yuan(item.payout_fen, grouping=True),
            str(item.reported_on),
            str(item.evidence_count),
            str(item.pending_objections),
        )
    console.print(table)


@app.command("show")
@friendly_errors
def show(ref: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a claim and its timeline."""
    ctx = context()
    claim = get_claim(ctx, SYSTEM_ACTOR, ref)
    timeline = claim_timeline(ctx, SYSTEM_ACTOR, ref)
    if as_json:
        print_json({"claim": claim, "timeline": timeline})
        return
    console.print(
        f"[bold]{claim.ref}[/bold] {claim.state} · {claim.illness_code} · "
        f"{format_yuan(claim.payout_fen, symbol=True, grouping=True)} · "
        f"diagnosed {claim.diagnosed_on}"
    )
    for entry in timeline:
        console.print(
            f"  {entry.at:%Y-%m-%d %H:%M} {entry.event:<22} → {entry.state}"
            + (f"  {entry.note}" if entry.note else "")
        )


@app.command("publicity")
@friendly_errors
def publicity(plan: str) -> None:
    """Publish today's batch of approved cases and close the windows that have passed."""
    result = run_publicity(context(), plan, SYSTEM_ACTOR)
    console.print(
        f"{result.published} published, {result.approved} approved after publicity, "
        f"{result.held_by_objections} held by objections"
    )


@jobs.command("daily")
@friendly_errors
def daily(plan: str) -> None:
    """Everything a plan needs once a day: coverage, publicity, juries, notifications."""
    with timed_job("daily"):
        _daily(plan)


def _daily(plan: str) -> None:
    ctx = context()
    advanced = advance_memberships(ctx, plan)
    console.print(
        f"memberships: {advanced.now_covered:,} now covered, {advanced.aged_out:,} aged out"
    )
    result = run_publicity(ctx, plan, SYSTEM_ACTOR)
    console.print(
        f"publicity: {result.published} published, {result.approved} approved, "
        f"{result.held_by_objections} held"
    )
    panels = seat_waiting_panels(ctx)
    console.print(f"panels: {panels.seated} drawn, {panels.waiting} waiting for a checkpoint")
    juries = close_due_juries(ctx, SYSTEM_ACTOR)
    console.print(
        f"juries: {juries.closed} closed ({juries.approved} approved, {juries.rejected} "
        f"rejected, {juries.new_rounds} new rounds, {juries.inconclusive} back to staff)"
    )
    sent = dispatch_notifications(ctx)
    console.print(
        f"notifications: {sent.sent} sent, {sent.failed} to retry, {sent.dead} dead letters"
    )


@jobs.command("juries")
@friendly_errors
def juries_job() -> None:
    """Draw panels whose seed checkpoint is out, and close votes whose window has passed (run
    hourly, and after each checkpoint)."""
    ctx = context()
    with timed_job("juries"):
        panels = seat_waiting_panels(ctx)
        result = close_due_juries(ctx, SYSTEM_ACTOR)
    console.print(f"panels: {panels.seated} drawn, {panels.waiting} waiting for a checkpoint")
    console.print(
        f"{result.closed} closed: {result.approved} approved, {result.rejected} rejected, "
        f"{result.new_rounds} new rounds, {result.inconclusive} back to staff"
    )


@jobs.command("notifications")
@friendly_errors
def notifications_job() -> None:
    """Send due notifications through their channels (MUTUALAID_NOTIFY_*_URL; the log without)."""
    with timed_job("notifications"):
        result = dispatch_notifications(context())
    console.print(
        f"{result.sent} sent, {result.skipped} opted out, {result.failed} to retry, "
        f"{result.dead} new dead letters"
    )
