"""`mutualaid members …`: bulk import, listing and the daily job."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mutualaid.cli.common import console, context, friendly_errors
from mutualaid.domain.memberships import MembershipState
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.accounts.invitations import issue_invitations
from mutualaid.services.enrollment.member_imports import DEFAULT_CHUNK_ROWS, import_members
from mutualaid.services.enrollment.memberships import advance_memberships, list_plan_members

app = typer.Typer(help="Members of a plan.", no_args_is_help=True)


def _count_data_rows(path: Path) -> int:
    lines = 0
    with path.open("rb") as raw:
        while block := raw.read(1 << 20):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


@app.command("import")
@friendly_errors
def import_command(
    plan: str = typer.Argument(..., help="Plan code, e.g. xhb-main"),
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="CSV: payer_phone,full_name,id_number[,relation][,joined_on]",
    ),
    errors: Path = typer.Option(
        None, help="Where to write refused rows (default: PATH.errors.csv)"
    ),
    chunk_rows: int = typer.Option(DEFAULT_CHUNK_ROWS, min=100, help="Rows per transaction"),
    workers: int = typer.Option(1, min=1, max=16, help="Validation worker processes"),
    invitations: Path = typer.Option(
        None,
        help="Where to write each new account's invitation code, readable by you only "
        "(default: PATH.invitations.csv). Hand each member their code: they need it to register.",
    ),
) -> None:
    """Import members from CSV, streamed; bad rows go to an error report, good rows are kept.

    Exit code 0 when every row was imported, 1 when some rows were refused (see the report).
    """
    errors_path = errors or path.with_suffix(".errors.csv")
    total = _count_data_rows(path)
    ctx = context()
    with (
        path.open("rb") as source,  # decoded line by line: a bad line is a refused row
        errors_path.open("w", newline="", encoding="utf-8") as errors_out,
        Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("import", total=total)
        report = import_members(
            ctx,
            SYSTEM_ACTOR,
            plan,
            source,
            errors_out,
            chunk_rows=chunk_rows,
            workers=workers,
            progress=lambda rows: progress.advance(task, rows),
        )
    console.print(
        f"{report.rows_read:,} rows read, {report.imported:,} imported, "
        f"{report.rejected:,} refused" + (f" (see {errors_path})" if report.rejected else "")
    )
    issued = issue_invitations(ctx)
    invitations_path = invitations or path.with_suffix(".invitations.csv")
    _write_invitations(invitations_path, issued)
    if issued:
        # The codes themselves go only to the file, never to the console or the log.
        console.print(f"{len(issued):,} invitation codes written to {invitations_path}")
    if report.rejected:
        raise typer.Exit(1)


def _write_invitations(path: Path, issued: list[tuple[str, str]]) -> None:
    """phone,invitation lines in a file only its owner may read (the codes bind accounts)."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", "invitation"])
        writer.writerows(issued)


@app.command("list")
@friendly_errors
def list_command(
    plan: str,
    after_id: int = typer.Option(0, help="Show members after this membership id (paging)"),
    limit: int = typer.Option(50, min=1, max=500),
    state: MembershipState | None = typer.Option(None),
) -> None:
    """List a plan's members, masked, one page at a time."""
    page = list_plan_members(
        context(), SYSTEM_ACTOR, plan, after_id=after_id, limit=limit, state=state
    )
    table = Table("id", "name", "relation", "sex", "province", "born", "state", "joined")
    for row in page.items:
        table.add_row(
            str(row.membership_id),
            row.name_masked,
            row.relation,
            row.sex,
            row.province_code,
            str(row.birth_year),
            row.state,
            row.joined_on.isoformat(),
        )
    console.print(table)
    more = f"; next page: --after-id {page.next_after_id}" if page.next_after_id else ""
    console.print(f"{page.total:,} members{more}")


@app.command("advance")
@friendly_errors
def advance_command(plan: str) -> None:
    """Run the daily job: end waiting periods that are over, end memberships at the exit age."""
    result = advance_memberships(context(), plan)
    console.print(f"{result.on}: {result.now_covered:,} now covered, {result.aged_out:,} aged out")
