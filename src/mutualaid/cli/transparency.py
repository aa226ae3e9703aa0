"""`mutualaid log …`: run the transparency log (keys, sequencer, checkpoints, bundles)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy import func, select

from mutualaid.cli.common import EXIT_REFUSED, context, friendly_errors, load_settings
from mutualaid.db.models import LogEntry
from mutualaid.metrics import JobOutcome, record_job, timed_job
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import (
    latest_published,
    load_log_config,
    proof_bundle,
    publish_checkpoint,
    write_key_file,
)
from mutualaid.services.transparency.log import DEFAULT_BATCH, integrate_all
from mutualaid.services.transparency.proofs import log_size
from mutualaid.transparency.notes import generate_signer_key

DEFAULT_ORIGIN = "mutualaid.example/log"


@contextmanager
def service_context() -> Iterator[ServiceContext]:
    """The service context, its connections closed when the command ends."""
    ctx = context()
    try:
        yield ctx
    finally:
        ctx.engine.dispose()


app = typer.Typer(
    help="The transparency log: keys, the sequencer, signed checkpoints and proof bundles. "
    "`mutualaid worker` runs `integrate` and `checkpoint` on its schedule (or use --every).",
    no_args_is_help=True,
)


@app.command("keygen")
@friendly_errors
def keygen(
    name: str = typer.Option(
        None,
        help="Key name = the log's origin (default: MUTUALAID_LOG_ORIGIN or mutualaid.example/log)",
    ),
    out: Path = typer.Option(
        ...,
        help="Where to write the secret key (mode 0600, never "
        "overwritten); point MUTUALAID_LOG_KEY_FILE at it",
    ),
) -> None:
    """Create the log's Ed25519 signer key; prints the verifier key to publish."""
    origin = name or os.environ.get("MUTUALAID_LOG_ORIGIN") or DEFAULT_ORIGIN
    signer = generate_signer_key(origin)
    write_key_file(out, signer)
    typer.echo(signer.verifier().encode())


@app.command("integrate")
@friendly_errors
def integrate(
    batch: int = typer.Option(DEFAULT_BATCH, min=1, help="Leaves per transaction"),
    every: float = typer.Option(0, min=0, help="Repeat every SECONDS (0: run once)"),
) -> None:
    """Give queued leaves their index in the log (the sequencer)."""
    with service_context() as ctx:
        while True:
            with timed_job("log_integrate"):
                result = integrate_all(ctx, max_batch=batch)
            typer.echo(
                f"integrated {result.integrated} leaves; log size {result.size}, "
                f"root {result.root_hash.hex()}"
            )
            if not every:
                return
            time.sleep(every)


@app.command("checkpoint")
@friendly_errors
def checkpoint(
    every: float = typer.Option(0, min=0, help="Repeat every SECONDS (0: run once)"),
) -> None:
    """Integrate queued leaves, sign a checkpoint and gather witness cosignatures.

    Exits with 2 when the witness quorum was not met (the checkpoint is kept unpublished and
    retried next time).
    """
    settings = load_settings()
    config = load_log_config(settings)
    with service_context() as ctx:
        while True:
            start = time.perf_counter()
            try:
                result = publish_checkpoint(ctx, config)
            except Exception:
                record_job("log_checkpoint", "failed", time.perf_counter() - start)
                raise
            cp = result.checkpoint
            # Unpublished (the witness quorum not met) counts as failed: it is retried next time.
            job_outcome: JobOutcome = "ok" if cp.published else "failed"
            record_job("log_checkpoint", job_outcome, time.perf_counter() - start)
            state = "published" if cp.published else "NOT published"
            typer.echo(
                f"checkpoint {config.origin} size {cp.size} root {cp.root_hash.hex()}: "
                f"{state}, {cp.cosigners} of {len(config.witnesses)} witnesses cosigned "
                f"(quorum {config.quorum}); {result.integrated} leaves integrated"
            )
            for outcome in result.outcomes:
                typer.echo(f"  {outcome.name}: {outcome.detail}", err=not outcome.cosigned)
            if not every:
                if not cp.published:
                    raise typer.Exit(EXIT_REFUSED)
                return
            time.sleep(every)


@app.command("status")
@friendly_errors
def status() -> None:
    """Integrated size, queued leaves and the latest published checkpoint."""
    with service_context() as ctx, ctx.reading() as session:
        size = log_size(session)
        pending = session.scalar(select(func.count()).where(LogEntry.leaf_index.is_(None)))
        latest = latest_published(session)
    typer.echo(f"integrated leaves: {size}\nqueued leaves: {pending}")
    if latest is None:
        typer.echo("no published checkpoint yet")
    else:
        typer.echo(
            f"latest published checkpoint: size {latest.size}, root "
            f"{latest.root_hash.hex()}, {latest.cosigners} cosigners, published "
            f"{latest.published_at}"
        )


@app.command("bundle")
@friendly_errors
def bundle(
    subject_type: str = typer.Argument(..., help="e.g. claim"),
    subject_ref: str = typer.Argument(..., help="e.g. the claim's ref"),
    out: Path = typer.Option(None, help="Write here instead of standard output"),
    older_size: int = typer.Option(
        None, min=0, help="Also prove consistency with the published checkpoint at this size"
    ),
) -> None:
    """Export a subject's self-contained proof bundle (check it with `mutualaid verify bundle`)."""
    with service_context() as ctx:
        text = proof_bundle(ctx, subject_type, subject_ref, older_size=older_size).to_json()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
