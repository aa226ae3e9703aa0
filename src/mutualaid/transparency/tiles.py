"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles) paths and entry bundles.

A hash tile at tile level L, index N holds up to 256 hashes of tree level 8·L: nodes
256·N … 256·N + W − 1, concatenated (a full tile has W = 256). Its path is
``tile/<L>/<N>[.p/<W>]``; entry bundles are ``tile/entries/<N>[.p/<W>]`` and hold the leaves
themselves, each as a big-endian uint16 length followed by the bytes. N is written in 3-digit
path elements, all but the last prefixed with ``x``: 1234067 is ``x001/x234/067``.
Only the canonical spelling of a path is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mutualaid.transparency.errors import VerificationError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF

_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class TileRef:
    """A tile: `level` is None for an entry bundle; `width` is 1..256 (256 = full)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """The path below the log's prefix, e.g. ``tile/0/x001/234.p/17``."""
        level = "entries" if self.level is None else str(self.level)
        partial = "" if self.is_full else f".p/{self.width}"
        return f"tile/{level}/{encode_tile_index(self.index)}{partial}"


def encode_tile_index(index: int) -> str:
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    text = f"{index % 1000:03d}"
    index //= 1000
    while index:
        text = f"x{index % 1000:03d}/{text}"
        index //= 1000
    return text


def parse_tile_path(path: str) -> TileRef:
    """Parse ``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]`` (what follows ``tile/``)."""
    parts = path.split("/")
    if len(parts) < 2:
        raise VerificationError(f"tile path {path!r} has no index")
    head, rest = parts[0], parts[1:]
    level: int | None
    if head == "entries":
        level = None
    elif _DECIMAL.fullmatch(head) and int(head) <= MAX_TILE_LEVEL:
        level = int(head)
    else:
        raise VerificationError(f"tile level {head!r} is not 0..{MAX_TILE_LEVEL} or 'entries'")
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        width_text = rest[-1]
        if not _DECIMAL.fullmatch(width_text) or not 1 <= int(width_text) < TILE_WIDTH:
            raise VerificationError(f"partial tile width {width_text!r} is not 1..255")
        width = int(width_text)
        rest = [*rest[:-2], rest[-2][:-2]]
    if not _LAST.fullmatch(rest[-1]) or not all(_ELEMENT.fullmatch(p) for p in rest[:-1]):
        raise VerificationError(f"tile index {'/'.join(rest)!r} is not in 3-digit path elements")
    index = 0
    for part in rest:
        index = index * 1000 + int(part.removeprefix("x"))
    tile = TileRef(level, index, width)
    if tile.path != f"tile/{path}":
        raise VerificationError(f"tile path {path!r} is not canonical (expected {tile.path!r})")
    return tile


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry of {len(entry)} bytes is too long for an entry bundle")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    entries, position = [], 0
    while position < len(data):
        if position + 2 > len(data):
            raise VerificationError(f"entry bundle is truncated at byte {position}")
        length = int.from_bytes(data[position : position + 2], "big")
        position += 2
        if position + length > len(data):
            raise VerificationError(f"entry bundle entry at byte {position - 2} is truncated")
        entries.append(data[position : position + length])
        position += length
    return entries


# --------------------------------------------------------------------------------------------
# Storage tiles: how a database keeps the tree (not served; `TILE_HEIGHT` tiles are)

#: Tree levels per stored tile. A full stored tile holds 16 nodes of its bottom level and the 8 + 4
#: + 2 complete nodes above them inside its subtree (30 hashes, 960 bytes): small enough to stay
#: inline in a PostgreSQL row, and a proof reads one tile per 4 levels instead of one row per node.
STORAGE_HEIGHT = 4
STORAGE_WIDTH = 1 << STORAGE_HEIGHT


def storage_tile_hashes(width: int) -> int:
    """How many hashes a stored tile with `width` bottom nodes holds (its complete nodes)."""
    return sum(width >> row for row in range(STORAGE_HEIGHT))


#: By a stored tile's length in bytes: its width and where each of its rows starts (in hashes).
_LAYOUT_BY_BYTES = {
    32 * storage_tile_hashes(w): (
        w,
        tuple(sum(w >> r for r in range(row)) for row in range(STORAGE_HEIGHT)),
    )
    for w in range(1, STORAGE_WIDTH + 1)
}


@dataclass(frozen=True, slots=True)
class StorageSlot:
    """Where node (level, index) lives: tile (tile_level, tile_index), `row` levels above the
    tile's bottom, `position` within that row."""

    tile_level: int
    tile_index: int
    row: int
    position: int


def storage_slot(level: int, index: int) -> StorageSlot:
    tile_level, row = divmod(level, STORAGE_HEIGHT)
    shift = STORAGE_HEIGHT - row
    return StorageSlot(tile_level, index >> shift, row, index & ((1 << shift) - 1))


def encode_storage_tile(rows: Sequence[Sequence[bytes]]) -> bytes:
    """Concatenate a tile's rows, bottom first; row r must hold ``len(rows[0]) >> r`` hashes."""
    width = len(rows[0]) if rows else 0
    if not 1 <= width <= STORAGE_WIDTH or len(rows) != STORAGE_HEIGHT:
        raise ValueError(f"a stored tile has {STORAGE_HEIGHT} rows and 1..16 bottom nodes")
    for number, row in enumerate(rows):
        if len(row) != width >> number:
            raise ValueError(
                f"stored tile row {number} has {len(row)} hashes, expected {width >> number}"
            )
    return b"".join(value for row in rows for value in row)


def storage_tile_layout(data: bytes) -> tuple[int, tuple[int, ...]]:
    """A stored tile's width and the offset (in hashes) of each of its rows."""
    layout = _LAYOUT_BY_BYTES.get(len(data))
    if layout is None:
        raise VerificationError(f"stored tile of {len(data)} bytes has no valid width")
    return layout


def storage_tile_node(data: bytes, row: int, position: int) -> bytes | None:
    """The hash at (`row`, `position`) of a stored tile, or None if that node is not complete."""
    width, offsets = storage_tile_layout(data)
    if position >= width >> row:
        return None
    offset = (offsets[row] + position) * 32
    return data[offset : offset + 32]


def storage_tile_width(data: bytes) -> int:
    return storage_tile_layout(data)[0]
