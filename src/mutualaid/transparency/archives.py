"""A closed plan's static archive, and its offline verification (no database, no application).

The archive is a directory any static web server can serve:

=====================  ===========================================================================
``checkpoint``         the final checkpoint, signed by the log and cosigned by the witnesses
``tile/…``             the log as C2SP tlog-tiles: hash tiles and entry bundles (every leaf)
``keys.json``          the log's and witnesses' verifier keys and the quorum, as the operator
                       configured them (an auditor should pass keys obtained independently)
``notices/<day>.json`` every period's public notice by publicity day (``.html`` for people)
``plan.json``          the plan's rules, schemes, sponsorships and how it ended
``ledger.json``        the plan's ledger balances when it closed
``index.html``         a page that links it all
``manifest.json``      the SHA-256 of every other file
=====================  ===========================================================================

`verify_archive` checks that every file is the one the manifest lists, that the checkpoint is
signed and cosigned, that the leaves in the tiles make the checkpoint's root (and the hash tiles
hold the right nodes), and that every period notice is committed in the log and adds up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mutualaid.transparency.checkpoints import Checkpoint, open_checkpoint
from mutualaid.transparency.errors import TransparencyError, VerificationError
from mutualaid.transparency.leaves import decode_leaf
from mutualaid.transparency.merkle import MemoryTree, NodeId
from mutualaid.transparency.notes import parse_verifier_key
from mutualaid.transparency.tiles import TILE_HEIGHT, TILE_WIDTH, TileRef, decode_entry_bundle
from mutualaid.transparency.verification import Check, TrustPolicy
from mutualaid.transparency.witnesses import verify_cosigned

ARCHIVE_FORMAT = "mutualaid-archive/v1"
MANIFEST = "manifest.json"
#: The commitment fields a notice must repeat exactly.
COMMITTED_FIGURES = (
    "total_charged_fen",
    "aid_fen",
    "fee_fen",
    "surplus_in_fen",
    "surplus_out_fen",
    "sponsor_fen",
    "prorated_fen",
    "share_fen",
    "member_count",
    "case_count",
    "charges_root",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tile_refs(size: int) -> Iterator[TileRef]:
    """Every tile of a log of `size` leaves: entry bundles, then hash tiles level by level."""
    for level in (None, *range(64)):
        nodes = size >> (TILE_HEIGHT * (level or 0))
        if level is not None and level > 0 and nodes == 0:
            return
        full, rest = divmod(nodes, TILE_WIDTH)
        for index in range(full):
            yield TileRef(level, index)
        if rest:
            yield TileRef(level, full, rest)
        if level is not None and nodes <= 1:
            return


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    checks: tuple[Check, ...]
    checkpoint: Checkpoint | None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


def verify_archive(root: Path, trust: TrustPolicy | None = None) -> ArchiveReport:
    """Check an archive directory offline (see the module docstring); never raises for a bad
    archive: every finding is a `Check`."""
    checks: list[Check] = []
    files, manifest = _check_manifest(root, checks)
    checkpoint = None
    if manifest is not None:
        checkpoint = _check_checkpoint(files, trust, checks)
    leaves: list[bytes] = []
    if checkpoint is not None:
        leaves = _check_tiles(files, checkpoint, checks)
    if checkpoint is not None and len(leaves) == checkpoint.size:
        _check_notices(files, set(leaves), checks)
    _check_ledger(files, checks)
    return ArchiveReport(tuple(checks), checkpoint)


def _check_manifest(
    root: Path, checks: list[Check]
) -> tuple[dict[str, bytes], dict[str, Any] | None]:
    try:
        manifest = json.loads((root / MANIFEST).read_bytes())
    except (OSError, ValueError) as error:
        checks.append(Check("manifest", False, f"cannot read {MANIFEST}: {error}"))
        return {}, None
    if manifest.get("format") != ARCHIVE_FORMAT or not isinstance(manifest.get("files"), dict):
        checks.append(Check("manifest", False, f"{MANIFEST} is not a {ARCHIVE_FORMAT} manifest"))
        return {}, None
    listed: Mapping[str, str] = manifest["files"]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    files: dict[str, bytes] = {}
    problems = [f"{name} is not listed" for name in sorted(present - set(listed) - {MANIFEST})]
    for name, digest in sorted(listed.items()):
        path = root / name
        if name not in present or not path.resolve().is_relative_to(root.resolve()):
            problems.append(f"{name} is missing")
            continue
        data = path.read_bytes()
        if sha256_hex(data) != digest:
            problems.append(f"{name} has SHA-256 {sha256_hex(data)}, the manifest says {digest}")
            continue
        files[name] = data
    checks.append(
        Check(
            "manifest",
            not problems,
            "; ".join(problems[:5])
            if problems
            else f"{len(files)} files, each with the SHA-256 the manifest lists",
        )
    )
    return files, manifest


def _archive_policy(files: Mapping[str, bytes]) -> TrustPolicy:
    keys = json.loads(files["keys.json"])
    log_key = parse_verifier_key(keys["log_key"])
    witnesses = tuple(parse_verifier_key(k) for k in keys["witness_keys"])
    return TrustPolicy(log_key.name, log_key, witnesses, int(keys["quorum"]))


def _check_checkpoint(
    files: Mapping[str, bytes], trust: TrustPolicy | None, checks: list[Check]
) -> Checkpoint | None:
    note = files.get("checkpoint")
    if note is None:
        checks.append(Check("checkpoint", False, "the archive has no checkpoint"))
        return None
    try:
        policy = trust or _archive_policy(files)
        if policy.witness_keys or policy.quorum:
            cosigned = verify_cosigned(
                note,
                policy.log_key,
                policy.witness_keys,
                policy.quorum,
                expected_origin=policy.origin,
            )
            names = ", ".join(c.name for c in cosigned.cosigners) or "no witness"
            checkpoint, detail = (
                cosigned.checkpoint,
                f"cosigned by {names} (quorum {policy.quorum})",
            )
        else:
            checkpoint = open_checkpoint(
                note, policy.log_key, expected_origin=policy.origin
            ).checkpoint
            detail = "no witness required"
    except (TransparencyError, KeyError, ValueError) as error:
        message = error.message if isinstance(error, TransparencyError) else str(error)
        checks.append(Check("checkpoint", False, message))
        return None
    checks.append(Check("checkpoint", True, f"size {checkpoint.size}, signed by the log, {detail}"))
    return checkpoint


def _check_tiles(
    files: Mapping[str, bytes], checkpoint: Checkpoint, checks: list[Check]
) -> list[bytes]:
    leaves: list[bytes] = []
    refs = list(tile_refs(checkpoint.size))
    for ref in (r for r in refs if r.level is None):
        data = files.get(ref.path)
        try:
            entries = decode_entry_bundle(data) if data is not None else []
        except VerificationError as error:
            checks.append(Check("entries", False, f"{ref.path}: {error.message}"))
            return []
        if data is None or len(entries) != ref.width:
            checks.append(
                Check(
                    "entries",
                    False,
                    f"{ref.path} is missing or holds {len(entries)} entries, not {ref.width}",
                )
            )
            return []
        leaves.extend(entries)
    tree = MemoryTree.from_entries(leaves)
    if tree.root() != checkpoint.root_hash:
        checks.append(
            Check(
                "root",
                False,
                f"the {len(leaves)} leaves make root "
                f"{tree.root().hex()}, the checkpoint says {checkpoint.root_hash.hex()}",
            )
        )
        return []
    checks.append(Check("root", True, f"the {len(leaves)} leaves make the checkpoint's root"))
    bad = []
    for ref in refs:
        if ref.level is None:
            continue
        level = ref.level * TILE_HEIGHT
        first = ref.index * TILE_WIDTH
        expected = b"".join(tree.read_nodes([NodeId(level, first + i) for i in range(ref.width)]))
        if files.get(ref.path) != expected:
            bad.append(ref.path)
    checks.append(
        Check(
            "hash tiles",
            not bad,
            f"wrong or missing: {', '.join(bad[:5])}"
            if bad
            else "every hash tile holds the tree's nodes",
        )
    )
    return leaves


def _check_notices(files: Mapping[str, bytes], leaves: set[bytes], checks: list[Check]) -> None:
    names = sorted(n for n in files if n.startswith("notices/") and n.endswith(".json"))
    problems: list[str] = []
    for name in names:
        notice = json.loads(files[name])
        problems.extend(f"{name}: {p}" for p in notice_problems(notice, leaves))
    checks.append(
        Check(
            "notices",
            not problems,
            "; ".join(problems[:5])
            if problems
            else f"{len(names)} period notices, each committed in the log and adding up",
        )
    )


def notice_problems(notice: Mapping[str, Any], leaves: set[bytes]) -> list[str]:
    """What is wrong with a period notice: its commitment is not in the log, differs from its
    figures, or its figures do not add up."""
    period = notice["period"]
    problems = []
    leaf_text = notice.get("commitment_leaf")
    if leaf_text is None or leaf_text.encode() not in leaves:
        problems.append("its commitment leaf is not in the log")
    else:
        fields = decode_leaf(leaf_text.encode()).fields
        for key in COMMITTED_FIGURES:
            if key in fields and fields[key] != period.get(key):
                problems.append(f"{key} is {period.get(key)}, the log says {fields[key]}")
    figures = {
        k: period.get(k) or 0
        for k in (
            "total_charged_fen",
            "sponsor_fen",
            "prorated_fen",
            "aid_fen",
            "fee_fen",
            "surplus_in_fen",
            "surplus_out_fen",
        )
    }
    if (
        figures["total_charged_fen"] + figures["sponsor_fen"] + figures["prorated_fen"]
        != figures["aid_fen"]
        + figures["fee_fen"]
        - figures["surplus_in_fen"]
        + figures["surplus_out_fen"]
    ):
        problems.append("total + sponsor + prorated ≠ aid + fee − surplus in + surplus out")
    if sum(c["payout_fen"] for c in notice["cases"]) != figures["aid_fen"]:
        problems.append("the shared cases do not add up to the aid")
    if sum(c["payout_fen"] for c in notice["sponsored_cases"]) != (
        period.get("sponsored_aid_fen") or 0
    ):
        problems.append("the sponsored cases do not add up to the sponsored aid")
    return problems


def _check_ledger(files: Mapping[str, bytes], checks: list[Check]) -> None:
    data = files.get("ledger.json")
    if data is None:
        checks.append(Check("ledger", False, "the archive has no ledger.json"))
        return
    ledger = json.loads(data)
    refunds = ledger.get("refunds") or {}
    exact = refunds.get("refunded_fen", 0) == refunds.get("balances_before_fen", 0)
    prepaid = ledger["balances"].get(f"plan:{ledger['plan']}:prepaid", 0)
    problems = []
    if ledger.get("unbalanced_transactions"):
        problems.append(f"unbalanced transactions: {ledger['unbalanced_transactions'][:5]}")
    if not exact:
        problems.append(
            f"refunds {refunds.get('refunded_fen')} fen ≠ balances "
            f"{refunds.get('balances_before_fen')} fen"
        )
    if prepaid:
        problems.append(f"{prepaid} fen is left in prepaid balances")
    for account in ("members", "aid_pool"):
        left = ledger["balances"].get(f"plan:{ledger['plan']}:{account}", 0)
        if left:
            problems.append(f"plan:{ledger['plan']}:{account} holds {left} fen after the end")
    checks.append(
        Check(
            "ledger",
            not problems,
            "; ".join(problems)
            if problems
            else f"every transaction balances; refunds exact "
            f"({refunds.get('refunded_fen', 0)} fen); nothing owed, unpaid or "
            f"left in prepaid balances",
        )
    )
