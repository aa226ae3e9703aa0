"""`mutualaid db …`: schema migrations."""

from __future__ import annotations

import typer

from mutualaid.cli.common import console, context, friendly_errors
from mutualaid.db.schema import current_revision, upgrade

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
@friendly_errors
def upgrade_command(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Bring the database (MUTUALAID_DATABASE_URL) to the newest schema."""
    ctx = context()
    upgrade(ctx.engine, revision)
    console.print(f"database at revision {current_revision(ctx.engine)}")


@app.command("current")
@friendly_errors
def current_command() -> None:
    """Show the database's schema revision."""
    console.print(current_revision(context().engine) or "empty (run `mutualaid db upgrade`)")
