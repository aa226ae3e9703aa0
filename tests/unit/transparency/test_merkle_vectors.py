"""Published RFC 6962 / RFC 9162 test vectors.

Source: github.com/transparency-dev/merkle —
  testonly/constants.go   (leaf inputs, node hashes per level, roots for sizes 0..8, compact trees)
  proof/verify_test.go    (inclusion and consistency proofs, corruption probes, edge cases)
  proof/proof_test.go     (which stored nodes make up each proof hash, incl. "rehashed" ones)
The same leaves and roots appear in Certificate Transparency's reference tests (RFC 6962 era).
"""

from __future__ import annotations

import hashlib

import pytest

from mutualaid.transparency.errors import TreeError, VerificationError
from mutualaid.transparency.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    NodeId,
    consistency_proof_plan,
    hash_leaf,
    inclusion_proof_plan,
    merkle_tree_hash,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# RootHashes(): index = tree size.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# NodeHashes(): [level][index] for the complete subtrees of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# CompactTrees(): the compact range of each size, as (level, index) into NODE_HASHES.
COMPACT_TREES = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# verify_test.go inclusionProofs: (leaf index, tree size, proof). The Go table numbers leaves
# from 1 (it looks up leaves[p.leaf-1]); indices here are 0-based.
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# verify_test.go consistencyProofs: (old size, new size, proof).
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def n(level: int, index: int) -> NodeId:
    return NodeId(level, index)


# proof_test.go TestInclusion: each proof hash as the stored nodes it folds (left to right).
# Go lists a "rehashed" group bottom-up (e.g. j i for l = hash(i, j)); here it reads (i, j).
INCLUSION_PLANS = [
    (1, 0, []),
    (2, 0, [(n(0, 1),)]),
    (2, 1, [(n(0, 0),)]),
    (3, 1, [(n(0, 0),), (n(0, 2),)]),
    (7, 0, [(n(0, 1),), (n(1, 1),), (n(1, 2), n(0, 6))]),
    (7, 1, [(n(0, 0),), (n(1, 1),), (n(1, 2), n(0, 6))]),
    (7, 2, [(n(0, 3),), (n(1, 0),), (n(1, 2), n(0, 6))]),
    (7, 3, [(n(0, 2),), (n(1, 0),), (n(1, 2), n(0, 6))]),
    (7, 4, [(n(0, 5),), (n(0, 6),), (n(2, 0),)]),
    (7, 5, [(n(0, 4),), (n(0, 6),), (n(2, 0),)]),
    (7, 6, [(n(1, 2),), (n(2, 0),)]),
    (4, 2, [(n(0, 3),), (n(1, 0),)]),
    (5, 3, [(n(0, 2),), (n(1, 0),), (n(0, 4),)]),
    (6, 3, [(n(0, 2),), (n(1, 0),), (n(1, 2),)]),
    (6, 4, [(n(0, 5),), (n(2, 0),)]),
    (15, 10, [(n(0, 11),), (n(1, 4),), (n(1, 6), n(0, 14)), (n(3, 0),)]),
    (31, 24, [(n(0, 25),), (n(1, 13),), (n(1, 14), n(0, 30)), (n(3, 2),), (n(4, 0),)]),
    (
        95,
        81,
        [
            (n(0, 80),),
            (n(1, 41),),
            (n(2, 21),),
            (n(2, 22), n(1, 46), n(0, 94)),
            (n(4, 4),),
            (n(6, 0),),
        ],
    ),
]

# proof_test.go TestConsistency.
CONSISTENCY_PLANS = [
    (1, 2, [(n(0, 1),)]),
    (1, 4, [(n(0, 1),), (n(1, 1),)]),
    (1, 6, [(n(0, 1),), (n(1, 1),), (n(1, 2),)]),
    (2, 3, [(n(0, 2),)]),
    (2, 8, [(n(1, 1),), (n(2, 1),)]),
    (3, 7, [(n(0, 2),), (n(0, 3),), (n(1, 0),), (n(1, 2), n(0, 6))]),
    (4, 7, [(n(1, 2), n(0, 6))]),
    (5, 7, [(n(0, 4),), (n(0, 5),), (n(0, 6),), (n(2, 0),)]),
    (6, 7, [(n(1, 2),), (n(0, 6),), (n(2, 0),)]),
    (7, 8, [(n(0, 6),), (n(0, 7),), (n(1, 2),), (n(2, 0),)]),
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [(n(1, 1),)]),
    (3, 5, [(n(0, 2),), (n(0, 3),), (n(1, 0),), (n(0, 4),)]),
    (3, 6, [(n(0, 2),), (n(0, 3),), (n(1, 0),), (n(1, 2),)]),
    (4, 6, [(n(1, 2),)]),
    (1, 7, [(n(0, 1),), (n(1, 1),), (n(1, 2), n(0, 6))]),
    (10, 15, [(n(1, 4),), (n(1, 5),), (n(1, 6), n(0, 14)), (n(3, 0),)]),
    (24, 31, [(n(3, 2),), (n(2, 6), n(1, 14), n(0, 30)), (n(4, 0),)]),
    (
        81,
        95,
        [
            (n(0, 80),),
            (n(0, 81),),
            (n(1, 41),),
            (n(2, 21),),
            (n(2, 22), n(1, 46), n(0, 94)),
            (n(4, 4),),
            (n(6, 0),),
        ],
    ),
]


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree.from_entries(LEAF_INPUTS)


