"""RFC 9162 (Certificate Transparency v2, same hashing as RFC 6962) Merkle trees.

Leaf hash ``SHA-256(0x00 || data)``, interior node ``SHA-256(0x01 || left || right)``, the hash of
the empty tree is ``SHA-256("")``. Proof verification follows RFC 9162 §2.1.3.2 (inclusion) and
§2.1.4.2 (consistency) step by step; proof generation follows §2.1.3.1 and §2.1.4.1.

Storage model. A node is named by ``NodeId(level, index)``: level 0 holds leaf hashes, the node at
(level, index) is the root of the *perfect* subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``. Such a hash never changes once the subtree is
complete, so a database can store it forever. Every root and proof hash of an RFC tree is the
right-to-left fold of O(log n) perfect subtrees, which is how proofs are served here: a
`NodeReader` is asked, in one batch, for the perfect subtrees a proof needs (see
`inclusion_proof_plan` / `consistency_proof_plan`), and the fold happens in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mutualaid.transparency.errors import TreeError, VerificationError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(data: bytes) -> bytes:
    """The RFC 9162 hash of a leaf entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def hash_leaves(entries: Iterable[bytes]) -> list[bytes]:
    """`hash_leaf` of each entry (for bulk appends: no function call per leaf)."""
    sha256, prefix = hashlib.sha256, LEAF_PREFIX
    return [sha256(prefix + data).digest() for data in entries]


