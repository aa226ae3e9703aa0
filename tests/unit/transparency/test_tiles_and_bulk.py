"""tlog-tiles paths and entry bundles; the sequencer's bulk `CompactRange.extend`; subject bundle
parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.transparency.errors import TreeError, VerificationError
from mutualaid.transparency.merkle import CompactRange, MemoryTree, NodeId, hash_leaf
from mutualaid.transparency.tiles import (
    StorageSlot,
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_storage_tile,
    encode_tile_index,
    parse_tile_path,
    storage_slot,
    storage_tile_hashes,
    storage_tile_node,
    storage_tile_width,
)
from mutualaid.transparency.verification import parse_any_bundle, parse_subject_bundle

HASHES = [hash_leaf(f"entry {i}".encode()) for i in range(300)]


def test_tile_index_is_written_in_three_digit_elements() -> None:
    assert encode_tile_index(0) == "000"
    assert encode_tile_index(999) == "999"
    assert encode_tile_index(1000) == "x001/000"
    assert encode_tile_index(1234067) == "x001/x234/067"
    assert TileRef(0, 1234067, 8).path == "tile/0/x001/x234/067.p/8"
    assert TileRef(None, 5).path == "tile/entries/005"


@given(st.integers(0, 10**12), st.integers(1, 256), st.one_of(st.none(), st.integers(0, 63)))
@settings(max_examples=200, deadline=None)
def test_tile_paths_round_trip(index: int, width: int, level: int | None) -> None:
    tile = TileRef(level, index, width)
    assert parse_tile_path(tile.path.removeprefix("tile/")) == tile


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("0/1", "not in 3-digit path elements"),
        ("0/x000/001", "is not canonical"),
        ("0/001.p/0", "partial tile width '0' is not 1..255"),
        ("0/001.p/256", "partial tile width '256' is not 1..255"),
        ("0/001.p/07", "partial tile width '07'"),
        ("64/000", "tile level '64' is not 0..63"),
        ("01/000", "tile level '01'"),
        ("0", "has no index"),
        ("0/x001", "not in 3-digit path elements"),
    ],
)
def test_non_canonical_tile_paths_are_refused(path: str, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        parse_tile_path(path)


def test_entry_bundles_round_trip_and_refuse_truncation() -> None:
    entries = [b"", b"a", b"x" * 300]
    data = encode_entry_bundle(entries)
    assert data[:3] == b"\x00\x00\x00"
    assert decode_entry_bundle(data) == entries
    with pytest.raises(VerificationError, match="entry bundle entry at byte 5 is truncated"):
        decode_entry_bundle(data[:-1])
    with pytest.raises(VerificationError, match="truncated at byte 0"):
        decode_entry_bundle(b"\x00")


@given(st.lists(st.integers(1, 40), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_extend_creates_the_same_interior_nodes_as_append(batches: list[int]) -> None:
    slow, fast, position = CompactRange(), CompactRange(), 0
    for count in batches:
        chunk = HASHES[position : position + count]
        position += count
        slow, created = slow.append(chunk)
        fast, raw = fast.extend(chunk)
        assert fast == slow
        assert raw == [
            (n.node_id.level, n.node_id.index, n.hash) for n in created if n.node_id.level > 0
        ]
        assert CompactRange.from_bytes(fast.size, fast.to_bytes()) == fast


def test_extend_refuses_a_short_hash_and_from_bytes_a_wrong_length() -> None:
    with pytest.raises(TreeError, match="leaf hash is 3 bytes"):
        CompactRange().extend([b"abc"])
    with pytest.raises(TreeError, match="compact range of size 3 needs 64 bytes, got 32"):
        CompactRange.from_bytes(3, HASHES[0])


def test_subject_bundle_fields_are_checked_by_name() -> None:
    base = {
        "format": "mutualaid-subject-bundle/v1",
        "subject": {"type": "claim", "ref": "c-1"},
        "origin": "o",
        "log_key": "k",
        "witness_keys": [],
        "quorum": 0,
        "checkpoint": "n",
        "entries": [{"leaf_index": 0, "leaf_data": "AA==", "inclusion_proof": []}],
    }
    assert parse_subject_bundle(json.dumps(base)).entries[0].leaf_data == b"\x00"
    broken = json.loads(json.dumps(base))
    broken["entries"][0]["inclusion_proof"] = ["%%"]
    with pytest.raises(
        VerificationError, match=r"'entries\[0\].inclusion_proof\[0\]' is not valid"
    ):
        parse_subject_bundle(json.dumps(broken))
    with pytest.raises(VerificationError, match=r"'subject\.ref' must be a string"):
        parse_subject_bundle(json.dumps(base | {"subject": {"type": "claim"}}))
    with pytest.raises(VerificationError, match="expected 'mutualaid-proof-bundle/v1' or"):
        parse_any_bundle(json.dumps(base | {"format": "v9"}))


def test_a_stored_tile_holds_the_complete_nodes_of_its_subtree() -> None:
    tree = MemoryTree(HASHES[:22])
    # Tile (0, 1): leaves 16..21, then the complete nodes above them inside the tile.
    rows = [
        [tree.leaf_hash(i) for i in range(16, 22)],
        tree.read_nodes([NodeId(1, i) for i in range(8, 11)]),
        tree.read_nodes([NodeId(2, 4)]),
        [],
    ]
    data = encode_storage_tile(rows)
    assert storage_tile_width(data) == 6 and len(data) == 32 * storage_tile_hashes(6)
    assert storage_tile_node(data, 1, 2) == tree.read_nodes([NodeId(1, 10)])[0]
    assert storage_tile_node(data, 2, 1) is None  # (2, 5) needs leaf 23
    assert storage_slot(1, 10) == StorageSlot(0, 1, 1, 2)
    assert storage_slot(9, 21) == StorageSlot(2, 2, 1, 5)  # level 8 nodes 42, 43: tile 2
    with pytest.raises(ValueError, match="row 1 has 2 hashes, expected 3"):
        encode_storage_tile([rows[0], rows[1][:2], rows[2], []])
    with pytest.raises(VerificationError, match="stored tile of 64 bytes has no valid width"):
        storage_tile_width(b"\x00" * 64)
