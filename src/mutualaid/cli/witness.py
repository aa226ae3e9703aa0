"""`mutualaid witness …`: run an independent witness (C2SP tlog-witness) for the log."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
import uvicorn

from mutualaid.cli.common import EXIT_REFUSED, friendly_errors
from mutualaid.services.transparency.checkpoints import read_key_file, write_key_file
from mutualaid.transparency.errors import KeyFormatError
from mutualaid.transparency.notes import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
    parse_verifier_key,
)
from mutualaid.transparency.witness_server import WitnessStore, create_witness_app
from mutualaid.transparency.witnesses import generate_witness_key

app = typer.Typer(
    help="An independent witness: cosigns the log's checkpoints only after checking that each "
    "extends the last one it cosigned. It keeps its own key and its own state file; it needs no "
    "access to the operator's database.",
    no_args_is_help=True,
)


def _refuse(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


@app.command("keygen")
@friendly_errors
def keygen(
    name: str = typer.Option(..., help="The witness's key name, e.g. witness.hospital.example"),
    out: Path = typer.Option(..., help="Where to write the secret key (mode 0600)"),
) -> None:
    """Create a witness cosigning key (Ed25519 cosignature/v1); prints the verifier key, which
    the log operator lists in MUTUALAID_WITNESSES and auditors pass to `mutualaid verify`."""
    signer = generate_witness_key(name)
    write_key_file(out, signer)
    typer.echo(signer.verifier().encode())


@app.command("serve")
@friendly_errors
def serve(
    key: Path = typer.Option(
        ..., help="The witness's secret key file (`mutualaid witness keygen`)"
    ),
    state: Path = typer.Option(
        ...,
        help="SQLite file remembering the last cosigned checkpoints; "
        "back it up: a witness that forgets can be made to cosign a fork",
    ),
    log_key: list[str] = typer.Option(..., help="Verifier key of a log to follow (repeatable)"),
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8081, help="Port to listen on"),
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) and GET / (the witness's key and state)."""
    signer = read_key_file(key)
    if signer.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
        _refuse(
            f"--key: '{signer.label}' is not a witness (cosignature/v1) key; create one "
            "with `mutualaid witness keygen`"
        )
    try:
        logs = [parse_verifier_key(text.strip()) for text in log_key]
    except KeyFormatError as error:
        _refuse(f"--log-key: {error.message}")
    for log in logs:
        if log.signature_type != SIGNATURE_TYPE_ED25519:
            _refuse(f"--log-key: '{log.label}' is not an Ed25519 (0x01) log key")
    application = create_witness_app(signer, logs, WitnessStore(state))
    typer.echo(
        f"witness {signer.verifier().encode()} following "
        f"{', '.join(log.name for log in logs)} on http://{host}:{port}",
        err=True,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning")
