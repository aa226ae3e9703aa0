"""Properties of proofs for trees of 1..300 leaves, against the RFC's recursive definitions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.transparency.errors import VerificationError
from mutualaid.transparency.merkle import (
    CompactRange,
    MemoryTree,
    hash_leaf,
    merkle_tree_hash,
    range_node_ids,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 300
ENTRIES = [f"entry {i}".encode() for i in range(MAX_SIZE)]
# Complete subtrees never change, so one tree of 300 leaves answers for every smaller size.
TREE = MemoryTree.from_entries(ENTRIES)
ROOTS = [merkle_tree_hash(ENTRIES[:size]) for size in range(MAX_SIZE + 1)]

fast = settings(max_examples=200, deadline=None)


def rfc_path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) exactly as written in RFC 9162 §2.1.3.1."""
    n = len(entries)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*rfc_path(m, entries[:k]), merkle_tree_hash(entries[k:])]
    return [*rfc_path(m - k, entries[k:]), merkle_tree_hash(entries[:k])]


def rfc_subproof(m: int, entries: list[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) exactly as written in RFC 9162 §2.1.4.1."""
    n = len(entries)
    if m == n:
        return [] if complete else [merkle_tree_hash(entries)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*rfc_subproof(m, entries[:k], complete), merkle_tree_hash(entries[k:])]
    return [*rfc_subproof(m - k, entries[k:], False), merkle_tree_hash(entries[:k])]


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(1, new)), new


def flip_bit(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


@fast
@given(size_and_index())
def test_every_inclusion_proof_verifies_and_is_at_most_log2_n_hashes(case: tuple[int, int]) -> None:
    size, index = case
    proof = TREE.inclusion_proof(index, size)
    assert len(proof) <= math.ceil(math.log2(size))
    verify_inclusion(
        leaf_hash=hash_leaf(ENTRIES[index]), index=index, size=size, proof=proof, root=ROOTS[size]
    )


@settings(max_examples=60, deadline=None)
@given(size_and_index())
def test_inclusion_proof_equals_the_rfc_recursive_definition(case: tuple[int, int]) -> None:
    size, index = case
    assert TREE.inclusion_proof(index, size) == rfc_path(index, ENTRIES[:size])


@fast
@given(size_and_index(), st.integers(0, 2**16), st.sampled_from(["proof", "leaf", "root"]))
def test_flipping_one_bit_anywhere_breaks_an_inclusion_proof(
    case: tuple[int, int], bit: int, target: str
) -> None:
    size, index = case
    proof, leaf, root = TREE.inclusion_proof(index, size), hash_leaf(ENTRIES[index]), ROOTS[size]
    if target == "proof":
        if not proof:
            return
        position = bit % len(proof)
        proof[position] = flip_bit(proof[position], bit // len(proof))
    elif target == "leaf":
        leaf = flip_bit(leaf, bit)
    else:
        root = flip_bit(root, bit)
    with pytest.raises(VerificationError, match=f"inclusion proof for leaf {index} at size {size}"):
        verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=root)


@fast
@given(size_and_index(), st.integers(0, MAX_SIZE - 1))
def test_inclusion_proof_does_not_verify_for_another_index(
    case: tuple[int, int], other: int
) -> None:
    size, index = case
    other %= size
    if other == index:
        return
    proof = TREE.inclusion_proof(index, size)
    with pytest.raises(VerificationError):
        verify_inclusion(
            leaf_hash=hash_leaf(ENTRIES[index]), index=other, size=size, proof=proof,
            root=ROOTS[size],
        )  # fmt: skip


@fast
@given(size_and_index(), st.integers(1, MAX_SIZE))
def test_inclusion_proof_does_not_verify_against_a_checkpoint_of_another_size(
    case: tuple[int, int], other_size: int
) -> None:
    # The proof does not commit to the size, the checkpoint does: a proof made for one tree head
    # must fail against any other (size, root) pair the log published.
    size, index = case
    if other_size == size or index >= other_size:
        return
    proof = TREE.inclusion_proof(index, size)
    with pytest.raises(VerificationError):
        verify_inclusion(
            leaf_hash=hash_leaf(ENTRIES[index]), index=index, size=other_size, proof=proof,
            root=ROOTS[other_size],
        )  # fmt: skip


@fast
@given(two_sizes())
def test_every_consistency_proof_verifies(sizes: tuple[int, int]) -> None:
    old, new = sizes
    proof = TREE.consistency_proof(old, new)
    assert len(proof) <= math.ceil(math.log2(new)) + 1
    verify_consistency(
        old_size=old, new_size=new, old_root=ROOTS[old], new_root=ROOTS[new], proof=proof
    )


@settings(max_examples=60, deadline=None)
@given(two_sizes())
def test_consistency_proof_equals_the_rfc_recursive_definition(sizes: tuple[int, int]) -> None:
    old, new = sizes
    assert TREE.consistency_proof(old, new) == rfc_subproof(old, ENTRIES[:new], True)


@fast
@given(two_sizes(), st.integers(0, 2**16), st.sampled_from(["proof", "old_root", "new_root"]))
def test_flipping_one_bit_anywhere_breaks_a_consistency_proof(
    sizes: tuple[int, int], bit: int, target: str
) -> None:
    old, new = sizes
    proof, old_root, new_root = TREE.consistency_proof(old, new), ROOTS[old], ROOTS[new]
    if target == "proof":
        if not proof:
            return
        position = bit % len(proof)
        proof[position] = flip_bit(proof[position], bit // len(proof))
    elif target == "old_root":
        old_root = flip_bit(old_root, bit)
    else:
        new_root = flip_bit(new_root, bit)
    with pytest.raises(VerificationError):
        verify_consistency(
            old_size=old, new_size=new, old_root=old_root, new_root=new_root, proof=proof
        )


@fast
@given(two_sizes(), st.integers(1, MAX_SIZE), st.integers(1, MAX_SIZE))
def test_consistency_proof_does_not_verify_between_other_checkpoints(
    sizes: tuple[int, int], other_old: int, other_new: int
) -> None:
    old, new = sizes
    if other_old > other_new or (other_old, other_new) == (old, new):
        return
    proof = TREE.consistency_proof(old, new)
    if not proof and other_old in (other_new, 0):
        return  # an empty proof is the right one from the empty tree or between equal sizes
    with pytest.raises(VerificationError):
        verify_consistency(
            old_size=other_old, new_size=other_new, old_root=ROOTS[other_old],
            new_root=ROOTS[other_new], proof=proof,
        )  # fmt: skip


@fast
@given(two_sizes(), st.integers(0, MAX_SIZE - 1), st.integers(0, MAX_SIZE - 1))
def test_consistency_fails_when_two_leaves_of_the_old_tree_are_swapped(
    sizes: tuple[int, int], first: int, second: int
) -> None:
    old, new = sizes
    first, second = first % old, second % old
    if first == second:
        return
    rewritten = list(ENTRIES[:new])
    rewritten[first], rewritten[second] = rewritten[second], rewritten[first]
    forged = MemoryTree.from_entries(rewritten)
    # Which root betrays the rewrite depends on the shape; one always does.
    with pytest.raises(VerificationError, match="root"):
        verify_consistency(
            old_size=old, new_size=new, old_root=ROOTS[old], new_root=forged.root(),
            proof=forged.consistency_proof(old, new),
        )  # fmt: skip


@fast
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12))
def test_compact_range_root_and_nodes_agree_with_the_memory_tree(batches: list[int]) -> None:
    compact, tree, position = CompactRange(), MemoryTree(), 0
    for batch_size in batches:
        hashes = [hash_leaf(f"leaf {position + i}".encode()) for i in range(batch_size)]
        position += batch_size
        for leaf_hash in hashes:
            tree.append_leaf_hash(leaf_hash)
        compact, created = compact.append(hashes)
        assert compact.size == tree.size
        assert compact.root() == tree.root()
        # Every node handed to storage is the complete node the full tree holds there.
        assert [node.hash for node in created] == tree.read_nodes([nd.node_id for nd in created])
        assert sum(1 for node in created if node.node_id.level == 0) == batch_size
        # A range restored from the stored nodes carries on identically.
        restored = CompactRange(tree.size, tuple(tree.read_nodes(CompactRange.node_ids(tree.size))))
        assert restored == compact


@fast
@given(st.integers(0, 2**20), st.integers(0, 2**20))
def test_range_decomposition_covers_exactly_the_range_with_perfect_nodes(
    begin: int, length: int
) -> None:
    ids = range_node_ids(begin, begin + length)
    position = begin
    for node_id in ids:
        assert node_id.first_leaf == position
        position = node_id.end_leaf
    assert position == begin + length
    assert len(ids) <= 2 * max(1, (length).bit_length())
