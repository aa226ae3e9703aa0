"""`mutualaid worker`: run every scheduled job at its instant in each plan's zone, or list them."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from types import FrameType
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from mutualaid.cli.common import console, context, friendly_errors, load_settings
from mutualaid.metrics import record_job
from mutualaid.services.collections.providers import PaymentProvider, SimulatedProvider
from mutualaid.services.scheduling.jobs import JobEnvironment
from mutualaid.services.scheduling.worker import (
    ScheduleLine,
    run_worker,
    schedule_table,
    tick,
    worker_name,
)
from mutualaid.services.transparency.checkpoints import LogConfig, load_log_config


def _local(instant: datetime | None, zone: str) -> str:
    if instant is None:
        return "—"
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


def _print_table(lines: list[ScheduleLine]) -> None:
    table = Table("job", "plan", "next run", "last run", "last outcome")
    for line in lines:
        if line.running_since is not None:
            next_run = f"[yellow]running since {_local(line.running_since, line.zone)}[/yellow]"
        else:
            next_run = _local(line.next_run_at, line.zone)
            if line.failed_attempts:
                next_run += f" (retry {line.failed_attempts + 1})"
        outcome = "—"
        if line.last_state is not None:
            colour = {"succeeded": "green", "failed": "red"}.get(line.last_state, "yellow")
            outcome = f"[{colour}]{line.last_state}[/{colour}] {line.last_outcome or ''}"
        table.add_row(
            line.job,
            line.scope or "(all plans)",
            next_run,
            _local(line.last_run_at, line.zone),
            outcome,
        )
    console.print(table)


def _environment(simulated_failure_bp: int | None) -> JobEnvironment:
    settings = load_settings()
    provider: PaymentProvider | None = None
    if simulated_failure_bp is not None:
        provider = SimulatedProvider(failure_bp=simulated_failure_bp)

    def log_config() -> LogConfig:
        return load_log_config(settings)

    return JobEnvironment(provider=provider, log_config=log_config)


@friendly_errors
def worker_command(
    list_: bool = typer.Option(
        False, "--list", help="Print the schedule (next run, last run, last outcome) and exit"
    ),
    once: bool = typer.Option(
        False, "--once", help="Run what is due now, then exit (instead of running until stopped)"
    ),
    simulated_failure_bp: int = typer.Option(
        None,
        "--simulated-provider",
        min=0,
        max=10_000,
        help="Collect post-paid plans through the simulated provider, failing this many basis "
        "points of payers (demo and tests; without it, post-paid plans collect through the "
        "collection file and the worker skips their collection)",
    ),
) -> None:
    """Run every scheduled job (coverage, period close, collection, retries, publicity, juries,
    checkpoints, notifications, rate-counter pruning) at its instant in each plan's time zone.

    Several workers may run at once: each due job runs once (a lease in the database), and a job
    a stopped worker left half done is resumed by the next. SIGTERM stops it after the job in
    progress.
    """
    ctx = context()
    if list_:
        _print_table(schedule_table(ctx))
        return
    env = _environment(simulated_failure_bp)
    name = worker_name()
    if once:
        for result in tick(ctx, env, name):
            console.print(
                f"{result.job} {result.scope or '(all plans)'} {result.due_at:%Y-%m-%d %H:%M} "
                f"UTC: {result.state} {result.outcome}"
            )
        return
    stop = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console.print(f"worker {name} started; SIGTERM or Ctrl-C stops it after the current job")
    run_worker(ctx, env, stop, owner=name, on_job_finished=_count_job)


def _count_job(job: str, state: str, seconds: float) -> None:
    """Each finished run in the metrics (a skipped run, e.g. no payment provider, is not a run)."""
    if state != "skipped":
        record_job(job, "ok" if state == "succeeded" else "failed", seconds)
