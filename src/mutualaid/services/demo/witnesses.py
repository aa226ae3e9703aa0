"""The demo's witnesses: two tlog-witness deciders (transparency/witness_server.py) reached in
process, so the demo's checkpoints are cosigned as a consortium's would be, with no server to run."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from mutualaid.clock import Clock
from mutualaid.services.transparency.checkpoints import LogConfig, WitnessEndpoint
from mutualaid.transparency.notes import SignerKey
from mutualaid.transparency.witness_server import WitnessStore, add_checkpoint
from mutualaid.transparency.witnesses import generate_witness_key

#: The witnesses' keys are fixed (the demo publishes them on /verify; they guard nothing).
WITNESS_KEYS = tuple(
    generate_witness_key(f"witness-{n}.demo.mutualaid", seed=bytes([0x70 + n]) * 32) for n in (1, 2)
)


@dataclass(frozen=True, slots=True)
class WitnessedLog:
    config: LogConfig
    http: httpx.Client


@contextmanager
def demo_witnesses(signer: SignerKey, clock: Clock) -> Iterator[WitnessedLog]:
    """The log signed by `signer`, cosigned by both demo witnesses (the quorum); each witness
    remembers what it cosigned in a file of its own until the block ends."""
    logs = {signer.name: signer.verifier()}
    with tempfile.TemporaryDirectory(prefix="mutualaid-witnesses-") as folder:
        stores = {
            key.name: WitnessStore(Path(folder) / f"{key.name}.sqlite") for key in WITNESS_KEYS
        }
        keys = {key.name: key for key in WITNESS_KEYS}

        def answer(request: httpx.Request) -> httpx.Response:
            host = request.url.host
            reply = add_checkpoint(
                request.content, stores[host], logs, keys[host], int(clock.now().timestamp())
            )
            return httpx.Response(
                reply.status,
                headers={"Content-Type": reply.content_type},
                content=reply.body.encode(),
            )

        endpoints = tuple(
            WitnessEndpoint(key.name, key.verifier(), f"http://{key.name}") for key in WITNESS_KEYS
        )
        try:
            with httpx.Client(transport=httpx.MockTransport(answer)) as http:
                yield WitnessedLog(LogConfig(signer, endpoints, quorum=len(endpoints)), http)
        finally:
            for store in stores.values():
                store.close()
