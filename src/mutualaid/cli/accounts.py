"""`mutualaid accounts …`: staff accounts."""

from __future__ import annotations

import typer

from mutualaid.cli.common import console, context, friendly_errors
from mutualaid.domain.accounts import Role
from mutualaid.domain.second_factors import needs_second_factor
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, register_account
from mutualaid.services.accounts.phone_codes import mark_phone_verified
from mutualaid.services.accounts.rate_limits import prune_rate_counters
from mutualaid.services.accounts.second_factors import reset_factor

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
    if needs_second_factor(account.role):
        console.print("staff: at the first web sign-in they set up an authenticator app (TOTP)")


@app.command("reset-2fa")
@friendly_errors
def reset_2fa(phone: str = typer.Option(..., help="Phone number of the staff account")) -> None:
    """Remove a staff member's second factor (lost phone): their sessions end, and they set up
    a new authenticator at their next sign-in. Audited as the system."""
    account_id = reset_factor(context(), phone, SYSTEM_ACTOR.recorded_id)
    console.print(f"account {account_id}: second factor removed; they enrol again at next sign-in")


@app.command("prune-rate-limits")
@friendly_errors
def prune_rate_limits() -> None:
    """Delete request and registration counters of windows that have ended (run daily)."""
    deleted = prune_rate_counters(context())
    console.print(f"{deleted} expired rate-limit counters deleted")


@app.command("verify-phone")
@friendly_errors
def verify_phone(phone: str = typer.Option(..., help="Phone number of the account")) -> None:
    """Mark an account's phone as verified without an SMS code (the owner proved it in person, or
    a demo without an SMS gateway). Audited as the system."""
    mark_phone_verified(context(), phone, SYSTEM_ACTOR.recorded_id)
    console.print("phone verified")
