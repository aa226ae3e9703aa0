"""`mutualaid verify …`: check the log from the outside, offline, trusting only the keys you give.

Exit codes: 0 every check held; 1 a check failed (or the bundle/checkpoint/proof is malformed);
2 the input could not be read (missing file, unreachable URL) or an option is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import date
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
from mutualaid.transparency.checkpoints import Checkpoint, open_checkpoint, parse_checkpoint
from mutualaid.transparency.errors import KeyFormatError, TransparencyError, VerificationError
from mutualaid.transparency.key_rotations import follow_key_chain
from mutualaid.transparency.leaves import Leaf
from mutualaid.transparency.merkle import MemoryTree, verify_consistency
from mutualaid.transparency.notes import VerifierKey, parse_verifier_key
from mutualaid.transparency.period_audit import (
    AuditError,
    PeriodAudit,
    audit_period,
    decode_leaves,
    instant_text,
)
from mutualaid.transparency.tiles import TILE_WIDTH, TileRef, decode_entry_bundle
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


# --- verify period (issue 14) -------------------------------------------------------------------


@app.command("period")
@friendly_errors
def period(
    plan: str = typer.Argument(..., help="The plan's code, e.g. xhb-main"),
    publicity_on: str = typer.Argument(..., metavar="PERIOD", help="Publicity day, YYYY-MM-DD"),
    source_dir: Path = typer.Option(
        None,
        "--from",
        help="A directory holding the log as served: tile/entries/… entry bundles, "
        "plan-files/<sha256>, and optionally checkpoint",
    ),
    server: str = typer.Option(
        None, help="The server's base URL, e.g. https://aid.example (instead of --from)"
    ),
    log_key: str = typer.Option(None, help=LOG_KEY_HELP + " (checks the checkpoint)"),
) -> None:
    """Recompute a closed period from the log alone: the members sharing at its lock, its cases,
    the aid, the fee, the share and the totals, to the fen, with the close's own arithmetic; report
    every figure that differs from the period's commitment leaf (exit 1)."""
    try:
        day = date.fromisoformat(publicity_on)
    except ValueError:
        _unusable(f"PERIOD: {publicity_on!r} is not a date (YYYY-MM-DD)")
    if (source_dir is None) == (server is None):
        _unusable("give the log with exactly one of --from DIR or --server URL")
    fetch = _dir_reader(source_dir) if source_dir is not None else _url_reader(server)
    # A server always serves its checkpoint (it gives the size to read up to); a directory may
    # lack one, and then every entry bundle in it is read.
    note = fetch("checkpoint", required=server is not None)
    checkpoint = _read_checkpoint(note, None) if note is not None else None
    if checkpoint is None and log_key is not None:
        _unusable("--log-key: there is no checkpoint to check")
    partial_widths = (
        sorted(
            {int(p.name) for p in source_dir.glob("tile/entries/**/*.p/*") if p.name.isdigit()},
            reverse=True,
        )
        if source_dir is not None
        else []
    )
    entries = _log_entries(fetch, checkpoint.size if checkpoint else None, partial_widths)
    if checkpoint is not None:
        _check_entries_against(checkpoint, entries, signed=log_key is not None)
    if note is not None and log_key is not None:
        _signed_by_chain(note, _key(log_key, "--log-key"), entries)
    try:
        leaves = decode_leaves(entries)
        files = {
            sha: data
            for sha in sorted(
                {str(v.fields["rules_sha256"]) for v in leaves if v.type == "plan_version"}
            )
            if (data := fetch(f"plan-files/{sha}", required=False)) is not None
        }
        audit = audit_period(leaves, files, plan, day)
    except AuditError as error:
        _fail(str(error))
    _report(audit, len(entries))
    if not audit.agrees:
        raise typer.Exit(EXIT_FAILED)


_Fetch = Callable[..., bytes | None]


def _dir_reader(root: Path) -> _Fetch:
    if not root.is_dir():
        _unusable(f"--from: {root} is not a directory")

    def fetch(path: str, *, required: bool = True) -> bytes | None:
        target = root / path
        if not target.is_file():
            if required:
                _unusable(f"--from: {target} is missing")
            return None
        return target.read_bytes()

    return fetch


def _url_reader(base: str) -> _Fetch:
    prefix = base.rstrip("/")
    where = {"checkpoint": "/log/checkpoint"}

    def fetch(path: str, *, required: bool = True) -> bytes | None:
        if path.startswith("tile/"):
            url = f"{prefix}/log/{path}"
        elif path.startswith("plan-files/"):
            url = f"{prefix}/api/v1/{path}"
        else:
            url = prefix + where[path]
        try:
            response = httpx.get(url, timeout=30, follow_redirects=True)
        except httpx.HTTPError as error:
            _unusable(f"cannot fetch {url}: {type(error).__name__}: {error}")
        if response.status_code == 404 and not required:
            return None
        if response.status_code != 200:
            _unusable(f"cannot fetch {url}: HTTP {response.status_code}")
        return response.content

    return fetch


