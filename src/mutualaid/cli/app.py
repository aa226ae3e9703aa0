"""The one console script: `mutualaid`."""

from __future__ import annotations

import os
from pathlib import Path

import typer
import uvicorn

from mutualaid import __version__
from mutualaid.cli import (
    accounts,
    backup,
    claims,
    database,
    forecasts,
    keys,
    members,
    notifications,
    payments,
    periods,
    plans,
    reports,
    risk,
    transparency,
    verify,
    wind_down,
    witness,
    worker,
)
from mutualaid.cli.common import (
    EXIT_REFUSED,
    console,
    context,
    err_console,
    friendly_errors,
    load_settings,
)
from mutualaid.db.schema import current_revision, upgrade
from mutualaid.domain.errors import DomainError

app = typer.Typer(
    help="mutualaid: run an online mutual aid plan. Settings come from MUTUALAID_* variables "
    "(MUTUALAID_DATABASE_URL, MUTUALAID_SECRET_KEY, MUTUALAID_TIME_ZONE, MUTUALAID_DEMO).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(database.app, name="db")
app.add_typer(plans.app, name="plans")
app.add_typer(members.app, name="members")
app.add_typer(accounts.app, name="accounts")
app.add_typer(claims.app, name="claims")
app.add_typer(claims.jobs, name="jobs")
app.add_typer(transparency.app, name="log")
app.add_typer(witness.app, name="witness")
app.add_typer(verify.app, name="verify")
app.add_typer(keys.app, name="keys")
app.add_typer(periods.app, name="periods")
app.add_typer(payments.app, name="payments")
app.add_typer(risk.app, name="risk")
app.add_typer(wind_down.schemes, name="schemes")
app.add_typer(wind_down.app, name="wind-down")
app.add_typer(notifications.app, name="notifications")
verify.app.command("archive")(wind_down.verify_archive_command)
app.command("simulate")(forecasts.simulate)
app.command("calibrate")(forecasts.calibrate)
app.command("report")(reports.report)
app.command("backup")(backup.backup_command)
app.command("restore")(backup.restore_command)
app.command("worker")(worker.worker_command)


def _version(value: bool) -> None:
    if value:
        console.print(f"mutualaid {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit"
    ),
) -> None:
    """mutualaid command line."""


@app.command()
@friendly_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(
        1, min=1, max=64, help="Worker processes (use several in production)"
    ),
    access_log: bool = typer.Option(False, help="Log every request"),
) -> None:
    """Serve the web app and JSON API (OpenAPI docs at /docs)."""
    ctx = context()
    if current_revision(ctx.engine) is None:
        err_console.print(
            "[red]error:[/red] the database is empty: run `mutualaid db upgrade` first"
        )
        raise typer.Exit(EXIT_REFUSED)
    ctx.engine.dispose()
    uvicorn.run(
        "mutualaid.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="warning",
        # The app reads X-Forwarded-* itself, from MUTUALAID_FORWARDED_ALLOW_IPS only.
        proxy_headers=False,
    )


@app.command()
@friendly_errors
def demo(
    port: int = typer.Option(8000, help="Port to listen on"),
    database: Path = typer.Option(Path("var/demo.db"), help="SQLite file for the demo"),
    crowd: int = typer.Option(300, min=0, help="How many generated members to add"),
    serve_after: bool = typer.Option(
        True, "--serve/--no-serve", help="Start the server afterwards"
    ),
) -> None:
    """Create (once) a demo on SQLite: the Xiang Hu Bao plans and months of their life (members,
    claims in every state, collected periods, an open jury, witnessed checkpoints); then serve it.

    Needs MUTUALAID_DEMO=1 (`make demo` sets it), and refuses a database that holds accounts but
    no demo: the demo's staff have a published password.
    """
    os.environ.setdefault("MUTUALAID_DATABASE_URL", f"sqlite:///{database}")
    if not load_settings().demo:
        raise DomainError(
            "demo_mode_off",
            "the demo creates staff with a published password; set MUTUALAID_DEMO=1 to run it "
            "(`make demo` does, for its own var/demo.db)",
            "MUTUALAID_DEMO",
        )
    from mutualaid.services.demo.seeding import seed_demo
    from mutualaid.services.transparency.checkpoints import load_log_config

    # The history is many transactions: a run that fails on its own new file removes the file,
    # so the next run starts afresh instead of finding half a demo "already there".
    fresh = (
        os.environ["MUTUALAID_DATABASE_URL"] == f"sqlite:///{database}" and not database.exists()
    )
    ctx = context()
    try:
        upgrade(ctx.engine)
        logins = seed_demo(ctx, load_log_config(load_settings()).signer, crowd=crowd)
    except BaseException:
        ctx.engine.dispose()
        if fresh:
            for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                path.unlink(missing_ok=True)
        raise
    ctx.engine.dispose()
    url = f"http://127.0.0.1:{port}"
    console.print(
        f"[bold]mutualaid demo[/bold] ({'created' if logins.created else 'already there'}: "
        f"{os.environ['MUTUALAID_DATABASE_URL']})"
    )
    console.print(f"  open      {url}/   API docs {url}/docs")
    console.print(f"  member    phone {logins.member_phone}  password {logins.password}")
    if logins.juror_phone:
        console.print(
            f"  juror     phone {logins.juror_phone}  password {logins.password}"
            "  (seated on the open jury: /jury)"
        )
    console.print(
        f"  declined  phone {logins.declined_phone}  password {logins.password}"
        "  (a member whose debit failed)"
    )
    for role, phone in logins.staff.items():
        console.print(f"  {role:<9} phone {phone}  password {logins.password}")
    console.print(
        f"  reviewer  phone {logins.approver_phone}  password {logins.password}"
        "  (the second reviewer, who approves)"
    )
    console.print(f"  try a join with these ID numbers: {'  '.join(logins.sample_id_numbers)}")
    console.print(
        "  staff sign in with a second factor: at the first sign-in, scan the QR code shown with an"
        " authenticator app (Google or Microsoft Authenticator, FreeOTP) and keep the recovery codes"
    )
    if serve_after:
        serve(host="127.0.0.1", port=port, workers=1, access_log=False)


def main() -> None:
    app()
