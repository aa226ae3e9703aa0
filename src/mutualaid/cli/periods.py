"""`mutualaid periods …`: close a period, collect its shares, pay its cases, show the notice."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mutualaid.cli.common import console, context, friendly_errors, print_json
from mutualaid.domain.apportionment import CapExcess
from mutualaid.domain.money import format_yuan
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.files import export_collection_file, import_collection_results
from mutualaid.services.collections.payouts import pay_approved_claims
from mutualaid.services.collections.providers import PaymentProvider
from mutualaid.services.collections.retries import retry_failed_payments
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.providers import provider_of
from mutualaid.services.periods.close import close_period
from mutualaid.services.periods.notice import period_notice
from mutualaid.services.periods.proofs import charge_proof, published_trust
from mutualaid.services.periods.statements import member_statement
from mutualaid.services.periods.views import PeriodView, list_periods
from mutualaid.transparency.charge_proofs import verify_charge_proof

app = typer.Typer(help="Periods: close, collect, pay, and the public notice.", no_args_is_help=True)

PLAN = typer.Argument(..., help="Plan code, e.g. xhb-main")
ON = typer.Option(..., "--on", help="The period's publicity day, YYYY-MM-DD")
FAILURE_BP = typer.Option(
    0,
    "--simulated-failure-bp",
    min=0,
    max=10_000,
    help="Simulated provider: basis points of payers whose debit fails",
)


@contextmanager
def _provider(ctx: ServiceContext, plan: str, failure_bp: int) -> Iterator[PaymentProvider | None]:
    """The plan's provider (None for a plan collected through the collection file: a post-paid
    one is then refused with provider_required; a prepaid one needs none)."""
    with provider_of(ctx, plan, simulated_failure_bp=failure_bp) as provider:
        yield provider


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else format_yuan(fen, symbol=True, grouping=True)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar (shown on a terminal only) fed by (done, total) callbacks."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def _print_period(period: PeriodView) -> None:
    console.print(
        f"[bold]{period.ref}[/bold] {period.state} · locked at "
        f"{period.lock_at:%Y-%m-%d %H:%M} UTC · debit on {period.debit_on}"
    )
    table = Table("figure", "amount", show_header=False)
    for name, value in (
        ("members sharing", f"{period.member_count:,}" if period.member_count is not None else "—"),
        ("cases", str(period.case_count)),
        ("aid", _yuan(period.aid_fen)),
        ("management fee", _yuan(period.fee_fen)),
        ("surplus carried in", _yuan(period.surplus_in_fen)),
        ("share per member", _yuan(period.share_fen)),
        ("total charged", _yuan(period.total_charged_fen)),
        ("paid by the sponsor", _yuan(period.sponsor_fen)),
        ("prorated", _yuan(period.prorated_fen)),
        ("surplus carried out", _yuan(period.surplus_out_fen)),
        ("sponsored cases (operator-paid)", _yuan(period.sponsored_aid_fen)),
        ("charges root", period.charges_root or "—"),
    ):
        table.add_row(name, value)
    console.print(table)


@app.command("close")
@friendly_errors
def close(
    plan: str = PLAN,
    on: str = typer.Option(None, "--on", help="Publicity day YYYY-MM-DD (default: the latest)"),
    cap_excess: CapExcess = typer.Option(CapExcess.SPONSOR, help="Who bears what the caps remove"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Close a period: lock, share, commitment. Safe to run again (it resumes, never re-charges)."""
    with _progress("committing charges") as progress:
        period = close_period(
            context(),
            SYSTEM_ACTOR,
            plan,
            date.fromisoformat(on) if on else None,
            cap_excess=cap_excess,
            progress=progress,
        )
    if as_json:
        print_json(dataclasses.asdict(period))
    else:
        _print_period(period)


@app.command("list")
@friendly_errors
def list_(plan: str = PLAN) -> None:
    """The plan's periods, newest first."""
    table = Table(
        "publicity day", "state", "members", "cases", "share", "total", "sponsor", "surplus out"
    )
    for p in list_periods(context(), plan):
        table.add_row(
            str(p.publicity_on),
            p.state,
            f"{p.member_count:,}" if p.member_count is not None else "—",
            str(p.case_count if p.case_count is not None else "—"),
            _yuan(p.share_fen),
            _yuan(p.total_charged_fen),
            _yuan(p.sponsor_fen),
            _yuan(p.surplus_out_fen),
        )
    console.print(table)


@app.command("collect")
@friendly_errors
def collect(
    plan: str = PLAN,
    on: str = ON,
    failure_bp: int = FAILURE_BP,
    chunk: int = typer.Option(2000, min=1, help="Memberships per transaction"),
) -> None:
    """Debit every payer's share (post-paid: through the plan's payment provider, `[payments]`
    in the plan file; prepaid: the balances). Resumable: run it again after a crash."""
    ctx = context()
    with _progress("collecting") as progress, _provider(ctx, plan, failure_bp) as provider:
        run = collect_period(
            ctx,
            SYSTEM_ACTOR,
            plan,
            date.fromisoformat(on),
            provider,
            chunk=chunk,
            progress=progress,
        )
    console.print(
        f"{run.period_ref}: {run.payers_asked:,} payers asked, "
        f"{_yuan(run.collected_fen)} collected, {_yuan(run.failed_fen)} failed "
        "(retried daily by `mutualaid periods retry`)"
    )


@app.command("retry")
@friendly_errors
def retry(plan: str = PLAN, failure_bp: int = FAILURE_BP) -> None:
    """The daily job: retry failed shares; past the retry days, remove the member."""
    ctx = context()
    with _provider(ctx, plan, failure_bp) as provider:
        run = retry_failed_payments(ctx, SYSTEM_ACTOR, plan, provider)
    console.print(
        f"{run.paid_late} paid late, {run.still_failing} still failing, {run.removed} "
        f"removed ({_yuan(run.written_off_fen)} written off to the sponsor)"
    )


