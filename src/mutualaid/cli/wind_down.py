"""`mutualaid schemes …` (sponsored cover, sponsored periods) and `mutualaid wind-down …` (the end
of a plan: announce, end cover, close with the final archive, exports), and `mutualaid verify
archive DIR`."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import typer

from mutualaid.cli.common import console, context, friendly_errors, load_settings, print_json
from mutualaid.cli.verify import _fail, _policy, _print
from mutualaid.domain.accounts import Role
from mutualaid.domain.money import format_yuan
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.plans.schemes import attach_scheme, list_schemes, sponsor_periods
from mutualaid.services.transparency.checkpoints import load_log_config
from mutualaid.services.wind_down.exports import member_record, member_record_csv, migration_export
from mutualaid.services.wind_down.wind_down import (
    WindDownView,
    announce_end,
    check_minimum_membership,
    close_plan,
    end_cover,
    wind_down_status,
)
from mutualaid.transparency.archives import verify_archive

schemes = typer.Typer(
    help="Sponsored schemes: operator-paid cover, and sponsored periods.", no_args_is_help=True
)
app = typer.Typer(
    help="The end of a plan: announce it, end cover (refunds), run-off, close "
    "with a final archive; members' records and the migration export.",
    no_args_is_help=True,
)

PLAN = typer.Argument(..., help="Plan code, e.g. xhb-main")


@schemes.command("attach")
@friendly_errors
def attach(
    plan: str = PLAN,
    file: Path = typer.Argument(..., help="The scheme's TOML file", exists=True, dir_okay=False),
) -> None:
    """Attach a sponsored scheme (e.g. COVID-19 cover) to a plan."""
    view = attach_scheme(context(), SYSTEM_ACTOR, plan, file.read_text(encoding="utf-8"))
    console.print(
        f"scheme {view.code} attached to {view.plan_code}: "
        f"{format_yuan(view.payout_fen, symbol=True, grouping=True)} from {view.starts_on}, "
        f"paid by the sponsor"
    )


@schemes.command("list")
@friendly_errors
def list_command(plan: str = PLAN) -> None:
    """The plan's sponsored schemes, as JSON."""
    print_json([dataclasses.asdict(s) for s in list_schemes(context(), plan)])


@schemes.command("sponsor")
@friendly_errors
def sponsor(
    plan: str = PLAN,
    kind: str = typer.Option("period", help="period: every share; cap_excess: what caps remove"),
    from_on: str = typer.Option(..., "--from", help="First publicity day, YYYY-MM-DD"),
    to_on: str = typer.Option(..., "--to", help="Last publicity day, YYYY-MM-DD"),
    memo: str = typer.Option("", help="Why (shown to auditors)"),
) -> None:
    """The sponsor pays the shares (or the cap excess) of the periods in a range."""
    view = sponsor_periods(
        context(), SYSTEM_ACTOR, plan, kind, _day(from_on, "--from"), _day(to_on, "--to"), memo
    )
    console.print(
        f"the sponsor pays the {view.kind} of {plan}'s periods {view.from_on} to {view.to_on}"
    )


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint=option) from None


def _show(view: WindDownView) -> None:
    console.print(f"{view.plan_code}: {view.status}")
    rows = [
        ("rule", view.rule),
        ("end date", view.end_on),
        ("run-off claims until", view.run_off_until_on),
        ("active members", f"{view.active_members} (minimum {view.minimum_members})"),
        ("open claims", view.open_claims),
        ("memberships ended", view.memberships_ended),
        (
            "prepaid refunds",
            None
            if view.refunds is None
            else f"{view.refunds} payers, {format_yuan(view.refunded_fen or 0, symbol=True)}",
        ),
        (
            "written off",
            None
            if view.written_off_fen is None
            else format_yuan(view.written_off_fen, symbol=True),
        ),
        ("final checkpoint", view.final_checkpoint_size),
        ("archive SHA-256", view.archive_sha256),
    ]
    for label, value in rows:
        if value is not None:
            console.print(f"  {label:<22} {value}")


@app.command("status")
@friendly_errors
def status(plan: str = PLAN, as_json: bool = typer.Option(False, "--json")) -> None:
    """Where the plan stands: open, winding down, in run-off or closed."""
    view = wind_down_status(context(), plan)
    if as_json:
        print_json(dataclasses.asdict(view))
    else:
        _show(view)