def test_empty_tree_hash_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == ROOTS[0]
    assert merkle_tree_hash([]) == ROOTS[0]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_root_of_every_prefix_matches_published_root(tree: MemoryTree, size: int) -> None:
    assert merkle_tree_hash(LEAF_INPUTS[:size]) == ROOTS[size]
    assert tree.root(size) == ROOTS[size]
    assert CompactRange().append(hash_leaf(e) for e in LEAF_INPUTS[:size])[0].root() == ROOTS[size]


def test_stored_nodes_match_published_node_hashes(tree: MemoryTree) -> None:
    for level, hashes in enumerate(NODE_HASHES):
        ids = [NodeId(level, index) for index in range(len(hashes))]
        assert tree.read_nodes(ids) == hashes


@pytest.mark.parametrize("size", range(len(COMPACT_TREES)))
def test_compact_range_matches_published_compact_tree(size: int) -> None:
    compact, _ = CompactRange().append(hash_leaf(e) for e in LEAF_INPUTS[:size])
    expected = [NODE_HASHES[level][index] for level, index in COMPACT_TREES[size]]
    assert list(compact.roots) == expected
    assert [(i.level, i.index) for i in CompactRange.node_ids(size)] == COMPACT_TREES[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proof_matches_published_vector_and_verifies(
    tree: MemoryTree, index: int, size: int, proof: list[bytes]
) -> None:
    assert tree.inclusion_proof(index, size) == proof
    verify_inclusion(
        leaf_hash=hash_leaf(LEAF_INPUTS[index]),
        index=index,
        size=size,
        proof=proof,
        root=ROOTS[size],
    )


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proof_matches_published_vector_and_verifies(
    tree: MemoryTree, old: int, new: int, proof: list[bytes]
) -> None:
    assert tree.consistency_proof(old, new) == proof
    verify_consistency(
        old_size=old, new_size=new, old_root=ROOTS[old], new_root=ROOTS[new], proof=proof
    )


def _flip(value: bytes, mask: int) -> bytes:
    return bytes([value[0] ^ mask]) + value[1:]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS[1:])
def test_published_inclusion_corruptions_are_all_rejected(
    index: int, size: int, proof: list[bytes]
) -> None:
    # The probes of corruptInclusionProof in verify_test.go.
    leaf, root = hash_leaf(LEAF_INPUTS[index]), ROOTS[size]
    probes: list[tuple[int, int, bytes, list[bytes], bytes]] = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, b"WrongLeaf", proof, root),
        (index, size, leaf, proof, EMPTY_ROOT),
        (index, size, leaf, proof, SOME_HASH),
        (index, size, leaf, [*proof, b""], root),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [b"", *proof], root),
        (index, size, leaf, [root, *proof], root),
    ]
    for position in range(len(proof)):
        modified = list(proof)
        modified[position] = _flip(modified[position], 8)
        probes.append((index, size, leaf, modified, root))
    if proof:
        probes.append((index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        probes.append((index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root))
    for probe_index, probe_size, probe_leaf, probe_proof, probe_root in probes:
        with pytest.raises(VerificationError):
            verify_inclusion(
                leaf_hash=probe_leaf,
                index=probe_index,
                size=probe_size,
                proof=probe_proof,
                root=probe_root,
            )


@pytest.mark.parametrize(("old", "new", "proof"), [p for p in CONSISTENCY_PROOFS if p[2]])
def test_published_consistency_corruptions_are_all_rejected(
    old: int, new: int, proof: list[bytes]
) -> None:
    # The probes of corruptConsistencyProof in verify_test.go.
    r1, r2 = ROOTS[old], ROOTS[new]
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for position in range(len(proof)):
        modified = list(proof)
        modified[position] = _flip(modified[position], 16)
        probes.append((old, new, r1, r2, modified))
    for probe_old, probe_new, probe_r1, probe_r2, probe_proof in probes:
        with pytest.raises(VerificationError):
            verify_consistency(
                old_size=probe_old,
                new_size=probe_new,
                old_root=probe_r1,
                new_root=probe_r2,
                proof=probe_proof,
            )


def test_single_leaf_tree_proves_inclusion_with_an_empty_proof() -> None:
    # TestVerifyInclusionSingleEntry: root and leaf hash coincide.
    leaf = hash_leaf(b"data")
    verify_inclusion(leaf_hash=leaf, index=0, size=1, proof=[], root=leaf)
    for bad_leaf, bad_root in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(VerificationError, match="bytes, expected 32"):
            verify_inclusion(leaf_hash=bad_leaf, index=0, size=1, proof=[], root=bad_root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1)])
