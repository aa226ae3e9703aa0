"""`mutualaid accounts …`: staff accounts."""

from __future__ import annotations

import typer

from mutualaid.cli.common import console, context, friendly_errors
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import register_account

app = typer.Typer(help="Accounts of members and staff.", no_args_is_help=True)


@app.command("create")
@friendly_errors
def create(
    phone: str = typer.Option(..., help="Phone number used to log in"),
    role: Role = typer.Option(
        Role.OPERATOR, help="member, reviewer, investigator, operator, auditor"
    ),
    name: str = typer.Option(None, help="Display name"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="MUTUALAID_NEW_PASSWORD"
    ),
) -> None:
    """Create an account (staff accounts can only be made here, not by self-registration)."""
    account = register_account(context(), phone, password, display_name=name, role=role)
    console.print(f"account {account.id} ({account.phone}) created with role {account.role}")
