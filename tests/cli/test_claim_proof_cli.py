"""A real claim's life, from report to approval, proved from the log and checked by `mutualaid verify`."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from tests.builders.claims import through_investigation
from tests.factories import covered_member, publish_demo_plans, staff
from typer.testing import CliRunner

from mutualaid.cli.app import app
from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim
from mutualaid.services.context import ServiceContext

runner = CliRunner()
SCAN = b"\xff\xd8\xff\xe0 pathology report, page 1 " * 40


def test_a_claims_proof_bundle_verifies_and_tampering_is_caught(
    ctx: ServiceContext, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "log.key"
    made = runner.invoke(
        app, ["log", "keygen", "--name", "aid.example/log", "--out", str(key_file)]
    )
    assert made.exit_code == 0, made.output
    verifier = made.stdout.strip()
    monkeypatch.setenv("MUTUALAID_LOG_KEY_FILE", str(key_file))

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
    through_investigation(ctx, claim.ref)
    decide_claim(ctx, staff(ctx, Role.REVIEWER), claim.ref, approve=True, note="criteria met")

    published = runner.invoke(app, ["log", "checkpoint"])
    assert published.exit_code == 0, published.output
    bundle_file = tmp_path / "claim.json"
    exported = runner.invoke(app, ["log", "bundle", "claim", claim.ref, "--out", str(bundle_file)])
    assert exported.exit_code == 0, exported.output
    bundle = json.loads(bundle_file.read_text())
    leaves = [json.loads(base64.b64decode(entry["leaf_data"])) for entry in bundle["entries"]]
    kinds = [leaf["type"] for leaf in leaves]
    # Every step of the claim is on the log: the report, the evidence hash, each decision.
    assert "evidence" in kinds and len(kinds) >= 4, kinds

    scan = tmp_path / "scan.jpg"
    scan.write_bytes(SCAN)
    checked = runner.invoke(
        app, ["verify", "bundle", str(bundle_file), "--log-key", verifier, "--evidence", str(scan)]
    )
    assert checked.exit_code == 0, checked.output

    forged = tmp_path / "forged.jpg"
    forged.write_bytes(SCAN.replace(b"page 1", b"page 2"))
    wrong_file = runner.invoke(
        app,
        ["verify", "bundle", str(bundle_file), "--log-key", verifier, "--evidence", str(forged)],
    )
    assert wrong_file.exit_code == 1

    first = base64.b64decode(bundle["entries"][0]["leaf_data"])
    altered = first.replace(claim.ref.encode(), b"C0000-00000000")
    assert altered != first
    bundle["entries"][0]["leaf_data"] = base64.b64encode(altered).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(bundle))
    caught = runner.invoke(app, ["verify", "bundle", str(tampered), "--log-key", verifier])
    assert caught.exit_code == 1