@app.command("export-collection")
@friendly_errors
def export_collection(
    plan: str = PLAN,
    on: str = ON,
    out: Path = typer.Argument(..., dir_okay=False, help="CSV file to write"),
) -> None:
    """Write the debit instructions for a real payment provider, one line per charged
    membership: membership, payer, amount, reference."""
    with out.open("wb") as handle, _progress("exporting") as progress:
        lines = export_collection_file(context(), plan, date.fromisoformat(on), handle, progress)
    console.print(f"{lines:,} lines written to {out}")


@app.command("import-results")
@friendly_errors
def import_results(
    plan: str = PLAN,
    on: str = ON,
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV: membership_id,status (paid or failed)"
    ),
) -> None:
    """Apply a provider's results: failed payers are suspended and retried; the rest paid."""
    with path.open(newline="", encoding="utf-8-sig") as source:
        run = import_collection_results(
            context(), SYSTEM_ACTOR, plan, date.fromisoformat(on), source
        )
    console.print(
        f"{run.period_ref}: {_yuan(run.collected_fen)} collected, "
        f"{_yuan(run.failed_fen)} failed"
        + (f", {len(run.unknown_payers)} unknown payers ignored" if run.unknown_payers else "")
    )


@app.command("pay")
@friendly_errors
def pay(plan: str = PLAN, on: str = ON) -> None:
    """Pay each case of a collected period once."""
    run = pay_approved_claims(context(), SYSTEM_ACTOR, plan, date.fromisoformat(on))
    for payout in run.payouts:
        console.print(
            f"  {payout.claim_ref} → account {payout.payee_account_id}: "
            f"{_yuan(payout.amount_fen)} ({payout.ledger_key})"
        )
    console.print(
        f"{run.period_ref}: {len(run.payouts)} paid, {_yuan(run.total_fen)}; period {run.state}"
    )


@app.command("notice")
@friendly_errors
def notice(plan: str = PLAN, on: str = ON, as_json: bool = typer.Option(False, "--json")) -> None:
    """The public notice: cases, figures, and the arithmetic that shows they add up."""
    result = period_notice(context(), plan, date.fromisoformat(on))
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    _print_period(result.period)
    cases = Table("case", "name", "illness", "age", "province", "aid")
    for case in result.cases:
        cases.add_row(
            case.ref,
            case.name_masked,
            case.illness_en,
            str(case.age),
            case.province_en,
            _yuan(case.payout_fen),
        )
    console.print(cases)
    if result.bands:
        bands = Table(
            "ages",
            "members",
            "weight",
            "band total",
            "share",
            "fairness (bp)",
            title=f"sharing rule: {result.sharing_rule}",
        )
        for band in result.bands:
            bands.add_row(
                f"{band.from_age}–{band.to_age}",
                f"{band.member_count:,}",
                band.weight,
                _yuan(band.band_total_fen),
                _yuan(band.share_fen),
                "—" if band.fairness_ratio_bp is None else f"{band.fairness_ratio_bp:,}",
            )
        console.print(bands)
    if result.groups:
        groups = Table(
            "first shared in",
            "born after",
            "born by",
            "members",
            "paid this year",
            "charge now",
            title="the annual cap, group by group",
        )
        for group in result.groups:
            groups.add_row(
                str(group.cohort_on),
                str(group.born_after_on or "…"),
                str(group.born_by_on or "…"),
                f"{group.member_count:,}",
                _yuan(group.charged_so_far_this_year_fen),
                _yuan(group.charge_fen),
            )
        console.print(groups)
    for check in result.checks:
        mark = "[green]✓[/green]" if check.holds else "[red]✗[/red]"
        console.print(f"{mark} {check.expression}: {check.left:,} = {check.right:,}")


@app.command("statement")
@friendly_errors
def statement(membership_id: int, as_json: bool = typer.Option(False, "--json")) -> None:
    """A membership's statement: every period shared in, the charge, what was paid."""
    result = member_statement(context(), SYSTEM_ACTOR, membership_id)
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    table = Table("period", "share", "charge", "paid", "status", "cases", "aid")
    for line in result.lines:
        table.add_row(
            line.period_ref,
            _yuan(line.share_fen),
            _yuan(line.charge_fen),
            _yuan(line.paid_fen),
            line.status,
            str(line.case_count),
            _yuan(line.aid_fen),
        )
    console.print(f"membership {result.membership_id} ({result.name_masked}), {result.plan_code}")
    console.print(table)
    console.print(f"charged {_yuan(result.charged_fen)}, paid {_yuan(result.paid_fen)}")


@app.command("proof")
@friendly_errors
def proof(
    membership_id: int,
    plan: str = PLAN,
    on: str = ON,
    out: Path = typer.Option(
        None, dir_okay=False, help="Also save the proof file (`mutualaid verify charge` reads it)"
    ),
) -> None:
    """A membership's charge proof, anchored to the latest published checkpoint of the log
    (checked here with the keys that checkpoint was published under)."""
    ctx = context()
    result = charge_proof(ctx, SYSTEM_ACTOR, membership_id, plan, date.fromisoformat(on))
    verify_charge_proof(result, published_trust(ctx))
    if out is not None:
        out.write_text(result.to_json(), encoding="utf-8")
    console.print(
        f"membership {membership_id} was charged {_yuan(result.charge_fen)} in "
        f"{result.period_ref}: block leaf {result.block_leaf_index} of "
        f"{result.charges_tree_size}, root {result.charges_root.hex()}, commitment leaf "
        f"{result.commitment_leaf_index} of the log ✓"
    )
