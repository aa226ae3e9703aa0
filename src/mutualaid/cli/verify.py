"""`mutualaid verify …`: check the log from the outside, offline, trusting only the keys you give.

Exit codes: 0 every check held; 1 a check failed (or the bundle/checkpoint/proof is malformed);
2 the input could not be read (missing file, unreachable URL) or an option is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import NoReturn

import httpx
import typer

from mutualaid.cli.common import EXIT_REFUSED, friendly_errors
from mutualaid.transparency.charge_proofs import (
    LINKS,
    ChargeProofError,
    parse_charge_proof,
    verify_charge_proof,
)
from mutualaid.transparency.checkpoints import Checkpoint, open_checkpoint
from mutualaid.transparency.errors import KeyFormatError, TransparencyError, VerificationError
from mutualaid.transparency.leaves import Leaf
from mutualaid.transparency.merkle import verify_consistency
from mutualaid.transparency.notes import VerifierKey, parse_verifier_key
from mutualaid.transparency.verification import (
    Check,
    ProofBundle,
    TrustPolicy,
    VerificationReport,
    parse_any_bundle,
    verify_bundle,
    verify_subject_bundle,
)
from mutualaid.transparency.witnesses import verify_cosigned

EXIT_FAILED = 1

app = typer.Typer(
    help="Verify the transparency log offline: a record's inclusion at a cosigned checkpoint, "
    "that a newer checkpoint extends an older one, and every signature, against keys you "
    "obtained independently. Exit code 0 only when every check holds.",
    no_args_is_help=True,
)

LOG_KEY_HELP = "The log's verifier key (name+id+key), or a file holding it"
WITNESS_KEY_HELP = "A witness's verifier key, or a file holding it (repeatable)"
QUORUM_HELP = "How many of the given witnesses must have cosigned (default: all of them)"


def read_source(source: str) -> bytes:
    """The bytes of a file or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        try:
            response = httpx.get(source, timeout=30, follow_redirects=True)
        except httpx.HTTPError as error:
            _unusable(f"cannot fetch {source}: {type(error).__name__}: {error}")
        if response.status_code != 200:
            _unusable(
                f"cannot fetch {source}: HTTP {response.status_code} {response.text.strip()[:200]}"
            )
        return response.content
    try:
        return Path(source).read_bytes()
    except OSError as error:
        _unusable(f"cannot read {source}: {error.strerror or error}")


