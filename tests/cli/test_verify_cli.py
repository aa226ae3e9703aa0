"""`mutualaid verify` as an outsider runs it: exit 0 only when every check holds; each kind of
tampering gives its precise message and a non-zero exit code. And `mutualaid log` end to end."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import TEST_SECRET
from typer.testing import CliRunner, Result

from mutualaid.cli.app import app
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.log import queue_leaf
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import add_signatures, generate_signer_key
from mutualaid.transparency.verification import BundleEntry, SubjectBundle
from mutualaid.transparency.witnesses import WitnessState, cosign, generate_witness_key

ORIGIN = "mutualaid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x42" * 32)
WITNESSES = [generate_witness_key(f"w{n}.example", seed=bytes([0x70 + n]) * 32) for n in range(3)]
SCANS = [f"scan {n}".encode() for n in range(9)]
LEAVES = [
    canonical_leaf(
        "evidence",
        {
            "claim_ref": f"claim-2026-{n % 3:06d}",
            "size": len(scan),
            "sha256": hashlib.sha256(scan).hexdigest(),
            "media_type": "image/jpeg",
        },
    )
    for n, scan in enumerate(SCANS)
]
TREE = MemoryTree.from_entries(LEAVES)
NOW = 1_770_000_000

runner = CliRunner()


def cosigned(size: int, tree: MemoryTree = TREE, witnesses: int = 2) -> str:
    note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), LOG_KEY)
    state = WitnessState(ORIGIN, size, tree.root(size))
    return add_signatures(
        note,
        [
            cosign(state, note, [], LOG_KEY.verifier(), w, NOW).cosignature
            for w in WITNESSES[:witnesses]
        ],
    )


def make_bundle(**changes: Any) -> SubjectBundle:
    """Claim claim-2026-000001's leaves (1, 4, 7) at size 9, with consistency from size 5."""
    bundle = SubjectBundle(
        subject_type="claim",
        subject_ref="claim-2026-000001",
        origin=ORIGIN,
        log_key=LOG_KEY.verifier().encode(),
        witness_keys=tuple(w.verifier().encode() for w in WITNESSES),
        quorum=2,
        checkpoint=cosigned(9),
        entries=tuple(
            BundleEntry(i, LEAVES[i], tuple(TREE.inclusion_proof(i, 9))) for i in (1, 4, 7)
        ),
        older_checkpoint=cosigned(5),
        consistency_proof=tuple(TREE.consistency_proof(5, 9)),
    )
    return dataclasses.replace(bundle, **changes)


def keys(quorum: int = 2) -> list[str]:
    options = ["--log-key", LOG_KEY.verifier().encode(), "--quorum", str(quorum)]
    for witness in WITNESSES:
        options += ["--witness-key", witness.verifier().encode()]
    return options


def verify(tmp_path: Path, bundle: SubjectBundle | str, *options: str) -> Result:
    path = tmp_path / "bundle.json"
    path.write_text(bundle if isinstance(bundle, str) else bundle.to_json(), encoding="utf-8")
    return runner.invoke(app, ["verify", "bundle", str(path), *options])


def test_an_intact_bundle_verifies_with_pinned_keys_and_evidence(tmp_path: Path) -> None:
    scan = tmp_path / "scan.jpg"
    scan.write_bytes(SCANS[4])
    result = verify(tmp_path, make_bundle(), *keys(), "--evidence", str(scan))
    assert result.exit_code == 0, result.output
    assert "verified: all 6 checks hold" in result.stdout
    assert "ok      evidence scan.jpg: SHA-256" in result.stdout
    assert "recorded in evidence leaf 4" in result.stdout
    assert "warning" not in result.output


def test_without_keys_the_bundle_is_checked_against_its_own_keys_with_a_warning(
    tmp_path: Path,
) -> None:
    result = verify(tmp_path, make_bundle())
    assert result.exit_code == 0
    assert "no --log-key given" in result.stderr


def flip_first(proof: tuple[bytes, ...]) -> tuple[bytes, ...]:
    return (bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:])


def entry(index: int, **changes: Any) -> tuple[BundleEntry, ...]:
    entries = list(make_bundle().entries)
    entries[index] = dataclasses.replace(entries[index], **changes)
    return tuple(entries)


