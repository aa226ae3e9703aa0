"""A member's charge proof end to end: a period is closed, the log publishes a checkpoint
cosigned by a quorum of witnesses (witness apps over HTTP), the proof is built, saved and checked
by `mutualaid verify charge` with only the public keys; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    approved_claim,
    close_on,
    members,
    use_rules,
)
from tests.refusals import refused
from typer.testing import CliRunner

from mutualaid.cli.app import app
from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext
from mutualaid.services.periods.proofs import charge_proof, published_trust
from mutualaid.services.transparency.checkpoints import (
    LogConfig,
    WitnessEndpoint,
    publish_checkpoint,
)
from mutualaid.services.transparency.log import queue_leaf
from mutualaid.transparency.charge_proofs import parse_charge_proof, verify_charge_proof
from mutualaid.transparency.notes import generate_signer_key
from mutualaid.transparency.verification import TrustPolicy
from mutualaid.transparency.witness_server import WitnessStore, create_witness_app
from mutualaid.transparency.witnesses import generate_witness_key

ORIGIN = "mutualaid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=b"\x44" * 32)
WITNESS_KEYS = [
    generate_witness_key(f"w{n}.example", seed=bytes([0x50 + n]) * 32) for n in range(3)
]
NOW = 1_770_000_000


@pytest.fixture
def witnesses(tmp_path: Path) -> Iterator[tuple[tuple[WitnessEndpoint, ...], httpx.Client]]:
    """Three witness apps reached through one httpx client, routed by host name; w2 is down."""
    stores = [WitnessStore(tmp_path / f"w{n}.sqlite") for n in range(3)]
    apps = {
        f"w{n}.test": TestClient(
            create_witness_app(key, [LOG_KEY.verifier()], stores[n], clock=lambda: NOW)
        )
        for n, key in enumerate(WITNESS_KEYS)
    }
    endpoints = tuple(
        WitnessEndpoint(f"w{n}", key.verifier(), f"http://w{n}.test")
        for n, key in enumerate(WITNESS_KEYS)
    )

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "w2.test":
            raise httpx.ConnectError("connection refused", request=request)
        answer = apps[request.url.host].post(request.url.path, content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with httpx.Client(transport=httpx.MockTransport(route)) as http:
        yield endpoints, http
    for store in stores:
        store.close()


def test_an_honest_charge_proof_verifies_offline_against_the_witnessed_log(
    ctx: ServiceContext,
    clock: FixedClock,
    tmp_path: Path,
    witnesses: tuple[tuple[WitnessEndpoint, ...], httpx.Client],
) -> None:
    endpoints, http = witnesses
    use_rules(ctx)
    people = members(ctx, clock, 4)
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    period = close_on(ctx, clock, MARCH_7)
    holder, membership = people[2]
    with refused("commitment_not_yet_checkpointed"):
        charge_proof(ctx, holder, membership.id, MAIN_PLAN, MARCH_7)
    # Signed, but short of its quorum (w2 is down): not published, so still no proof.
    strict = publish_checkpoint(ctx, LogConfig(LOG_KEY, endpoints, quorum=3), http=http)
    assert not strict.checkpoint.published
    with refused("commitment_not_yet_checkpointed"):
        charge_proof(ctx, holder, membership.id, MAIN_PLAN, MARCH_7)
    queue_leaf_about(ctx, clock)
    published = publish_checkpoint(ctx, LogConfig(LOG_KEY, endpoints, quorum=2), http=http)
    assert published.checkpoint.published and published.checkpoint.cosigners == 2

    proof = charge_proof(ctx, holder, membership.id, MAIN_PLAN, MARCH_7)
    assert proof.checkpoint == published.checkpoint.note
    assert (proof.charge_fen, proof.period_ref) == (period.share_fen, period.ref)
    saved = tmp_path / "charge-proof.json"
    saved.write_text(proof.to_json(), encoding="utf-8")
    keys = [
        "--log-key",
        LOG_KEY.verifier().encode(),
        *[arg for key in WITNESS_KEYS for arg in ("--witness-key", key.verifier().encode())],
        "--quorum",
        "2",
    ]
    result = CliRunner().invoke(app, ["verify", "charge", str(saved), *keys])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok      ") == 9
    assert f"charged {period.share_fen} fen in {period.ref}" in result.output
    # The keys the operator published are the ones the witnesses hold.
    assert published_trust(ctx) == TrustPolicy(
        ORIGIN, LOG_KEY.verifier(), tuple(e.key for e in endpoints), 2
    )

    # A forged file: the claimed charge lowered by one fen.
    forged = json.loads(saved.read_text())
    forged["charge_fen"] -= 1
    saved.write_text(json.dumps(forged), encoding="utf-8")
    refusal = CliRunner().invoke(app, ["verify", "charge", str(saved), *keys])
    assert refusal.exit_code == 1 and "FAILED: link 'charge' does not hold" in refusal.output
    # Another log's key refuses the honest proof at the first link.
    other = generate_signer_key(ORIGIN, seed=b"\x45" * 32).verifier().encode()
    saved.write_text(proof.to_json(), encoding="utf-8")
    elsewhere = CliRunner().invoke(
        app, ["verify", "charge", str(saved), "--log-key", other, *keys[2:]]
    )
    assert elsewhere.exit_code == 1
    assert "FAILED: link 'checkpoint signature' does not hold" in elsewhere.output

    # Later checkpoints keep proving the same commitment, at their larger size.
    queue_leaf_about(ctx, clock, n=2)
    later = publish_checkpoint(ctx, LogConfig(LOG_KEY, endpoints, quorum=2), http=http)
    assert later.checkpoint.size > published.checkpoint.size
    newer = charge_proof(ctx, holder, membership.id, MAIN_PLAN, MARCH_7)
    assert newer.checkpoint == later.checkpoint.note
    report = verify_charge_proof(
        parse_charge_proof(newer.to_json()),
        TrustPolicy(ORIGIN, LOG_KEY.verifier(), tuple(e.key for e in endpoints), 2),
    )
    assert report.checkpoint.size == later.checkpoint.size


def queue_leaf_about(ctx: ServiceContext, clock: FixedClock, n: int = 1) -> None:
    with ctx.unit_of_work() as uow:
        queue_leaf(
            uow.session,
            at=clock.now(),
            leaf_type="evidence",
            fields={
                "claim_ref": f"claim-2026-{n:06d}",
                "sha256": f"{n:064x}",
                "size": n,
                "media_type": "image/jpeg",
            },
            subject_type="claim",
            subject_ref=f"claim-2026-{n:06d}",
        )
        uow.commit(None)