def _unusable(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


def _fail(message: str) -> NoReturn:
    typer.echo(f"FAILED: {message}", err=True)
    raise typer.Exit(EXIT_FAILED)


def _key(text: str, option: str) -> VerifierKey:
    candidate = Path(text)
    if "+" not in text and candidate.is_file():
        text = candidate.read_text(encoding="utf-8").strip()
    try:
        return parse_verifier_key(text.strip())
    except KeyFormatError as error:
        _unusable(f"{option}: {error.message}")


def _policy(
    origin: str | None, log_key: str | None, witness_keys: list[str], quorum: int | None
) -> TrustPolicy | None:
    if log_key is None:
        if witness_keys or quorum is not None:
            _unusable("--log-key: give the log's key too")
        return None
    log = _key(log_key, "--log-key")
    witnesses = tuple(_key(k, "--witness-key") for k in witness_keys)
    needed = len(witnesses) if quorum is None else quorum
    if needed > len(witnesses):
        _unusable(f"--quorum: a quorum of {needed} needs at least {needed} --witness-key")
    return TrustPolicy(origin or log.name, log, witnesses, needed)


def _print(check: Check) -> None:
    if check.passed:
        typer.echo(f"ok      {check.name}: {check.detail}")
    else:
        typer.echo(f"FAILED  {check.name}: {check.detail}", err=True)


@app.command("bundle")
@friendly_errors
def bundle(
    source: str = typer.Argument(..., help="Proof bundle: a file or an http(s) URL"),
    log_key: str = typer.Option(None, help=LOG_KEY_HELP),
    witness_key: list[str] = typer.Option([], help=WITNESS_KEY_HELP),
    quorum: int = typer.Option(None, min=0, help=QUORUM_HELP),
    origin: str = typer.Option(None, help="Expected log origin (default: the log key's name)"),
    evidence: list[Path] = typer.Option(
        [],
        help="A document whose SHA-256 must be in an "
        "included evidence leaf of the bundle (repeatable)",
    ),
) -> None:
    """Check a proof bundle: (c) the checkpoint's log signature and witness quorum, (a) each
    leaf's inclusion at it, (b) consistency with an older checkpoint when the bundle has one;
    with --evidence, that each file's SHA-256 is recorded in an included leaf."""
    policy = _policy(origin, log_key, witness_key, quorum)
    hashes = {path: hashlib.sha256(_read_file(path)).hexdigest() for path in evidence}
    try:
        parsed = parse_any_bundle(read_source(source))
    except VerificationError as error:
        _fail(f"bundle: {error.message}")
    report = (
        verify_bundle(parsed, policy)
        if isinstance(parsed, ProofBundle)
        else verify_subject_bundle(parsed, policy)
    )
    if policy is None:
        typer.echo(
            "warning: no --log-key given: checked against the keys inside the bundle, "
            "which only say what the operator claims; pass keys you obtained "
            "independently",
            err=True,
        )
    checks = list(report.checks)
    for path, digest in hashes.items():
        checks.append(_evidence_check(report, parsed, path, digest))
    for check in checks:
        _print(check)
    for index, leaf in _leaves(report, parsed):
        typer.echo(f"leaf {index}: {leaf}")
    failures = [check for check in checks if not check.passed]
    if failures:
        _fail(
            f"{len(failures)} of {len(checks)} checks failed; first: {failures[0].name}: "
            f"{failures[0].detail}"
        )
    typer.echo(f"verified: all {len(checks)} checks hold")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        _unusable(f"cannot read {path}: {error.strerror or error}")


def _leaves(report: VerificationReport, parsed: object) -> list[tuple[int, str]]:
    if report.entries:
        return [(e.leaf_index, _leaf_text(e.leaf)) for e in report.entries]
    if isinstance(parsed, ProofBundle):
        return [(parsed.leaf_index, _leaf_text(report.leaf))]
    return []


def _leaf_text(leaf: object) -> str:
    if leaf is None:
        return "(not a canonical mutualaid leaf)"
    assert isinstance(leaf, Leaf)
    return json.dumps({"type": leaf.type, **leaf.fields}, ensure_ascii=False, sort_keys=True)


def _evidence_check(report: VerificationReport, parsed: object, path: Path, digest: str) -> Check:
    name = f"evidence {path.name}"
    included = [(e.leaf_index, e.leaf) for e in report.entries if e.included]
    if isinstance(parsed, ProofBundle) and report.ok:
        included = [(parsed.leaf_index, report.leaf)]
    for index, leaf in included:
        if leaf is None:
            continue
        if (leaf.type == "evidence" and leaf.fields.get("sha256") == digest) or (
            leaf.type == "objection" and leaf.fields.get("evidence_sha256") == digest
        ):
            return Check(name, True, f"SHA-256 {digest} is recorded in {leaf.type} leaf {index}")
    return Check(
        name,
        False,
        f"file {path} (SHA-256 {digest}) is not in any included evidence leaf of the bundle",
    )


@app.command("charge")
@friendly_errors
def charge(
    source: str = typer.Argument(..., help="Charge proof file: a file or an http(s) URL"),
    log_key: str = typer.Option(..., help=LOG_KEY_HELP),
    witness_key: list[str] = typer.Option([], help=WITNESS_KEY_HELP),
    quorum: int = typer.Option(None, min=0, help=QUORUM_HELP),
    origin: str = typer.Option(None, help="Expected log origin (default: the log key's name)"),
) -> None:
    """Check a member's charge proof (mutualaid-charge-proof/v1) link by link: the checkpoint's
    log signature and witness quorum, the period commitment leaf and its inclusion in the log,
    the period, the committed charges root, the block and its inclusion in the charges tree, and
    the member's charge. One line per link; exit code 0 only when every link holds."""
    policy = _policy(origin, log_key, witness_key, quorum)
    assert policy is not None
    try:
        proof = parse_charge_proof(read_source(source))
    except VerificationError as error:
        _fail(f"charge proof: {error.message}")
    try:
        report = verify_charge_proof(proof, policy)
    except ChargeProofError as error:
        for check in error.checks:
            _print(check)
        for name in LINKS[len(error.checks) :]:
            typer.echo(f"-       {name}: not checked", err=True)
        _fail(f"link '{error.link}' does not hold: {error.detail}")
    for check in report.checks:
        _print(check)
    typer.echo(
        f"verified: membership {proof.membership_id} was charged {proof.charge_fen} fen in "
        f"{proof.period_ref}; all {len(report.checks)} links hold"
    )


@app.command("consistency")
@friendly_errors
def consistency(
    old_checkpoint: str = typer.Argument(..., help="The older checkpoint note: file or URL"),
    new_checkpoint: str = typer.Argument(..., help="The newer checkpoint note: file or URL"),
    proof: str = typer.Option(
        None,
        help="The consistency proof: file or URL, JSON from "
        "/api/v1/log/proofs/consistency or one base64 hash per line",
    ),
    log_key: str = typer.Option(..., help=LOG_KEY_HELP),
    witness_key: list[str] = typer.Option([], help=WITNESS_KEY_HELP),
    quorum: int = typer.Option(None, min=0, help=QUORUM_HELP),
    origin: str = typer.Option(None, help="Expected log origin (default: the log key's name)"),
) -> None:
    """Check that NEW_CHECKPOINT extends OLD_CHECKPOINT (the log only ever appended), and both
    checkpoints' signatures (and the witness quorum, when witness keys are given)."""
    policy = _policy(origin, log_key, witness_key, quorum)
    assert policy is not None
    old = _checkpoint(read_source(old_checkpoint), policy, "old checkpoint")
    new = _checkpoint(read_source(new_checkpoint), policy, "new checkpoint")
    hashes = _proof_hashes(read_source(proof) if proof else b"", old.size, new.size)
    try:
        verify_consistency(
            old_size=old.size,
            new_size=new.size,
            old_root=old.root_hash,
            new_root=new.root_hash,
            proof=hashes,
        )
    except VerificationError as error:
        _fail(f"consistency: {error.message}")
    typer.echo(f"verified: the log at size {new.size} extends the log at size {old.size}")


def _checkpoint(note: bytes, policy: TrustPolicy, what: str) -> Checkpoint:
    try:
        if policy.witness_keys or policy.quorum:
            cosigned = verify_cosigned(
                note,
                policy.log_key,
                policy.witness_keys,
                policy.quorum,
                expected_origin=policy.origin,
            )
            names = ", ".join(c.name for c in cosigned.cosigners) or "no witness"
            typer.echo(
                f"ok      {what}: size {cosigned.checkpoint.size}, signed by the log, "
                f"cosigned by {names}"
            )
            return cosigned.checkpoint
        checkpoint = open_checkpoint(note, policy.log_key, expected_origin=policy.origin).checkpoint
    except TransparencyError as error:
        _fail(f"{what}: {error.message}")
    typer.echo(f"ok      {what}: size {checkpoint.size}, signed by the log")
    return checkpoint


def _proof_hashes(data: bytes, old_size: int, new_size: int) -> list[bytes]:
    text = data.decode("utf-8", errors="replace").strip()
    lines: list[str]
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except json.JSONDecodeError as error:
            _fail(f"proof: not valid JSON: {error}")
        sizes = (body.get("old_size", old_size), body.get("new_size", new_size))
        if sizes != (old_size, new_size):
            _fail(
                f"proof: it is for sizes {sizes[0]} to {sizes[1]}, but the checkpoints have "
                f"sizes {old_size} and {new_size}"
            )
        lines = body.get("proof", [])
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            _fail("proof: 'proof' must be a list of base64 strings")
    else:
        lines = text.split() if text else []
    hashes = []
    for position, line in enumerate(lines):
        try:
            hashes.append(base64.b64decode(line, validate=True))
        except (binascii.Error, ValueError):
            _fail(f"proof: hash {position} is not valid base64")
    return hashes
