"""docs/verify_by_hand.py, the script an outsider runs with nothing but Python and `cryptography`,
on a bundle the app really emits: a claim with evidence, a decision, two checkpoints cosigned by
witnesses. It passes the honest bundle and fails every tampered one, naming the failed check."""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.builders.claims import through_investigation
from tests.factories import MAIN_PLAN, account, covered_member, enroll, publish_demo_plans, staff

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import advance_memberships
from mutualaid.services.transparency.checkpoints import (
    LogConfig,
    WitnessEndpoint,
    publish_checkpoint,
)
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.witness_server import WitnessStore, create_witness_app
from mutualaid.transparency.witnesses import generate_witness_key

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCRIPT = DOCS / "verify_by_hand.py"
ORIGIN = "aid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x24" * 32)
WITNESS_KEYS = [
    generate_witness_key(f"w{n}.example", seed=bytes([0x30 + n]) * 32) for n in range(3)
]
SCAN = b"\xff\xd8\xff\xe0 pathology report, page 1 " * 40


@pytest.fixture
def three_witnesses(tmp_path: Path) -> Iterator[tuple[LogConfig, httpx.Client]]:
    """Three witness apps (the real tlog-witness server), reached by host name, quorum 2: unlike
    conftest's two-of-two, a bundle here can lose one cosignature and still verify."""
    stores = [WitnessStore(tmp_path / f"w{n}.sqlite") for n in range(3)]
    apps = {
        f"w{n}.test": TestClient(create_witness_app(key, [LOG_KEY.verifier()], stores[n]))
        for n, key in enumerate(WITNESS_KEYS)
    }

    def route(request: httpx.Request) -> httpx.Response:
        answer = apps[request.url.host].post(request.url.path, content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    endpoints = tuple(
        WitnessEndpoint(f"w{n}", key.verifier(), f"http://w{n}.test")
        for n, key in enumerate(WITNESS_KEYS)
    )
    with httpx.Client(transport=httpx.MockTransport(route)) as http:
        yield LogConfig(LOG_KEY, endpoints, quorum=2), http
    for store in stores:
        store.close()


@pytest.fixture
def emitted(
    ctx: ServiceContext, clock: FixedClock, three_witnesses: tuple[LogConfig, httpx.Client]
) -> dict[str, Any]:
    """A claim's bundle as the API serves it, at the second checkpoint, with consistency from
    the first."""
    config, http = three_witnesses
    publish_demo_plans(ctx)
    holder, membership = covered_member(ctx, clock)
    claim = report_claim(
        ctx,
        holder,
        ClaimReport(
            membership.id, "CI01", clock.now().date() - timedelta(days=3), "四川省人民医院"
        ),
    )
    add_evidence(ctx, holder, claim.ref, [SCAN], "image/jpeg", "pathology report")
    first = publish_checkpoint(ctx, config, http=http).checkpoint
    assert first.published and first.cosigners == 3
    through_investigation(ctx, claim.ref)
    decide_claim(ctx, staff(ctx, Role.REVIEWER), claim.ref, approve=True, note="criteria met")
    second = publish_checkpoint(ctx, config, http=http).checkpoint
    assert second.published and second.size > first.size
    answer = TestClient(create_app(ctx)).get(
        f"/api/v1/log/bundles/claim/{claim.ref}", params={"older_size": first.size}
    )
    assert answer.status_code == 200, answer.text
    bundle: dict[str, Any] = answer.json()
    assert bundle["format"] == "mutualaid-subject-bundle/v1" and len(bundle["entries"]) >= 4
    return bundle


def keys(quorum: int = 2) -> list[str]:
    options = ["--log-key", LOG_KEY.verifier().encode(), "--quorum", str(quorum)]
    for key in WITNESS_KEYS:
        options += ["--witness-key", key.verifier().encode()]
    return options


def run(tmp_path: Path, bundle: dict[str, Any], *options: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_script_verifies_a_bundle_the_app_emits(
    emitted: dict[str, Any], tmp_path: Path
) -> None:
    scan = tmp_path / "scan.jpg"
    scan.write_bytes(SCAN)
    result = run(tmp_path, emitted, *keys(), "--evidence", str(scan))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok      checkpoint signatures: size ")
    assert "cosigned by 3 witnesses (quorum 2)" in lines[0]
    for entry in emitted["entries"]:
        assert any(
            line.startswith(f"ok      leaf {entry['leaf_index']} inclusion: {{") for line in lines
        )
    assert any(
        line.startswith("ok      consistency with older checkpoint: size ") for line in lines
    )
    assert any(line.startswith(f"ok      evidence {scan}: SHA-256 ") for line in lines)
    assert "FAILED" not in result.stdout and result.stderr == ""


def test_without_keys_it_uses_the_bundles_own_and_warns(
    emitted: dict[str, Any], tmp_path: Path
) -> None:
    result = run(tmp_path, emitted)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: no --log-key" in result.stderr


def test_it_reads_a_one_leaf_proof_bundle_too(emitted: dict[str, Any], tmp_path: Path) -> None:
    entry = emitted["entries"][1]
    single = {key: value for key, value in emitted.items() if key not in ("subject", "entries")}
    single.update(entry, format="mutualaid-proof-bundle/v1")
    result = run(tmp_path, single, *keys())
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok      leaf {entry['leaf_index']} inclusion: " in result.stdout
    single["format"] = "mutualaid-proof-bundle/v9"
    assert run(tmp_path, single, *keys()).returncode == 2


def flip(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def other_log_checkpoint(bundle: dict[str, Any]) -> str:
    """The older checkpoint's size and root, signed by another key under the same name."""
    origin, size, root = bundle["older_checkpoint"].split("\n")[:3]
    impostor = generate_signer_key(origin, seed=b"\x99" * 32)
    return sign_checkpoint(Checkpoint(origin, int(size), base64.b64decode(root)), impostor)


def drop_cosignatures(note: str, keep: int) -> str:
    """The checkpoint with the log's signature and only `keep` witness cosignatures."""
    text, signatures = note.split("\n\n")
    lines = signatures.splitlines()
    log_lines = [line for line in lines if line.startswith(f"\u2014 {ORIGIN} ")]
    witness_lines = [line for line in lines if line not in log_lines]
    return text + "\n\n" + "".join(line + "\n" for line in log_lines + witness_lines[:keep])


def forge_cosignature(note: str, witness: str) -> str:
    """One bit of a witness's signature flipped, its name and key ID kept."""
    prefix = f"\u2014 {witness} "
    lines = note.split("\n")
    for number, line in enumerate(lines):
        if line.startswith(prefix):
            blob = bytearray(base64.b64decode(line[len(prefix) :]))
            blob[-1] ^= 1
            lines[number] = prefix + base64.b64encode(bytes(blob)).decode()
    return "\n".join(lines)


def alter_leaf(entry: dict[str, Any]) -> None:
    leaf = json.loads(base64.b64decode(entry["leaf_data"]))
    leaf["claim_ref"] = "claim-2026-999999"
    altered = json.dumps(leaf, sort_keys=True, separators=(",", ":")).encode()
    entry["leaf_data"] = base64.b64encode(altered).decode()


def change_root(bundle: dict[str, Any]) -> None:
    lines = bundle["checkpoint"].split("\n")
    lines[2] = base64.b64encode(b"\x00" * 32).decode()
    bundle["checkpoint"] = "\n".join(lines)


def set_(key: str, value: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        bundle[key] = value(bundle)

    return change


TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "leaf altered": (lambda b: alter_leaf(b["entries"][0]), r"FAILED  leaf \d+ inclusion: "),
    "inclusion hash flipped": (
        lambda b: b["entries"][-1]["inclusion_proof"].__setitem__(
            0, flip(b["entries"][-1]["inclusion_proof"][0])
        ),
        r"FAILED  leaf \d+ inclusion: inclusion proof leads to ",
    ),
    "leaf index moved": (
        lambda b: b["entries"][1].__setitem__("leaf_index", b["entries"][1]["leaf_index"] + 1),
        r"FAILED  leaf \d+ inclusion: ",
    ),
    "checkpoint root changed": (
        change_root,
        r"FAILED  checkpoint signatures: signature by '[^']+' is not valid",
    ),
    "quorum not met": (
        set_("checkpoint", lambda b: drop_cosignatures(b["checkpoint"], 1)),
        r"FAILED  checkpoint signatures: cosigned by 1 known witnesses, quorum is 2",
    ),
    "cosignature forged": (
        set_("checkpoint", lambda b: forge_cosignature(b["checkpoint"], "w0.example")),
        r"FAILED  checkpoint signatures: signature by 'w0.example' is not valid",
    ),
    "consistency hash flipped": (
        lambda b: b["consistency_proof"].__setitem__(0, flip(b["consistency_proof"][0])),
        r"FAILED  consistency with older checkpoint: consistency proof from size \d+ to \d+",
    ),
    "older checkpoint from an impostor": (
        set_("older_checkpoint", other_log_checkpoint),
        r"FAILED  consistency with older checkpoint: older checkpoint is not signed by the log",
    ),
    "origin renamed": (
        set_("origin", lambda b: "other.example/log"),
        r"FAILED  checkpoint signatures: bundle origin 'other.example/log' is not the checkpoint's",
    ),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_the_script_fails_a_tampered_bundle_naming_the_check(
    emitted: dict[str, Any], tmp_path: Path, name: str
) -> None:
    tamper, expected = TAMPERINGS[name]
    bundle = json.loads(json.dumps(emitted))
    tamper(bundle)
    assert bundle != emitted
    result = run(tmp_path, bundle, *keys())
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(expected, result.stdout, re.MULTILINE), result.stdout


def test_the_script_fails_with_the_wrong_keys_or_a_forged_file(
    emitted: dict[str, Any], tmp_path: Path
) -> None:
    impostor = generate_signer_key(ORIGIN, seed=b"\x77" * 32).verifier().encode()
    wrong_log = run(tmp_path, emitted, "--log-key", impostor)
    assert wrong_log.returncode == 1
    assert "FAILED  checkpoint signatures: checkpoint is not signed by the log key" in (
        wrong_log.stdout
    )
    all_three = run(tmp_path, emitted, *keys(quorum=3))
    assert all_three.returncode == 0, all_three.stdout
    two_left = dict(emitted, checkpoint=drop_cosignatures(emitted["checkpoint"], 2))
    assert run(tmp_path, two_left, *keys(quorum=2)).returncode == 0
    assert run(tmp_path, two_left, *keys(quorum=3)).returncode == 1
    too_many = run(tmp_path, emitted, *keys(quorum=4))
    assert too_many.returncode == 1 and "quorum is 4" in too_many.stdout
    forged = tmp_path / "forged.jpg"
    forged.write_bytes(SCAN.replace(b"page 1", b"page 2"))
    wrong_file = run(tmp_path, emitted, *keys(), "--evidence", str(forged))
    assert wrong_file.returncode == 1
    assert f"FAILED  evidence {forged}: SHA-256 " in wrong_file.stdout
    unreadable = run(tmp_path, emitted, "--log-key", "not-a-key")
    assert unreadable.returncode == 2


def test_the_script_needs_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None and node.level == 0
            modules.add(node.module.split(".")[0])
    assert modules - set(sys.stdlib_module_names) == {"cryptography"}


def test_the_docs_show_the_script_as_it_is() -> None:
    page = (DOCS / "transparency.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert SCRIPT.read_text(encoding="utf-8") in blocks


def test_the_scripts_proof_checks_agree_with_rfc_9162_on_every_small_tree() -> None:
    """The script's own inclusion and consistency code, on every tree of 1..33 leaves: each honest
    proof holds, and one flipped bit, a missing hash, a wrong index or a wrong root fails."""
    spec = importlib.util.spec_from_file_location("verify_by_hand", SCRIPT)
    assert spec is not None and spec.loader is not None
    script: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    entries = [f"leaf {n}".encode() for n in range(33)]
    tree = MemoryTree.from_entries(entries)

    def fails(check: Callable[..., None], *args: object) -> bool:
        try:
            check(*args)
        except script.Failed:
            return True
        return False

    for size in range(1, 34):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            script.verify_inclusion(index, size, entries[index], proof, root)
            assert fails(script.verify_inclusion, index, size, entries[index], proof, root[::-1])
            if proof:
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert fails(script.verify_inclusion, index, size, entries[index], bad, root)
                assert fails(script.verify_inclusion, index, size, entries[index], proof[1:], root)
            if index + 1 < size:
                assert fails(script.verify_inclusion, index + 1, size, entries[index], proof, root)
        assert fails(script.verify_inclusion, size, size, entries[0], [], root)
        for old in range(size + 1):
            proof = tree.consistency_proof(old, size)
            script.verify_consistency(old, size, tree.root(old), root, proof)
            if proof:
                bad = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
                assert fails(script.verify_consistency, old, size, tree.root(old), root, bad)
                assert fails(script.verify_consistency, old, size, tree.root(old), root, proof[:-1])
            if 0 < old < size:
                assert fails(script.verify_consistency, old, size, root, root, proof)
        assert fails(script.verify_consistency, size, size - 1, root, tree.root(size - 1), [])


def test_a_member_finds_their_change_in_a_batch_leaf_of_the_plans_bundle(
    ctx: ServiceContext,
    clock: FixedClock,
    three_witnesses: tuple[LogConfig, httpx.Client],
    tmp_path: Path,
) -> None:
    """The daily job logs eight waiting periods' ends as one `membership_events` leaf, whose
    subject is the plan: the script finds each member in it (printing the batch shortened)."""
    config, http = three_witnesses
    publish_demo_plans(ctx)
    ids = [enroll(ctx, account(ctx), date(1990, 5, 1 + n)).id for n in range(8)]
    clock.set(clock.now() + timedelta(days=400))
    assert advance_memberships(ctx, MAIN_PLAN).now_covered == 8
    assert publish_checkpoint(ctx, config, http=http).checkpoint.published
    answer = TestClient(create_app(ctx)).get(f"/api/v1/log/bundles/plan/{MAIN_PLAN}")
    assert answer.status_code == 200, answer.text
    missing = str(max(ids) + 1)
    result = run(
        tmp_path, answer.json(), *keys(), "--membership", str(ids[5]), "--membership", missing
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"ok      membership {ids[5]}: waiting_period_over at " in result.stdout
    assert f"FAILED  membership {missing}: in no included leaf" in lines
    [batch] = [line for line in lines if '"membership_ids":' in line]
    assert f'"membership_ids":"{ids[0]},{ids[1]},{ids[2]},…,{ids[7]} (8 ids)"' in batch
