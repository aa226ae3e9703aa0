"""C2SP tlog-checkpoint bodies: strict parsing and the log's signature."""

from __future__ import annotations

import base64

import pytest

from mutualaid.transparency.checkpoints import (
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from mutualaid.transparency.errors import KeyFormatError, VerificationError
from mutualaid.transparency.merkle import MemoryTree
from mutualaid.transparency.notes import generate_signer_key, sign_note

ORIGIN = "mutualaid.example/log"
LOG_KEY = generate_signer_key(ORIGIN, seed=bytes(range(32)))
ROOT = MemoryTree.from_entries([b"a", b"b", b"c"]).root()
ROOT_B64 = base64.b64encode(ROOT).decode()

# The example checkpoint of https://c2sp.org/tlog-checkpoint.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_the_specification_example_parses() -> None:
    checkpoint = parse_checkpoint(SPEC_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.body() == SPEC_BODY


def test_body_round_trips_with_extension_lines() -> None:
    checkpoint = Checkpoint(ORIGIN, 3, ROOT, ("period 2019-12b", "x"))
    assert checkpoint.body() == f"{ORIGIN}\n3\n{ROOT_B64}\nperiod 2019-12b\nx\n"
    assert parse_checkpoint(checkpoint.body()) == checkpoint


def test_empty_tree_checkpoint_has_size_zero() -> None:
    body = f"{ORIGIN}\n0\n{base64.b64encode(MemoryTree().root()).decode()}\n"
    assert parse_checkpoint(body).size == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{ORIGIN}\n3\n{ROOT_B64}", "must end with a newline"),
        (f"{ORIGIN}\n3\n", "has 2 lines, expected at least 3"),
        (f"\n3\n{ROOT_B64}\n", "origin line is empty"),
        (f"{ORIGIN}\n007\n{ROOT_B64}\n", "size '007' has leading zeros"),
        (f"{ORIGIN}\n00\n{ROOT_B64}\n", "size '00' has leading zeros"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "size '-1' is not a decimal number"),
        (f"{ORIGIN}\n+3\n{ROOT_B64}\n", "size '\\+3' is not a decimal number"),
        (f"{ORIGIN}\n 3\n{ROOT_B64}\n", "size ' 3' is not a decimal number"),
        (f"{ORIGIN}\n3.0\n{ROOT_B64}\n", "size '3.0' is not a decimal number"),
        (f"{ORIGIN}\n\u0663\n{ROOT_B64}\n", "is not a decimal number"),  # Arabic-Indic three
        (f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n", "does not fit in 64 bits"),
        (f"{ORIGIN}\n3\n{ROOT_B64[:-4]}\n", "root hash is 30 bytes, expected 32"),
        (f"{ORIGIN}\n3\n{ROOT_B64.rstrip('=')}\n", "is not valid base64"),
        (f"{ORIGIN}\n3\n{ROOT.hex()}\n", "root hash is 48 bytes, expected 32"),
        (f"{ORIGIN}\n3\n{ROOT_B64}\n\n", "extension line 1 is empty"),
        (f"{ORIGIN}\n3\n{ROOT_B64}\next\n\n", "extension line 2 is empty"),
    ],
)
def test_malformed_checkpoint_bodies_are_refused_with_the_reason(body: str, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        parse_checkpoint(body)


def test_non_canonical_base64_root_is_refused() -> None:
    # Same 32 bytes, but the unused low bits of the last character are set.
    last = ROOT_B64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sloppy = ROOT_B64[:-2] + alphabet[alphabet.index(last) | 1] + "="
    assert base64.b64decode(sloppy) == ROOT
    with pytest.raises(VerificationError, match="is not canonical base64"):
        parse_checkpoint(f"{ORIGIN}\n3\n{sloppy}\n")


def test_signed_checkpoint_opens_with_the_log_key() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), LOG_KEY)
    opened = open_checkpoint(note, LOG_KEY.verifier())
    assert opened.checkpoint == Checkpoint(ORIGIN, 3, ROOT)


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    impostor = generate_signer_key(ORIGIN, seed=bytes(32))
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, ROOT), impostor)
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_checkpoint(note, LOG_KEY.verifier())


def test_checkpoint_from_another_origin_is_refused() -> None:
    note = sign_note(Checkpoint("other.example/log", 3, ROOT).body(), [LOG_KEY])
    with pytest.raises(VerificationError) as caught:
        open_checkpoint(note, LOG_KEY.verifier())
    assert caught.value.message == (
        "checkpoint origin 'other.example/log' does not match expected origin "
        "'mutualaid.example/log'"
    )


def test_log_key_must_be_named_after_the_origin() -> None:
    with pytest.raises(KeyFormatError, match="the key name must be the origin"):
        sign_checkpoint(Checkpoint("other.example/log", 3, ROOT), LOG_KEY)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [("", 0, ROOT, ()), ("a\nb", 0, ROOT, ()), ("o", -1, ROOT, ()), ("o", 0, ROOT[:31], ()),
     ("o", 0, ROOT, ("",))],
)  # fmt: skip
def test_checkpoint_values_that_cannot_be_written_are_refused(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        Checkpoint(origin, size, root, extensions)