def _log_entries(fetch: _Fetch, size: int | None, partial_widths: Sequence[int]) -> list[bytes]:
    """Every leaf of the log, in order: full entry bundles of 256 leaves, then the partial one.
    With a checkpoint, exactly its `size` leaves; without (a directory), every bundle found."""
    entries: list[bytes] = []
    index = 0
    while size is None or (index + 1) * TILE_WIDTH <= size:
        full = fetch(TileRef(None, index).path, required=size is not None)
        if full is None:
            break
        entries += _bundle(full, index, TILE_WIDTH)
        index += 1
    widths = [size % TILE_WIDTH] if size is not None and size % TILE_WIDTH else []
    for width in widths if size is not None else partial_widths:
        partial = fetch(TileRef(None, index, width).path, required=size is not None)
        if partial is not None:
            entries += _bundle(partial, index, width)
            break
    if not entries:
        _unusable("the log holds no entry bundle")
    return entries


def _bundle(data: bytes, index: int, width: int) -> list[bytes]:
    try:
        bundle = decode_entry_bundle(data)
    except TransparencyError as error:
        _fail(f"entry bundle {index}: {error.message}")
    if len(bundle) != width:
        _fail(f"entry bundle {index} holds {len(bundle)} leaves, not {width}")
    return bundle


def _read_checkpoint(note: bytes, log_key: str | None) -> Checkpoint:
    try:
        if log_key is not None:
            return open_checkpoint(note, _key(log_key, "--log-key")).checkpoint
        return parse_checkpoint(note.decode("utf-8").split("\n\n", 1)[0] + "\n")
    except TransparencyError as error:
        _fail(f"checkpoint: {error.message}")
    except UnicodeDecodeError as error:
        _fail(f"checkpoint: {error}")


def _check_entries_against(
    checkpoint: Checkpoint, entries: Sequence[bytes], *, signed: bool
) -> None:
    """The leaves read must be exactly the log at its checkpoint: same size, same root."""
    tree = MemoryTree.from_entries(entries)
    if tree.size != checkpoint.size or tree.root() != checkpoint.root_hash:
        _fail(
            f"the {len(entries)} leaves read do not make the checkpoint's tree "
            f"(size {checkpoint.size}, root {checkpoint.root_hash.hex()}): the log was altered "
            "or is incomplete"
        )
    how = "signed by the log" if signed else "signature not checked (no --log-key)"
    typer.echo(f"ok      checkpoint: size {checkpoint.size}, root matches the leaves; {how}")


def _report(audit: PeriodAudit, leaves: int) -> None:
    typer.echo(
        f"period {audit.period_ref}: lock {instant_text(audit.lock_at)}, plan version "
        f"{audit.plan_version} (file {audit.rules_sha256[:16]}…, sharing rule "
        f"{audit.sharing_rule}); from {leaves} leaves: {audit.members} members at the lock, "
        f"{audit.excluded} suspended, {len(audit.cases)} shared case(s)"
    )
    for name, value in audit.recomputed.items():
        committed = audit.committed.get(name)
        if committed == value:
            typer.echo(f"ok      {name}: {value}")
        else:
            shown = "not stated" if committed is None else str(committed)
            typer.echo(
                f"FAILED  {name}: the log gives {value}, the period's commitment says {shown}",
                err=True,
            )
    for name, why in audit.unchecked.items():
        typer.echo(f"skipped {name}: {why}")
    if audit.agrees:
        typer.echo(f"period {audit.period_ref} recomputed from the log: every figure agrees")
    else:
        typer.echo(
            f"FAILED: period {audit.period_ref}: {len(audit.differences)} figure(s) differ from "
            "the commitment",
            err=True,
        )


# --- verify log (issue 16): the whole log, following its signing key's rotations -----------------


@app.command("log")
@friendly_errors
def log(
    source_dir: Path = typer.Option(
        None,
        "--from",
        help="A directory holding the log as served: checkpoint and tile/entries/… bundles",
    ),
    server: str = typer.Option(
        None, help="The server's base URL, e.g. https://aid.example (instead of --from)"
    ),
    log_key: str = typer.Option(..., help="The log's ORIGINAL verifier key, or a file holding it"),
) -> None:
    """Check the log's checkpoint against its leaves and its signature, trusting only the log's
    original key: each announcement of a new signing key on the log must be signed by the key
    trusted before it, and the checkpoint by the last key so announced (exit 1 otherwise)."""
    if (source_dir is None) == (server is None):
        _unusable("give the log with exactly one of --from DIR or --server URL")
    fetch = _dir_reader(source_dir) if source_dir is not None else _url_reader(server)
    note = fetch("checkpoint")
    assert note is not None
    original = _key(log_key, "--log-key")
    checkpoint = _read_checkpoint(note, None)
    entries = _log_entries(fetch, checkpoint.size, [])
    _check_entries_against(checkpoint, entries, signed=True)
    _signed_by_chain(note, original, entries)
    typer.echo(f"verified: the log at size {checkpoint.size}")


def _signed_by_chain(note: bytes, original: VerifierKey, entries: Sequence[bytes]) -> None:
    """The checkpoint is signed by the key the log's announcements lead to from `original`."""
    try:
        trusted, changes = follow_key_chain(entries, original)
    except VerificationError as error:
        _fail(error.message)
    for change in changes:
        typer.echo(
            f"ok      log key announcement at leaf {change.leaf_index}: "
            f"'{change.old_key.label}' hands over to '{change.new_key.label}'"
        )
    try:
        open_checkpoint(note, trusted, expected_origin=original.name)
    except TransparencyError as error:
        _fail(f"checkpoint: {error.message}")
    typer.echo(f"ok      checkpoint signature: by '{trusted.label}'")
