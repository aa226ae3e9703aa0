"""Issue 16: `mutualaid keys …` and the key ring settings; `mutualaid verify log` follows the
log signing key's rotations from the original key."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.cli.cli import mutualaid, said
from tests.factories import account, enroll, publish_demo_plans, resident_id

from mutualaid.db.models import Person
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import (
    LogConfig,
    publish_checkpoint,
    write_key_file,
)
from mutualaid.services.transparency.proofs import entry_bundle, log_size
from mutualaid.transparency.checkpoints import Checkpoint, sign_checkpoint
from mutualaid.transparency.key_rotations import announcement_text
from mutualaid.transparency.leaves import canonical_leaf
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import SignerKey, generate_signer_key
from mutualaid.transparency.tiles import TILE_WIDTH, TileRef, encode_entry_bundle

NEW = "rotated-Kd8sPq3Lm7Vx2Nw9Rt4Yb6Hj1Fg5Cz0Ua"
ORIGIN = "mutualaid.example/log"


@pytest.mark.parametrize(
    ("ring", "said_"),
    [
        ("2:too-short", "MUTUALAID_SECRET_KEYS version 2 must be at least 32 characters"),
        ("two:" + NEW, "key_ring_malformed"),
        ("2:" + "ab" * 20, "weak_secret_key: MUTUALAID_SECRET_KEYS version 2 is guessable"),
        ("1:" + NEW, "key_version_conflict"),  # MUTUALAID_SECRET_KEY is version 1 already
        ("2:demo-secret-key-do-not-use-in-production", "is the demo key"),
    ],
)
def test_a_bad_key_ring_is_refused_with_its_code(
    monkeypatch: pytest.MonkeyPatch, ring: str, said_: str
) -> None:
    monkeypatch.setenv("MUTUALAID_SECRET_KEYS", ring)
    result = mutualaid("keys", "status")
    assert result.exit_code == 2, result.output
    assert said_ in said(result.stderr)


def test_rotate_moves_everyone_to_the_new_version_and_the_old_one_can_go(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    publish_demo_plans(ctx)
    numbers = [resident_id(date(1980 + n, 1, 1)) for n in range(5)]
    for number in numbers:
        enroll(ctx, account(ctx), date(1980, 1, 1), id_number=number)
    ring_file = tmp_path / "keys"
    ring_file.write_text(f"# rotated 2026-12\n2:{NEW}\n", encoding="utf-8")
    monkeypatch.setenv("MUTUALAID_SECRET_KEYS_FILE", str(ring_file))

    pending = mutualaid("keys", "status")
    assert pending.exit_code == 1, pending.output
    assert "current key version 2 (key ring: 1, 2)" in said(pending.output)
    assert "5 still under an older version" in said(pending.output)

    rotated = mutualaid("keys", "rotate", "--batch", "2")
    assert rotated.exit_code == 0, rotated.output
    assert "key version 2: 5 persons" in said(rotated.output)
    with ctx.reading() as session:
        assert set(session.scalars(select(Person.key_version))) == {2}

    monkeypatch.delenv("MUTUALAID_SECRET_KEY")  # version 1 leaves the ring
    done = mutualaid("keys", "status")
    assert done.exit_code == 0, done.output
    assert "everything is under the current version" in said(done.output)


def export(entries: list[bytes], note: str, root: Path) -> Path:
    """The log as served: its checkpoint and entry bundles."""
    for index in range((len(entries) + TILE_WIDTH - 1) // TILE_WIDTH):
        bundle = entries[index * TILE_WIDTH : (index + 1) * TILE_WIDTH]
        path = root / TileRef(None, index, len(bundle)).path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_entry_bundle(bundle))
    (root / "checkpoint").write_text(note, encoding="utf-8")
    return root


def served(ctx: ServiceContext, config: LogConfig, root: Path) -> tuple[list[bytes], Path]:
    note = publish_checkpoint(ctx, config).checkpoint.note
    with ctx.reading() as session:
        size = log_size(session)
        entries = [
            leaf
            for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH)
            for leaf in entry_bundle(session, index, min(TILE_WIDTH, size - index * TILE_WIDTH))
        ]
    return entries, export(entries, note, root)


def key_file(tmp_path: Path, name: str, signer: SignerKey) -> Path:
    path = tmp_path / name
    write_key_file(path, signer)
    return path


def test_a_rotated_log_key_verifies_from_the_original_key_and_a_forgery_does_not(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old = generate_signer_key(ORIGIN, seed=bytes(32))
    new = generate_signer_key(ORIGIN, seed=bytes([1]) * 32)
    original = old.verifier().encode()
    monkeypatch.setenv("MUTUALAID_LOG_KEY_FILE", str(key_file(tmp_path, "old.key", old)))
    publish_demo_plans(ctx)
    publish_checkpoint(ctx, LogConfig(old))

    for bad, code in [
        (old, "log_key_unchanged"),
        (generate_signer_key("other.example/log"), "log_key_name_mismatch"),
    ]:
        refused = mutualaid("keys", "rotate-log-key", str(key_file(tmp_path, code, bad)))
        assert refused.exit_code == 2 and code in said(refused.stderr), refused.output
    new_file = key_file(tmp_path, "new.key", new)
    rotated = mutualaid("keys", "rotate-log-key", str(new_file))
    assert rotated.exit_code == 0, rotated.output
    assert "signed by the new key" in said(rotated.output)
    # Run again with the old key file: the log has moved on.
    again = mutualaid("keys", "rotate-log-key", str(key_file(tmp_path, "newer.key", new)))
    assert again.exit_code == 2 and "log_key_not_current" in said(again.stderr)

    enroll(ctx, account(ctx), date(1990, 1, 1))  # more leaves, under the new key's checkpoints
    entries, log_dir = served(ctx, LogConfig(new), tmp_path / "log")
    verified = mutualaid("verify", "log", "--from", str(log_dir), "--log-key", original)
    assert verified.exit_code == 0, verified.output
    text = said(verified.output)
    assert f"hands over to '{new.verifier().label}'" in text
    assert f"checkpoint signature: by '{new.verifier().label}'" in text

    # After the announcement the old key no longer signs for the log.
    tree = MemoryTree.from_entries(entries)
    stale = sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), old)
    refused = mutualaid(
        "verify", "log", "--from", str(export(entries, stale, tmp_path / "stale")), "--log-key",
        original,
    )  # fmt: skip
    assert refused.exit_code == 1 and "no signature by a known key" in said(refused.stderr)

    # A forged announcement: someone without the new key announces their own.
    thief = generate_signer_key(ORIGIN, seed=bytes([9]) * 32)
    at = 1_800_000_000
    forged_leaf = canonical_leaf(
        "log_key",
        {
            "old_key": new.verifier().encode(),  # claims to come from the key in use
            "new_key": thief.verifier().encode(),
            "signature": base64.b64encode(
                thief.sign_raw(announcement_text(new.verifier(), thief.verifier(), at).encode())
            ).decode(),
            "at": at,
        },
    )
    forged = [*entries, forged_leaf]
    tree = MemoryTree.from_entries(forged)
    note = sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), thief)
    caught = mutualaid(
        "verify", "log", "--from", str(export(forged, note, tmp_path / "forged")), "--log-key",
        original,
    )  # fmt: skip
    assert caught.exit_code == 1, caught.output
    assert f"log key announcement at leaf {len(entries)}" in said(caught.stderr)
    assert "forged announcement" in said(caught.stderr)


def test_an_unreadable_key_file_is_refused_with_its_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MUTUALAID_SECRET_KEYS_FILE", str(tmp_path / "missing"))
    result = mutualaid("keys", "status")
    assert result.exit_code == 2, result.output
    assert "key_ring_unreadable" in said(result.stderr)