def test_inclusion_outside_the_tree_is_rejected(index: int, size: int) -> None:
    with pytest.raises(VerificationError, match=f"leaf index {index} is out of range"):
        verify_inclusion(leaf_hash=SOME_HASH, index=index, size=size, proof=[], root=EMPTY_ROOT)


def test_consistency_edge_cases_from_the_reference_suite() -> None:
    # TestVerifyConsistency's table, with real hashes where the Go test used "don't care"
    # strings: here a size-0 tree must carry the empty-tree hash (stricter than Go).
    verify_consistency(old_size=0, new_size=0, old_root=EMPTY_ROOT, new_root=EMPTY_ROOT, proof=[])
    verify_consistency(old_size=0, new_size=1, old_root=EMPTY_ROOT, new_root=ROOTS[1], proof=[])
    verify_consistency(old_size=1, new_size=1, old_root=ROOTS[1], new_root=ROOTS[1], proof=[])
    with pytest.raises(VerificationError, match="two different roots at size 1"):
        verify_consistency(old_size=1, new_size=1, old_root=ROOTS[1], new_root=ROOTS[2], proof=[])
    with pytest.raises(VerificationError, match="from 1 to 0: a log can only grow"):
        verify_consistency(old_size=1, new_size=0, old_root=ROOTS[1], new_root=EMPTY_ROOT, proof=[])
    with pytest.raises(VerificationError, match="from 2 to 1: a log can only grow"):
        verify_consistency(old_size=2, new_size=1, old_root=ROOTS[2], new_root=ROOTS[1], proof=[])
    with pytest.raises(VerificationError, match="from size 1 to size 2 has 0 hashes, expected 1"):
        verify_consistency(old_size=1, new_size=2, old_root=ROOTS[1], new_root=ROOTS[2], proof=[])
    for old, new in [(0, 0), (0, 1), (1, 1)]:
        with pytest.raises(VerificationError, match="has 1 hashes, expected 0"):
            verify_consistency(
                old_size=old, new_size=new, old_root=EMPTY_ROOT, new_root=EMPTY_ROOT,
                proof=[EMPTY_ROOT],
            )  # fmt: skip
    with pytest.raises(VerificationError, match="at size 0 is not the empty-tree hash"):
        verify_consistency(old_size=0, new_size=1, old_root=ROOTS[1], new_root=ROOTS[1], proof=[])


@pytest.mark.parametrize(("size", "index", "plan"), INCLUSION_PLANS)
def test_inclusion_proof_reads_the_published_stored_nodes(
    size: int, index: int, plan: list[tuple[NodeId, ...]]
) -> None:
    assert inclusion_proof_plan(index, size) == plan


@pytest.mark.parametrize(("old", "new", "plan"), CONSISTENCY_PLANS)
def test_consistency_proof_reads_the_published_stored_nodes(
    old: int, new: int, plan: list[tuple[NodeId, ...]]
) -> None:
    assert consistency_proof_plan(old, new) == plan


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (3, 0), (8, 7)])
def test_inclusion_plan_refuses_leaves_outside_the_tree(index: int, size: int) -> None:
    # TestInclusion's error rows.
    with pytest.raises(TreeError, match=f"leaf index {index} is out of range for tree size {size}"):
        inclusion_proof_plan(index, size)


@pytest.mark.parametrize(("old", "new"), [(5, 0), (9, 8)])
def test_consistency_plan_refuses_a_shrinking_tree(old: int, new: int) -> None:
    with pytest.raises(TreeError, match=f"no consistency proof from size {old} to size {new}"):
        consistency_proof_plan(old, new)
