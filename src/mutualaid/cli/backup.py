"""`mutualaid backup DIR` and `mutualaid restore DIR`: the database and the evidence store."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mutualaid.cli.common import console, context, err_console, friendly_errors, load_settings
from mutualaid.services.evidence_store import evidence_keys
from mutualaid.services.operations.backup import (
    NOT_INCLUDED,
    Manifest,
    create_backup,
    restore_backup,
)


class _Bars:
    """The services' progress reports as Rich bars on stderr (bytes, speed, time left)."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<24}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console,
        )
        self._task: TaskID | None = None
        self._done = 0

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def begin(self, label: str, total_bytes: int | None) -> None:
        self._task = self._progress.add_task(label, total=total_bytes)
        self._done = 0

    def advance(self, done_bytes: int) -> None:
        self._done = done_bytes
        if self._task is not None:
            self._progress.update(self._task, completed=done_bytes)

    def end(self) -> None:
        if self._task is not None:  # a step of unknown size shows as done, with its size
            self._progress.update(self._task, total=self._done, completed=self._done)
            self._task = None


def _size(size_bytes: int) -> str:
    if size_bytes < 1024:
        return f"{size_bytes} bytes"
    value = size_bytes / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _describe(manifest: Manifest) -> list[str]:
    return [
        f"  made       {manifest.created_at:%Y-%m-%d %H:%M:%S %Z} by mutualaid "
        f"{manifest.app_version}",
        f"  database   {manifest.dialect} at schema revision {manifest.alembic_revision}, "
        f"{_size(manifest.database.size_bytes)}",
        f"  evidence   {manifest.evidence_files} files, {_size(manifest.evidence_bytes)}",
    ]


@friendly_errors
def backup_command(
    directory: Path = typer.Argument(
        ...,
        help="A new or empty folder to write the backup into (on another disk or machine)",
        metavar="DIR",
    ),
) -> None:
    """Back up the database and the evidence files into DIR, while the service runs.

    DIR gets the database (PostgreSQL: `pg_dump -Fc`, which must be installed; SQLite: the online backup API), the encrypted evidence files as they are, and manifest.json with the SHA-256 and size of every file. Keys are NOT in the backup: keep MUTUALAID_SECRET_KEY and the log signing key (MUTUALAID_LOG_KEY_FILE) apart, or the backup cannot be read. Partial uploads are not backed up. See docs/backup.md.
    """
    settings = load_settings()
    ctx = context()
    with _Bars() as bars:
        result = create_backup(
            ctx.engine,
            settings.data_dir / "evidence",
            directory,
            now=ctx.clock.now(),
            progress=bars,
        )
    console.print(f"[green]backed up[/green] into {result.directory}")
    for line in _describe(result.manifest):
        console.print(line)
    console.print(f"  manifest   sha256 {result.manifest_sha256} (note it down with the backup)")
    console.print("not in the backup (keep apart):")
    for item in NOT_INCLUDED:
        console.print(f"  - {item}")


@friendly_errors
def restore_command(
    directory: Path = typer.Argument(
        ..., help="The backup folder (made by `mutualaid backup`)", metavar="DIR"
    ),
    manifest_sha256: str | None = typer.Option(
        None,
        "--manifest-sha256",
        help="The manifest hash `mutualaid backup` printed: refuse any other manifest",
    ),
) -> None:
    """Restore a backup into an EMPTY database and an EMPTY evidence folder.

    The target is MUTUALAID_DATABASE_URL (PostgreSQL: a new database from `createdb`, filled by `pg_restore`; SQLite: a new file) and MUTUALAID_DATA_DIR/evidence. Every file's size and SHA-256 are checked against the manifest before anything is written; a tampered or incomplete backup, or a target that holds data, is refused. Set MUTUALAID_SECRET_KEY to the key of the deployment that made the backup. See docs/backup.md for the whole restore drill.
    """
    settings = load_settings()
    ctx = context()
    evidence_dir = settings.data_dir / "evidence"
    with _Bars() as bars:
        result = restore_backup(
            ctx.engine,
            evidence_dir,
            directory,
            evidence_key=evidence_keys(settings.key_ring_secrets),
            expected_manifest_sha256=manifest_sha256,
            progress=bars,
        )
    console.print(f"[green]restored[/green] the backup in {result.directory}")
    for line in _describe(result.manifest):
        console.print(line)
    console.print(f"  into       {ctx.engine.url.render_as_string(hide_password=True)}")
    console.print(f"             and {result.evidence_dir}")
    console.print(f"  manifest   sha256 {result.manifest_sha256}")
    if result.key_opens_evidence is False:
        err_console.print(
            "[yellow]warning:[/yellow] the evidence files do not open with this "
            "MUTUALAID_SECRET_KEY: set the key of the deployment that made the backup"
        )
    console.print(
        "next: `mutualaid db upgrade` (when this version is newer), put the log signing key "
        "back (MUTUALAID_LOG_KEY_FILE), then `mutualaid serve`"
    )