def hash_children(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def merkle_tree_hash(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1, written as the RFC's recursion over raw entries.

    This is the reference definition (O(n) hashes, no storage); the rest of the module must agree
    with it, and the tests hold it to that.
    """
    n = len(entries)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hash_leaf(entries[0])
    k = _largest_power_of_two_below(n)
    return hash_children(merkle_tree_hash(entries[:k]), merkle_tree_hash(entries[k:]))


# --------------------------------------------------------------------------------------------
# Node addressing


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    """The perfect subtree of height `level` whose leftmost leaf is ``index * 2**level``."""

    level: int
    index: int

    def __post_init__(self) -> None:
        if self.level < 0 or self.index < 0:
            raise TreeError(
                f"node (level {self.level}, index {self.index}) has a negative coordinate"
            )

    @property
    def first_leaf(self) -> int:
        return self.index << self.level

    @property
    def end_leaf(self) -> int:
        """One past the last leaf covered."""
        return (self.index + 1) << self.level


@dataclass(frozen=True, slots=True)
class Node:
    """A perfect subtree's hash, as a database stores it."""

    node_id: NodeId
    hash: bytes


#: A stored interior node as a database row: (level, index, hash).
RawNode = tuple[int, int, bytes]

#: One hash of a proof, described as the perfect subtrees (left to right) whose fold it is.
#: Most steps are a single stored node; at most one step per proof folds several.
ProofStep = tuple[NodeId, ...]


class NodeReader(Protocol):
    """A source of perfect-subtree hashes (in memory, SQL rows, static tiles...).

    Implementations return the hashes in the order asked and raise `TreeError` for a node that
    is not complete in the tree they hold. Asking in one batch lets a database answer a whole
    proof with one query.
    """

    def read_nodes(self, node_ids: Sequence[NodeId]) -> Sequence[bytes]: ...


def range_node_ids(begin: int, end: int) -> list[NodeId]:
    """The maximal perfect subtrees that exactly cover leaves [begin, end), left to right.

    For ``begin == 0`` this is the "compact range" of a tree of size `end`: one node per set bit
    of the size, tallest first.
    """
    if begin < 0 or end < begin:
        raise TreeError(f"leaf range [{begin}, {end}) is not a valid range")
    ids: list[NodeId] = []
    while begin < end:
        # The tallest subtree that starts at `begin` must be aligned to its own size and fit.
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        ids.append(NodeId(level, begin >> level))
        begin += 1 << level
    return ids


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """The RFC hash of a range from its perfect subtrees' hashes (as from `range_node_ids`).

    MTH splits at the largest power of two below n, and that left part is exactly the first
    (tallest) perfect subtree, so the tree hash is the right-to-left fold.
    """
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = hash_children(left, result)
    return result


def inclusion_proof_plan(index: int, size: int) -> list[ProofStep]:
    """Which perfect subtrees make up each hash of PATH(index, D[size]) (RFC 9162 §2.1.3.1).

    Steps are in proof order, from the leaf's sibling up to the root's child.
    """
    if not 0 <= index < size:
        raise TreeError(f"leaf index {index} is out of range for tree size {size}")
    steps_top_down: list[ProofStep] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _largest_power_of_two_below(n)
        if m < k:
            steps_top_down.append(tuple(range_node_ids(start + k, start + n)))
            n = k
        else:
            steps_top_down.append(tuple(range_node_ids(start, start + k)))
            start, n, m = start + k, n - k, m - k
    steps_top_down.reverse()
    return steps_top_down


def consistency_proof_plan(old_size: int, new_size: int) -> list[ProofStep]:
    """Which perfect subtrees make up each hash of PROOF(old_size, D[new_size]) (§2.1.4.1).

    Empty when the sizes are equal or the old tree is empty: nothing needs proving then.
    """
    if not 0 <= old_size <= new_size:
        raise TreeError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    steps_top_down: list[ProofStep] = []
    start, n, m = 0, new_size, old_size
    # `complete` is the RFC's boolean b: whether the old tree's root is itself this subtree.
    complete = True
    while m != n:
        k = _largest_power_of_two_below(n)
        if m <= k:
            steps_top_down.append(tuple(range_node_ids(start + k, start + n)))
            n = k
        else:
            steps_top_down.append(tuple(range_node_ids(start, start + k)))
            start, n, m = start + k, n - k, m - k
            complete = False
    if not complete:
        steps_top_down.append(tuple(range_node_ids(start, start + m)))
    steps_top_down.reverse()
    return steps_top_down


def root_hash(reader: NodeReader, size: int) -> bytes:
    """The tree head at `size`, from the O(log n) perfect subtrees covering [0, size)."""
    return fold_range(reader.read_nodes(range_node_ids(0, size)))


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf `index` in the tree of `size`, read in one batch."""
    return _materialise(reader, inclusion_proof_plan(index, size))


def consistency_proof(reader: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """The RFC 9162 consistency proof from `old_size` to `new_size`, read in one batch."""
    return _materialise(reader, consistency_proof_plan(old_size, new_size))


def _materialise(reader: NodeReader, plan: Sequence[ProofStep]) -> list[bytes]:
    wanted = list(dict.fromkeys(node_id for step in plan for node_id in step))
    hashes = reader.read_nodes(wanted)
    if len(hashes) != len(wanted):
        raise TreeError(f"node reader returned {len(hashes)} hashes for {len(wanted)} nodes")
    by_id = dict(zip(wanted, hashes, strict=True))
    return [fold_range([by_id[node_id] for node_id in step]) for step in plan]


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf `index` in a tree of `size` has."""
    if not 0 <= index < size:
        raise TreeError(f"leaf index {index} is out of range for tree size {size}")
    # Below the level where the paths to `index` and to the last leaf part, every level has a
    # sibling; above it only levels where `index` is a right child have one (the left border).
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes the consistency proof from `old_size` to `new_size` has."""
    if not 0 <= old_size <= new_size:
        raise TreeError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return 0
    # The proof is the inclusion proof of the old tree's last perfect subtree, whose hash is
    # left out when that subtree is the whole old tree (old_size a power of two).
    shift = (old_size & -old_size).bit_length() - 1
    length = inclusion_proof_length((old_size - 1) >> shift, ((new_size - 1) >> shift) + 1)
    return length if old_size == 1 << shift else length + 1


def root_from_inclusion_proof(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that `proof` implies for the leaf; raises if the proof is malformed."""
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is out of range for tree size {size}")
    _check_hash_length(leaf_hash, "leaf hash")
    expected = inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise VerificationError(
            f"inclusion proof for leaf {index} at size {size} has {len(proof)} hashes, "
            f"expected {expected}"
        )
    for position, step in enumerate(proof):
        _check_hash_length(step, f"inclusion proof hash {position}")
    # RFC 9162 §2.1.3.2, steps 2-5.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError(
                f"inclusion proof for leaf {index} at size {size} is longer than the tree is tall"
            )
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(
            f"inclusion proof for leaf {index} at size {size} is shorter than the tree is tall"
        )
    return r


def verify_inclusion(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf with `leaf_hash` is at `index` in the tree of `size` with `root`."""
    _check_hash_length(root, "root hash")
    computed = root_from_inclusion_proof(leaf_hash=leaf_hash, index=index, size=size, proof=proof)
    if computed != root:
        raise VerificationError(
            f"inclusion proof for leaf {index} at size {size} leads to root {computed.hex()}, "
            f"not to the expected root {root.hex()}"
        )


def verify_consistency(
    *,
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree of `new_size` and `new_root` extends the one of `old_size`/`old_root`."""
    _check_hash_length(old_root, "old root hash")
    _check_hash_length(new_root, "new root hash")
    for position, step in enumerate(proof):
        _check_hash_length(step, f"consistency proof hash {position}")
    if old_size < 0 or new_size < old_size:
        raise VerificationError(
            f"tree size went from {old_size} to {new_size}: a log can only grow"
        )
    expected = consistency_proof_length(old_size, new_size)
    if len(proof) != expected:
        raise VerificationError(
            f"consistency proof from size {old_size} to size {new_size} has {len(proof)} "
            f"hashes, expected {expected}"
        )
    if old_size == 0:
        # The empty tree is a prefix of every tree; only its root is fixed.
        if old_root != EMPTY_ROOT:
            raise VerificationError(
                f"old root {old_root.hex()} at size 0 is not the empty-tree hash {EMPTY_ROOT.hex()}"
            )
        return
    if old_size == new_size:
        if old_root != new_root:
            raise VerificationError(
                f"two different roots at size {new_size}: {old_root.hex()} and {new_root.hex()}"
            )
        return
    # RFC 9162 §2.1.4.2, steps 2-7.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(
                f"consistency proof from size {old_size} to size {new_size} is too long"
            )
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(
            f"consistency proof from size {old_size} to size {new_size} is too short"
        )
    if fr != old_root:
        raise VerificationError(
            f"consistency proof from size {old_size} to size {new_size} leads to old root "
            f"{fr.hex()}, not to the expected old root {old_root.hex()}"
        )
    if sr != new_root:
        raise VerificationError(
            f"consistency proof from size {old_size} to size {new_size} leads to new root "
            f"{sr.hex()}, not to the expected new root {new_root.hex()}"
        )


def _check_hash_length(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------------------------
# Trees


class MemoryTree:
    """A whole Merkle tree in memory: every level of perfect-subtree hashes.

    Appending is amortised O(1) hashes; roots and proofs for any size up to the current one are
    O(log n). Used by tests, demos and offline verifiers; a database keeps the same nodes in rows.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for leaf_hash in leaf_hashes:
            self.append_leaf_hash(leaf_hash)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemoryTree:
        return cls(hash_leaf(entry) for entry in entries)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append_entry(self, data: bytes) -> int:
        """Append a leaf entry; returns its index."""
        return self.append_leaf_hash(hash_leaf(data))

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        """Append an already-hashed leaf; returns its index."""
        if len(leaf_hash) != HASH_SIZE:
            raise TreeError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
        index = self.size
        self._levels[0].append(leaf_hash)
        level, position, current = 0, index, leaf_hash
        # Each time the new node is a right child its parent becomes complete.
        while position & 1:
            current = hash_children(self._levels[level][position - 1], current)
            level += 1
            position >>= 1
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(current)
        return index

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise TreeError(f"leaf index {index} is out of range for tree size {self.size}")
        return self._levels[0][index]

    def read_nodes(self, node_ids: Sequence[NodeId]) -> list[bytes]:
        hashes: list[bytes] = []
        for node_id in node_ids:
            if node_id.level >= len(self._levels) or node_id.index >= len(
                self._levels[node_id.level]
            ):
                raise TreeError(
                    f"node (level {node_id.level}, index {node_id.index}) is not complete "
                    f"at tree size {self.size}"
                )
            hashes.append(self._levels[node_id.level][node_id.index])
        return hashes

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self, self._size_or_current(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self, index, self._size_or_current(size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(self, old_size, self._size_or_current(new_size))

    def _size_or_current(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise TreeError(f"tree size {size} is beyond the current size {self.size}")
        return size


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The perfect-subtree roots covering leaves [0, size): all a log needs to append and to
    compute its root (transparency-dev/merkle's compact range, starting at 0).

    Immutable: `append` returns the new range and the nodes that became complete, so a service
    can store those nodes and the new range in the same transaction.
    """

    size: int = 0
    #: Hashes of `range_node_ids(0, size)`, tallest (leftmost) first.
    roots: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0:
            raise TreeError(f"compact range size {self.size} is negative")
        if len(self.roots) != self.size.bit_count():
            raise TreeError(
                f"compact range of size {self.size} needs {self.size.bit_count()} subtree "
                f"hashes, got {len(self.roots)}"
            )
        for root in self.roots:
            if len(root) != HASH_SIZE:
                raise TreeError(f"compact range hash is {len(root)} bytes, expected {HASH_SIZE}")

    @staticmethod
    def node_ids(size: int) -> list[NodeId]:
        """The stored nodes to read to restore the compact range of a tree of `size`."""
        return range_node_ids(0, size)

    def append(self, leaf_hashes: Iterable[bytes]) -> tuple[CompactRange, list[Node]]:
        """Append leaf hashes; returns the new range and every node that became complete
        (the leaves themselves at level 0 included), in creation order."""
        roots = list(self.roots)
        size = self.size
        created: list[Node] = []
        for leaf_hash in leaf_hashes:
            if len(leaf_hash) != HASH_SIZE:
                raise TreeError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
            level, position, current = 0, size, leaf_hash
            created.append(Node(NodeId(0, position), current))
            while position & 1:
                current = hash_children(roots.pop(), current)
                level += 1
                position >>= 1
                created.append(Node(NodeId(level, position), current))
            roots.append(current)
            size += 1
        return CompactRange(size, tuple(roots)), created

    def extend(self, leaf_hashes: Sequence[bytes]) -> tuple[CompactRange, list[RawNode]]:
        """`append` for bulk work: the interior nodes that became complete (level >= 1 only;
        level 0 are the leaf hashes themselves) as plain ``(level, index, hash)`` tuples, in
        creation order. A sequencer stores these; tests hold it equal to `append`."""
        for leaf_hash in leaf_hashes:
            if len(leaf_hash) != HASH_SIZE:
                raise TreeError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
        sha256 = hashlib.sha256
        roots = list(self.roots)
        size = self.size
        created: list[RawNode] = []
        add = created.append
        for leaf_hash in leaf_hashes:
            position, current, level = size, leaf_hash, 0
            while position & 1:
                current = sha256(NODE_PREFIX + roots.pop() + current).digest()
                level += 1
                position >>= 1
                add((level, position, current))
            roots.append(current)
            size += 1
        return CompactRange(size, tuple(roots)), created

    def to_bytes(self) -> bytes:
        """The roots concatenated, as a database column stores them (the size is kept apart)."""
        return b"".join(self.roots)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> CompactRange:
        if len(data) != HASH_SIZE * size.bit_count():
            raise TreeError(
                f"compact range of size {size} needs {size.bit_count() * HASH_SIZE} bytes, "
                f"got {len(data)}"
            )
        return cls(size, tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)))

    def root(self) -> bytes:
        return fold_range(self.roots)