@app.command("announce")
@friendly_errors
def announce(
    plan: str = PLAN,
    end_on: str = typer.Option(..., "--end-on", help="Cover ends at 00:00 on this day"),
    reason: str = typer.Option(..., help="Why the plan ends (told to every member)"),
) -> None:
    """Announce the end of a plan: no new members; every member is notified."""
    _show(announce_end(context(), SYSTEM_ACTOR, plan, _day(end_on, "--end-on"), reason))


@app.command("end-cover")
@friendly_errors
def end_cover_command(plan: str = PLAN) -> None:
    """On or after the end date: end every membership, write off unpaid shares, refund every
    prepaid balance exactly. The plan goes into run-off."""
    _show(end_cover(context(), SYSTEM_ACTOR, plan))


@app.command("close")
@friendly_errors
def close(
    plan: str = PLAN,
    archive: Path = typer.Option(..., help="An empty directory for the static archive"),
) -> None:
    """After the run-off: a final checkpoint cosigned by the witnesses, and the static archive."""
    config = load_log_config(load_settings())
    _show(close_plan(context(), SYSTEM_ACTOR, plan, config, archive))
    console.print(
        f"archive written to {archive}; check it with `mutualaid verify archive "
        f"{archive} --log-key … --witness-key …`"
    )


@app.command("check-minimum")
@friendly_errors
def check_minimum(plan: str = PLAN) -> None:
    """The daily job: alert the operators (and follow the plan's rule) below the minimum."""
    check = check_minimum_membership(context(), SYSTEM_ACTOR, plan)
    console.print(
        f"{check.plan_code}: {check.active_members} active of a minimum "
        f"{check.minimum_members}: {check.status} ({check.action})"
    )


@app.command("export-members")
@friendly_errors
def export_members(
    plan: str = PLAN,
    out: Path = typer.Option(..., help="The CSV file to write"),
    with_identity: bool = typer.Option(
        False,
        help="Add names and identity numbers, decrypted "
        "(only with the members' consent to the transfer)",
    ),
) -> None:
    """The migration file for a successor: every member with their cover dates, streamed."""
    rows = 0
    with out.open("w", encoding="utf-8", newline="") as handle:
        for text in migration_export(context(), SYSTEM_ACTOR, plan, with_identity=with_identity):
            handle.write(text)
            rows += text.count("\n")
    console.print(f"{rows - 1} memberships written to {out}")


@app.command("member-record")
@friendly_errors
def record(
    account_id: int = typer.Argument(..., help="The member's account id"),
    output_format: str = typer.Option("json", "--format", help="json or csv"),
) -> None:
    """A member's complete record (for a member who asks support for it)."""
    data = member_record(context(), Actor(account_id, Role.MEMBER))
    if output_format == "csv":
        typer.echo(member_record_csv(data), nl=False)
    else:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@friendly_errors
def verify_archive_command(
    directory: Path = typer.Argument(
        ..., help="The archive directory", exists=True, file_okay=False
    ),
    log_key: str = typer.Option(None, help="The log's verifier key, or a file holding it"),
    witness_key: list[str] = typer.Option([], help="A witness's verifier key (repeatable)"),
    quorum: int = typer.Option(None, min=0, help="How many witnesses must have cosigned"),
    origin: str = typer.Option(None, help="Expected log origin (default: the log key's name)"),
) -> None:
    """Check a closed plan's archive offline: every file against the manifest, the final
    checkpoint's signatures, the log's leaves and tiles against its root, every period notice
    against its logged commitment, and the ledger's final balances."""
    policy = _policy(origin, log_key, witness_key, quorum)
    report = verify_archive(directory, policy)
    if policy is None:
        typer.echo(
            "warning: no --log-key given: checked against the keys inside the archive, "
            "which only say what the operator claims",
            err=True,
        )
    for check in report.checks:
        _print(check)
    failures = [c for c in report.checks if not c.passed]
    if failures:
        _fail(
            f"{len(failures)} of {len(report.checks)} checks failed; first: "
            f"{failures[0].name}: {failures[0].detail}"
        )
    typer.echo(f"verified: all {len(report.checks)} checks hold")