FORKED = MemoryTree.from_entries([b"forged", *LEAVES[1:]])

TAMPERING: dict[str, tuple[Callable[[], SubjectBundle | str], list[str], str]] = {
    "changed leaf": (
        lambda: make_bundle(entries=entry(1, leaf_data=LEAVES[5])),
        keys(),
        "leaf 4 inclusion: inclusion proof for leaf 4 at size 9 leads to root",
    ),
    "flipped proof hash": (
        lambda: make_bundle(
            entries=entry(0, inclusion_proof=flip_first(make_bundle().entries[0].inclusion_proof))
        ),
        keys(),
        "leaf 1 inclusion: inclusion proof for leaf 1 at size 9 leads to root",
    ),
    "moved leaf": (
        lambda: make_bundle(entries=entry(2, leaf_index=8)),
        keys(),
        "leaf 8 inclusion: inclusion proof for leaf 8 at size 9 has 4 hashes, expected 1",
    ),
    "forged checkpoint": (
        lambda: make_bundle(
            checkpoint=cosigned(9).replace(
                base64.b64encode(TREE.root(9)).decode(), base64.b64encode(TREE.root(8)).decode()
            )
        ),
        keys(),
        "checkpoint signatures: signature by key 'mutualaid.example/log+",
    ),
    "too few cosignatures": (
        lambda: make_bundle(checkpoint=cosigned(9, witnesses=1)),
        keys(),
        "checkpoint signatures: checkpoint at size 9 is cosigned by 1 known "
        "witnesses ('w0.example'), fewer than the quorum of 2",
    ),
    "another log key": (
        lambda: make_bundle(),
        ["--log-key", generate_signer_key(ORIGIN).verifier().encode()],
        "checkpoint signatures: note has no signature by a known key",
    ),
    "rewritten history": (
        lambda: make_bundle(older_checkpoint=cosigned(5, FORKED)),
        keys(),
        "consistency with older checkpoint: consistency proof from size 5 to size 9 leads to "
        "old root",
    ),
    "not JSON": (lambda: "{not json", keys(), "FAILED: bundle: bundle is not valid JSON"),
    "missing entries": (
        lambda: json.dumps(
            {"format": "mutualaid-subject-bundle/v1", "subject": {"type": "claim", "ref": "x"}}
        ),
        keys(),
        "FAILED: bundle: bundle field 'entries' must be a non-empty list",
    ),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_each_tampering_is_named_and_fails(tmp_path: Path, case: str) -> None:
    build, options, message = TAMPERING[case]
    result = verify(tmp_path, build(), *options)
    assert result.exit_code == 1, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_evidence_not_in_the_bundle_fails(tmp_path: Path) -> None:
    other = tmp_path / "other.pdf"
    other.write_bytes(b"a document the log never saw")
    result = verify(tmp_path, make_bundle(), *keys(), "--evidence", str(other))
    assert result.exit_code == 1
    digest = hashlib.sha256(b"a document the log never saw").hexdigest()
    assert (
        f"FAILED  evidence other.pdf: file {other} (SHA-256 {digest}) is not in any included "
        "evidence leaf of the bundle"
    ) in result.stderr


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["verify", "bundle", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    assert "error: cannot read" in missing.stderr
    offline = runner.invoke(app, ["verify", "bundle", "http://127.0.0.1:9/bundle.json"])
    assert offline.exit_code == 2
    assert "error: cannot fetch http://127.0.0.1:9/bundle.json: ConnectError" in offline.stderr
    quorum = verify(
        tmp_path, make_bundle(), "--log-key", LOG_KEY.verifier().encode(), "--quorum", "1"
    )
    assert quorum.exit_code == 2 and "a quorum of 1 needs at least 1 --witness-key" in quorum.output


def consistency(tmp_path: Path, old: str, new: str, proof: str, *options: str) -> Result:
    paths = []
    for name, content in (("old", old), ("new", new), ("proof", proof)):
        paths.append(tmp_path / name)
        paths[-1].write_text(content, encoding="utf-8")
    return runner.invoke(
        app,
        ["verify", "consistency", str(paths[0]), str(paths[1]), "--proof", str(paths[2]), *options],
    )


def test_consistency_between_two_checkpoints(tmp_path: Path) -> None:
    proof = json.dumps(
        {
            "old_size": 5,
            "new_size": 9,
            "proof": [base64.b64encode(h).decode() for h in TREE.consistency_proof(5, 9)],
        }
    )
    good = consistency(tmp_path, cosigned(5), cosigned(9), proof, *keys())
    assert good.exit_code == 0, good.output
    assert "verified: the log at size 9 extends the log at size 5" in good.stdout
    lines = "\n".join(base64.b64encode(h).decode() for h in TREE.consistency_proof(5, 9))
    assert (
        consistency(
            tmp_path, cosigned(5), cosigned(9), lines, "--log-key", LOG_KEY.verifier().encode()
        ).exit_code
        == 0
    )

    forked = consistency(tmp_path, cosigned(5, FORKED), cosigned(9), proof, *keys())
    assert forked.exit_code == 1
    assert "FAILED: consistency: consistency proof from size 5 to size 9 leads to old root" in (
        forked.stderr
    )
    shrunk = consistency(tmp_path, cosigned(9), cosigned(5), "", *keys())
    assert shrunk.exit_code == 1
    assert "tree size went from 9 to 5: a log can only grow" in shrunk.stderr
    wrong_sizes = consistency(tmp_path, cosigned(4), cosigned(9), proof, *keys())
    assert "proof: it is for sizes 5 to 9, but the checkpoints have sizes 4 and 9" in (
        wrong_sizes.stderr
    )
    alone = consistency(tmp_path, cosigned(5, witnesses=0), cosigned(9), proof, *keys())
    assert alone.exit_code == 1
    assert "old checkpoint: checkpoint at size 5 is cosigned by 0 known witnesses" in alone.stderr


def test_the_log_commands_from_keygen_to_a_verified_member_bundle(
    ctx: ServiceContext,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "log.key"
    made = runner.invoke(app, ["log", "keygen", "--name", ORIGIN, "--out", str(key_file)])
    assert made.exit_code == 0, made.output
    verifier = made.stdout.strip()
    assert verifier.startswith(f"{ORIGIN}+") and key_file.stat().st_mode & 0o777 == 0o600
    witness_key = tmp_path / "w.key"
    assert (
        runner.invoke(
            app, ["witness", "keygen", "--name", "w.example", "--out", str(witness_key)]
        ).exit_code
        == 0
    )

    for variable, value in {
        "MUTUALAID_DATABASE_URL": database_url,
        "MUTUALAID_SECRET_KEY": TEST_SECRET,
        "MUTUALAID_LOG_KEY_FILE": str(key_file),
    }.items():
        monkeypatch.setenv(variable, value)
    for n in (1, 4):
        with ctx.sessions.begin() as session:
            queue_leaf(
                session,
                at=ctx.clock.now(),
                leaf_type="evidence",
                fields={k: v for k, v in json.loads(LEAVES[n]).items() if k not in ("v", "type")},
                subject_type="claim",
                subject_ref="claim-2026-000001",
            )
    integrated = runner.invoke(app, ["log", "integrate"])
    assert integrated.exit_code == 0 and "integrated 2 leaves; log size 2" in integrated.stdout
    published = runner.invoke(app, ["log", "checkpoint"])
    assert published.exit_code == 0, published.output
    assert "size 2" in published.stdout and "published, 0 of 0 witnesses" in published.stdout
    status = runner.invoke(app, ["log", "status"])
    assert "integrated leaves: 2" in status.stdout and "queued leaves: 0" in status.stdout
    bundle_file = tmp_path / "mine.json"
    exported = runner.invoke(
        app, ["log", "bundle", "claim", "claim-2026-000001", "--out", str(bundle_file)]
    )
    assert exported.exit_code == 0, exported.output
    scan = tmp_path / "scan.jpg"
    scan.write_bytes(SCANS[4])
    checked = runner.invoke(
        app, ["verify", "bundle", str(bundle_file), "--log-key", verifier, "--evidence", str(scan)]
    )
    assert checked.exit_code == 0, checked.output
    unknown = runner.invoke(app, ["log", "bundle", "claim", "claim-2026-999999"])
    assert unknown.exit_code == 3
    assert "no_leaves (subject_ref): the log holds no leaf about claim" in unknown.stderr
