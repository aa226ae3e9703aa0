"""`mutualaid keys …`: rotate the secret key ring and the log's signing key.

Exit codes: 0 done; 2 refused (key_version_retired, duplicate_identity_across_versions,
log_key_* …: the message names the code), with the batches before the refusal committed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mutualaid.cli.common import console, context, err_console, friendly_errors, load_settings
from mutualaid.services.keys.log_keys import announce_log_key
from mutualaid.services.keys.rotation import (
    DEFAULT_BATCH_ROWS,
    KeyStatus,
    key_status,
    rotate_evidence,
    rotate_personal_data,
    rotate_second_factors,
)
from mutualaid.services.transparency.checkpoints import load_log_config, read_key_file

app = typer.Typer(
    help="Rotate keys: move stored personal data and evidence to the newest secret key version "
    "of MUTUALAID_SECRET_KEYS, and announce a new log signing key on the log. "
    "See docs/operations.md, Key rotation.",
    no_args_is_help=True,
)


@app.command("status")
@friendly_errors
def status() -> None:
    """Rows (and evidence files) per secret key version; exit 1 while any is under an older one."""
    ctx = context()
    report = key_status(ctx)
    _print_status(report)
    if report.pending:
        raise typer.Exit(1)


def _print_status(report: KeyStatus) -> None:
    live = ", ".join(str(v) for v in report.live_versions)
    console.print(f"current key version {report.current_version} (key ring: {live})")
    versions = sorted(
        {
            *report.persons,
            *report.second_factors,
            *(report.evidence or {}),
            report.current_version,
        }
    )
    table = Table("key version", "persons", "staff second factors", "evidence files")
    for version in versions:
        table.add_row(
            f"{version}{' (current)' if version == report.current_version else ''}"
            f"{' (NOT in the ring)' if version in report.retired_in_use else ''}",
            str(report.persons.get(version, 0)),
            str(report.second_factors.get(version, 0)),
            "-" if report.evidence is None else str(report.evidence.get(version, 0)),
        )
    console.print(table)
    if report.pending:
        console.print(f"{report.pending} still under an older version: run `mutualaid keys rotate`")
    else:
        console.print("everything is under the current version; older versions may be removed")


@app.command("rotate")
@friendly_errors
def rotate(
    batch: int = typer.Option(DEFAULT_BATCH_ROWS, min=1, help="People per transaction"),
    evidence: bool = typer.Option(True, help="Re-encrypt the evidence files too"),
) -> None:
    """Re-hash and re-encrypt everything under an older key version with the current one.

    Safe while the service runs (each batch is its own transaction; look-ups find a person under
    any live version) and resumable: stopped, it goes on from where it was when run again.
    """
    ctx = context()
    before = key_status(ctx, with_evidence=evidence)
    current = before.current_version

    def pending(counts: dict[int, int] | None) -> int:
        return sum(n for v, n in (counts or {}).items() if v != current)

    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as bars:

        def bar(name: str, total: int) -> Callable[[int], None]:
            task = bars.add_task(name, total=total)
            return lambda n: bars.advance(task, n)

        persons = rotate_personal_data(
            ctx, batch_rows=batch, progress=bar("persons", pending(before.persons))
        )
        factors = rotate_second_factors(
            ctx, progress=bar("staff second factors", pending(before.second_factors))
        )
        files = (
            rotate_evidence(ctx, progress=bar("evidence files", pending(before.evidence)))
            if evidence
            else 0
        )
    console.print(
        f"key version {current}: {persons} persons, {factors} staff second factors and "
        f"{files} evidence files moved"
    )
    _print_status(key_status(ctx, with_evidence=evidence))


@app.command("rotate-log-key")
@friendly_errors
def rotate_log_key(
    new_key_file: Path = typer.Argument(
        ..., help="The new signer key (`mutualaid log keygen --out FILE`)"
    ),
) -> None:
    """Announce NEW_KEY_FILE as the log's signing key, signed by the key in use
    (MUTUALAID_LOG_KEY_FILE), and publish a checkpoint signed by it. Then point
    MUTUALAID_LOG_KEY_FILE at NEW_KEY_FILE everywhere before the next checkpoint; verifiers
    holding the original key follow the announcement (`mutualaid verify log`)."""
    settings = load_settings()
    config = load_log_config(settings)
    new_signer = read_key_file(new_key_file)
    ctx = context()
    result = announce_log_key(ctx, config, new_signer)
    checkpoint = result.checkpoint
    console.print(
        f"announced {new_signer.verifier().encode()}\n"
        f"checkpoint size {checkpoint.size} signed by the new key"
        f"{'' if checkpoint.published else ' (NOT published: witnesses must learn the new key)'}"
        f"\nnow set MUTUALAID_LOG_KEY_FILE={new_key_file}"
    )
