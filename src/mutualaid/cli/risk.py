"""`mutualaid risk …`: re-score a plan's open claims, the weight report, the operator's figures."""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.table import Table

from mutualaid.cli.common import console, context, friendly_errors, print_json
from mutualaid.domain.money import format_yuan
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.risk.figures import risk_operations, weight_report
from mutualaid.services.risk.risk import rescore_plan

app = typer.Typer(
    help="Risk controls: signals, weights and investigation figures.", no_args_is_help=True
)


@app.command("rescore")
@friendly_errors
def rescore(
    plan: str = typer.Argument(..., help="Plan code"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Score every open claim of a plan again (after a data fix or a change of thresholds)."""
    result = rescore_plan(context(), SYSTEM_ACTOR, plan)
    if as_json:
        print_json(asdict(result))
        return
    console.print(f"{result.scored} open claims scored, {result.flagged} flagged (score ≥ 25)")
    for code, count in result.by_signal.items():
        console.print(f"  {code:<24} {count}")


@app.command("weights")
@friendly_errors
def weights(
    plan: str = typer.Option(None, help="Only this plan"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Each signal's weight, how useful reviewers found it, and the weight the feedback suggests."""
    advice = weight_report(context(), SYSTEM_ACTOR, plan)
    if as_json:
        print_json([asdict(a) for a in advice])
        return
    table = Table("signal", "weight", "useful", "rejected", "suggested")
    for a in advice:
        table.add_row(
            str(a.code),
            str(a.weight),
            "—" if a.useful_rate is None else f"{a.useful_rate:.0%}",
            "—" if a.rejected_rate is None else f"{a.rejected_rate:.0%}",
            str(a.suggested) + ("" if a.enough_feedback else " (too little feedback)"),
        )
    console.print(table)


@app.command("figures")
@friendly_errors
def figures(
    plan: str = typer.Argument(..., help="Plan code"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Investigation cost per case (field, desk) and how flagged cases ended."""
    result = risk_operations(context(), SYSTEM_ACTOR, plan)
    if as_json:
        print_json(asdict(result))
        return
    for mode in result.modes:
        console.print(
            f"{mode.mode:<6} {mode.cases} cases, "
            f"{format_yuan(mode.cost_per_case_fen, symbol=True, grouping=True)} per case"
        )
    console.print(
        f"flagged {result.flagged}: decided {result.flagged_decided}, rejected "
        f"{result.flagged_rejected} (fraud {result.flagged_rejected_fraud}); not flagged: "
        f"decided {result.unflagged_decided}, rejected {result.unflagged_rejected}"
    )
