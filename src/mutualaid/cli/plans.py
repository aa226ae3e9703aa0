"""`mutualaid plans …`: check, publish and read plan files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mutualaid.cli.common import console, context, friendly_errors, print_json
from mutualaid.domain.money import format_yuan
from mutualaid.domain.plans import parse_plan_toml
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.plans.plans import list_plans, plan_rules, plan_source, publish_plan

app = typer.Typer(
    help="Plans: each plan is its own pool, configured by a TOML file.", no_args_is_help=True
)


@app.command("check")
@friendly_errors
def check(path: Path = typer.Argument(..., help="A plan file (TOML)")) -> None:
    """Validate a plan file without touching the database (exit 2 with the key at fault)."""
    rules = parse_plan_toml(path.read_text(encoding="utf-8"))
    console.print(f"{path}: plan {rules.code} is valid ({len(rules.illnesses)} illnesses)")


@app.command("publish")
@friendly_errors
def publish(path: Path = typer.Argument(..., help="A plan file (TOML)")) -> None:
    """Store a plan file as the plan's newest version (creates the plan the first time)."""
    result = publish_plan(context(), SYSTEM_ACTOR, path.read_text(encoding="utf-8"))
    verb = "published as version" if result.created_version else "unchanged, still version"
    console.print(f"plan {result.plan.code} {verb} {result.plan.version}")


@app.command("list")
@friendly_errors
def list_command() -> None:
    """List plans with their rule version and active members."""
    table = Table("code", "name", "version", "status", "active members")
    for summary in list_plans(context()):
        plan = summary.plan
        table.add_row(
            plan.code,
            f"{plan.name_zh} / {plan.name_en}",
            str(plan.version),
            plan.status,
            f"{summary.active_members:,}",
        )
    console.print(table)


@app.command("show")
@friendly_errors
def show(
    code: str,
    as_json: bool = typer.Option(False, "--json", help="Print the rules as JSON"),
    source: bool = typer.Option(False, "--source", help="Print the plan file (TOML)"),
) -> None:
    """Show a plan's current rules."""
    ctx = context()
    if source:
        typer.echo(plan_source(ctx, code), nl=False)
        return
    view, rules = plan_rules(ctx, code)
    if as_json:
        print_json(rules.to_json())
        return
    console.print(
        f"[bold]{rules.name_zh}[/bold] / {rules.name_en}  (v{view.version}, {view.status})"
    )
    entry = rules.entry
    console.print(
        f"entry ages: {entry.min_age_days} days / {entry.min_age_years} years to "
        f"{entry.max_age_years} years; ends at {entry.exit_age_years}"
    )
    console.print(
        f"waiting period: {rules.waiting_period.days} days; management fee: "
        f"{rules.fees.management_fee_bp / 100:g}%"
    )
    payouts = Table("ages", "tier", "cause", "payout (yuan)")
    for band in rules.payout_bands:
        payouts.add_row(
            f"{band.from_age}-{band.to_age}",
            band.tier,
            band.cause,
            format_yuan(band.amount_fen, grouping=True),
        )
    console.print(payouts)
    console.print(
        f"{len(rules.illnesses)} covered illnesses; {len(rules.health_questions)} health questions"
    )
