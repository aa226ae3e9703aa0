"""A member's charge proof: a self-contained file that ties one member's charge in one period,
link by link, to a checkpoint signed by the log and cosigned by its witnesses.

The file (JSON, ``"format": "mutualaid-charge-proof/v1"``)::

    {
      "format": "mutualaid-charge-proof/v1",
      "plan_ref": "xhb-main",
      "period_ref": "xhb-main/2026-03-07",
      "membership_id": 1234,
      "charge_fen": 270,
      "block": {"period_ref": "xhb-main/2026-03-07", "index": 1,
                "charges": [[1024, 270], [1234, 270], ...]},
      "charges_tree": {"leaf_index": 0, "size": 3, "root": "<hex>",
                       "inclusion_proof": ["<hex>", ...]},
      "commitment": {"leaf": "<the period_commitment leaf, canonical JSON text>",
                     "leaf_index": 17, "inclusion_proof": ["<base64>", ...]},
      "checkpoint": "<the checkpoint note, signed by the log and cosigned by witnesses>"
    }

`verify_charge_proof(proof, trust)` checks the links in `LINKS` order, from the keys the auditor
trusts down to the member's charge, and raises `ChargeProofError` naming the first link that
does not hold. Nothing in the file is trusted: the keys and the quorum come from the auditor.
Pure: no database, network or clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from mutualaid.domain.apportionment import charges_leaf
from mutualaid.transparency.checkpoints import Checkpoint, open_checkpoint
from mutualaid.transparency.errors import LeafError, TransparencyError, VerificationError
from mutualaid.transparency.leaves import Leaf, decode_leaf
from mutualaid.transparency.merkle import HASH_SIZE, hash_leaf, verify_inclusion
from mutualaid.transparency.verification import Check, TrustPolicy, json_document
from mutualaid.transparency.witnesses import verify_cosigned

CHARGE_PROOF_FORMAT = "mutualaid-charge-proof/v1"

CHECKPOINT_SIGNATURE = "checkpoint signature"
WITNESS_QUORUM = "witness quorum"
COMMITMENT_LEAF = "commitment leaf"
COMMITMENT_IN_LOG = "commitment in log"
PERIOD = "period"
CHARGES_ROOT = "charges root"
BLOCK = "block"
BLOCK_IN_TREE = "block in charges tree"
CHARGE = "charge"

#: The links of the chain, in the order they are checked.
LINKS = (
    CHECKPOINT_SIGNATURE,
    WITNESS_QUORUM,
    COMMITMENT_LEAF,
    COMMITMENT_IN_LOG,
    PERIOD,
    CHARGES_ROOT,
    BLOCK,
    BLOCK_IN_TREE,
    CHARGE,
)

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_TOP_KEYS = frozenset(
    {
        "format",
        "plan_ref",
        "period_ref",
        "membership_id",
        "charge_fen",
        "block",
        "charges_tree",
        "commitment",
        "checkpoint",
    }
)
_BLOCK_KEYS = frozenset({"period_ref", "index", "charges"})
_TREE_KEYS = frozenset({"leaf_index", "size", "root", "inclusion_proof"})
_COMMITMENT_KEYS = frozenset({"leaf", "leaf_index", "inclusion_proof"})
_MAX_INT = 2**64 - 1


@dataclass(frozen=True, slots=True)
class ChargeProof:
    """What a member downloads: the claim (this membership paid this charge in this period) and
    every link from it to a cosigned checkpoint of the log."""

    plan_ref: str
    period_ref: str
    membership_id: int
    charge_fen: int
    #: The member's block: the period its leaf names, its index (membership id >> 10) and every
    #: (membership id, charge) of the block, in ascending id order.
    block_period_ref: str
    block_index: int
    block: tuple[tuple[int, int], ...]
    #: The block's leaf in the period's charges tree and its inclusion proof.
    block_leaf_index: int
    charges_tree_size: int
    charges_root: bytes
    charges_proof: tuple[bytes, ...]
    #: The period_commitment leaf (canonical bytes; None when the operator gave none), its index
    #: in the transparency log and its inclusion proof at the checkpoint's size.
    commitment_leaf: bytes | None
    commitment_leaf_index: int
    commitment_proof: tuple[bytes, ...]
    #: The checkpoint note with the log's signature and the witnesses' cosignatures.
    checkpoint: str

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format": CHARGE_PROOF_FORMAT,
            "plan_ref": self.plan_ref,
            "period_ref": self.period_ref,
            "membership_id": self.membership_id,
            "charge_fen": self.charge_fen,
            "block": {
                "period_ref": self.block_period_ref,
                "index": self.block_index,
                "charges": [[member, charge] for member, charge in self.block],
            },
            "charges_tree": {
                "leaf_index": self.block_leaf_index,
                "size": self.charges_tree_size,
                "root": self.charges_root.hex(),
                "inclusion_proof": [h.hex() for h in self.charges_proof],
            },
            "commitment": {
                "leaf": None if self.commitment_leaf is None else self.commitment_leaf.decode(),
                "leaf_index": self.commitment_leaf_index,
                "inclusion_proof": [_b64(h) for h in self.commitment_proof],
            },
            "checkpoint": self.checkpoint,
        }
        text = json.dumps(body, indent=2, ensure_ascii=False)
        # One (membership id, charge) pair per line: a block lists up to 1024 of them.
        return _PAIR.sub(r"[\1, \2]", text) + "\n"


_PAIR = re.compile(r"\[\s+(\d+),\s+(\d+)\s+\]")


@dataclass(frozen=True, slots=True)
class ChargeProofReport:
    """Every link held: what was checked, and what the proof established."""

    checks: tuple[Check, ...]
    checkpoint: Checkpoint
    cosigners: tuple[str, ...]
    commitment: Leaf


class ChargeProofError(VerificationError):
    """The first link of a charge proof that does not hold (`link`, one of `LINKS`)."""

    def __init__(self, link: str, detail: str, passed: tuple[Check, ...]) -> None:
        super().__init__(f"{link}: {detail}")
        self.link = link
        self.detail = detail
        self.passed = passed

    @property
    def checks(self) -> tuple[Check, ...]:
        """The links that held, then the one that failed."""
        return (*self.passed, Check(self.link, False, self.detail))


def verify_charge_proof(proof: ChargeProof, trust: TrustPolicy) -> ChargeProofReport:
    """Check every link of `proof` against the keys and quorum in `trust`, in `LINKS` order.

    Raises `ChargeProofError` for the first link that does not hold.
    """
    checks: list[Check] = []

    def fail(link: str, detail: str) -> ChargeProofError:
        return ChargeProofError(link, detail, tuple(checks))

    # 1. The checkpoint is signed by the log the auditor trusts (not by another log).
    try:
        checkpoint = open_checkpoint(
            proof.checkpoint, trust.log_key, expected_origin=trust.origin
        ).checkpoint
    except TransparencyError as error:
        raise fail(
            CHECKPOINT_SIGNATURE,
            f"the checkpoint is not signed by the trusted log '{trust.log_key.label}' (a "
            f"checkpoint of another log?): {error.message}",
        ) from None
    checks.append(
        Check(
            CHECKPOINT_SIGNATURE,
            True,
            f"checkpoint of '{checkpoint.origin}' at size {checkpoint.size} is signed by the log "
            f"key '{trust.log_key.label}'",
        )
    )

    # 2. Enough of the witnesses the auditor trusts cosigned it.
    try:
        cosigned = verify_cosigned(
            proof.checkpoint,
            trust.log_key,
            trust.witness_keys,
            trust.quorum,
            expected_origin=trust.origin,
        )
    except TransparencyError as error:
        raise fail(WITNESS_QUORUM, error.message) from None
    cosigners = tuple(c.name for c in cosigned.cosigners)
    checks.append(
        Check(
            WITNESS_QUORUM,
            True,
            f"cosigned by {len(cosigners)} of {len(trust.witness_keys)} trusted witnesses "
            f"({', '.join(cosigners) or 'none'}), quorum {trust.quorum}",
        )
    )

    # 3. The commitment leaf is there and is a period commitment.
    if proof.commitment_leaf is None:
        raise fail(COMMITMENT_LEAF, "the proof carries no period_commitment leaf")
    try:
        commitment = decode_leaf(proof.commitment_leaf)
    except LeafError as error:
        raise fail(COMMITMENT_LEAF, f"not a canonical log leaf: {error.message}") from None
    if commitment.type != "period_commitment":
        raise fail(COMMITMENT_LEAF, f"a {commitment.type!r} leaf, not a period_commitment leaf")
    checks.append(
        Check(
            COMMITMENT_LEAF, True, f"a period_commitment leaf of {commitment.fields['period_ref']}"
        )
    )

    # 4. The commitment leaf is in the log at the checkpoint.
    leaf_hash = hash_leaf(proof.commitment_leaf)
    if proof.commitment_leaf_index >= checkpoint.size:
        raise fail(
            COMMITMENT_IN_LOG,
            f"leaf index {proof.commitment_leaf_index} is beyond the checkpoint's size "
            f"{checkpoint.size}",
        )
    try:
        verify_inclusion(
            leaf_hash=leaf_hash,
            index=proof.commitment_leaf_index,
            size=checkpoint.size,
            proof=proof.commitment_proof,
            root=checkpoint.root_hash,
        )
    except VerificationError as error:
        raise fail(
            COMMITMENT_IN_LOG,
            f"the commitment leaf is not leaf {proof.commitment_leaf_index} of the log at size "
            f"{checkpoint.size}: {error.message}",
        ) from None
    checks.append(
        Check(
            COMMITMENT_IN_LOG,
            True,
            f"leaf {proof.commitment_leaf_index} (hash {leaf_hash.hex()}) is in the log at size "
            f"{checkpoint.size}",
        )
    )

    # 5. The proof, its block and the commitment are about the same period.
    committed_period = commitment.fields["period_ref"]
    if proof.period_ref != committed_period:
        raise fail(
            PERIOD,
            f"the proof is about period {proof.period_ref!r} but the commitment is of "
            f"{committed_period!r}",
        )
    if proof.block_period_ref != committed_period:
        raise fail(
            PERIOD,
            f"the block is of period {proof.block_period_ref!r}, the commitment of "
            f"{committed_period!r}",
        )
    if proof.plan_ref != commitment.fields["plan_ref"]:
        raise fail(
            PERIOD,
            f"the proof is about plan {proof.plan_ref!r} but the commitment is of "
            f"{commitment.fields['plan_ref']!r}",
        )
    checks.append(Check(PERIOD, True, f"block and commitment are of {committed_period}"))

    # 6. The charges tree is the one the commitment committed: same root, same number of leaves.
    committed_root = commitment.fields["charges_root"]
    if proof.charges_root.hex() != committed_root:
        raise fail(
            CHARGES_ROOT,
            f"the charges tree root {proof.charges_root.hex()} differs from the committed "
            f"charges_root {committed_root}",
        )
    committed_leaves = commitment.fields.get("charges_leaves")
    if committed_leaves is None:
        raise fail(CHARGES_ROOT, "the commitment does not state its number of charges leaves")
    if proof.charges_tree_size != committed_leaves:
        raise fail(
            CHARGES_ROOT,
            f"the charges tree has {proof.charges_tree_size} leaves, the commitment committed "
            f"{committed_leaves}",
        )
    checks.append(
        Check(
            CHARGES_ROOT,
            True,
            f"root {committed_root} over {committed_leaves} leaves "
            f"({commitment.fields['charges_count']} charges), as committed",
        )
    )

    # 7. The block re-encodes to a charges leaf.
    if not proof.block:
        raise fail(BLOCK, "the block lists no charge")
    try:
        block_leaf = charges_leaf(proof.block_period_ref, proof.block_index, proof.block)
    except (ValueError, OverflowError) as error:
        raise fail(BLOCK, f"block {proof.block_index} does not encode: {error}") from None
    block_hash = hash_leaf(block_leaf)
    checks.append(
        Check(
            BLOCK,
            True,
            f"block {proof.block_index} ({len(proof.block)} charges) encodes to leaf hash "
            f"{block_hash.hex()}",
        )
    )

    # 8. That leaf is in the committed charges tree.
    try:
        verify_inclusion(
            leaf_hash=block_hash,
            index=proof.block_leaf_index,
            size=proof.charges_tree_size,
            proof=proof.charges_proof,
            root=proof.charges_root,
        )
    except VerificationError as error:
        raise fail(BLOCK_IN_TREE, error.message) from None
    checks.append(
        Check(
            BLOCK_IN_TREE,
            True,
            f"the block is leaf {proof.block_leaf_index} of {proof.charges_tree_size} of the "
            "charges tree",
        )
    )

    # 9. The block charges the member what the proof claims (and not above the share).
    charged = dict(proof.block).get(proof.membership_id)
    if charged is None:
        raise fail(CHARGE, f"membership {proof.membership_id} is not in the block")
    if charged != proof.charge_fen:
        raise fail(
            CHARGE,
            f"the block charges membership {proof.membership_id} {charged} fen, not the "
            f"claimed {proof.charge_fen} fen",
        )
    share = commitment.fields.get("share_fen")
    if isinstance(share, int) and charged > share:
        raise fail(CHARGE, f"the charge of {charged} fen is above the period's share {share} fen")
    checks.append(
        Check(
            CHARGE,
            True,
            f"membership {proof.membership_id} was charged {charged} fen in {committed_period}",
        )
    )
    return ChargeProofReport(tuple(checks), checkpoint, cosigners, commitment)


# --------------------------------------------------------------------------------------------
# Reading the file: strict, so that two different files never mean the same proof


def parse_charge_proof(text: str | bytes) -> ChargeProof:
    """Parse a charge proof file, with a precise message for the first field that is wrong."""
    body = json_document(text, CHARGE_PROOF_FORMAT, "charge proof")
    _keys(body, _TOP_KEYS, "")
    block = _object(body, "block", _BLOCK_KEYS)
    tree = _object(body, "charges_tree", _TREE_KEYS)
    commitment = _object(body, "commitment", _COMMITMENT_KEYS)
    raw_charges = block.get("charges")
    if not isinstance(raw_charges, list):
        raise VerificationError("charge proof field 'block.charges' must be a list")
    charges: list[tuple[int, int]] = []
    for position, pair in enumerate(raw_charges):
        where = f"block.charges[{position}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise VerificationError(f"charge proof field {where!r} must be [membership id, fen]")
        charges.append((_int_value(pair[0], where), _int_value(pair[1], where)))
    leaf = commitment.get("leaf")
    if leaf is not None and not isinstance(leaf, str):
        raise VerificationError("charge proof field 'commitment.leaf' must be a string or null")
    return ChargeProof(
        plan_ref=_str(body, "plan_ref", ""),
        period_ref=_str(body, "period_ref", ""),
        membership_id=_int(body, "membership_id", ""),
        charge_fen=_int(body, "charge_fen", ""),
        block_period_ref=_str(block, "period_ref", "block."),
        block_index=_int(block, "index", "block."),
        block=tuple(charges),
        block_leaf_index=_int(tree, "leaf_index", "charges_tree."),
        charges_tree_size=_int(tree, "size", "charges_tree."),
        charges_root=_hex(tree.get("root"), "charges_tree.root"),
        charges_proof=tuple(
            _hex(item, f"charges_tree.inclusion_proof[{n}]")
            for n, item in enumerate(_list(tree, "inclusion_proof", "charges_tree."))
        ),
        commitment_leaf=None if leaf is None else leaf.encode("utf-8"),
        commitment_leaf_index=_int(commitment, "leaf_index", "commitment."),
        commitment_proof=tuple(
            _b64_hash(item, f"commitment.inclusion_proof[{n}]")
            for n, item in enumerate(_list(commitment, "inclusion_proof", "commitment."))
        ),
        checkpoint=_str(body, "checkpoint", ""),
    )


def _keys(body: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise VerificationError(f"charge proof has unknown field {where + unknown[0]!r}")


def _object(body: dict[str, Any], key: str, allowed: frozenset[str]) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise VerificationError(f"charge proof field {key!r} must be an object")
    _keys(value, allowed, f"{key}.")
    return value


def _str(body: dict[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise VerificationError(f"charge proof field {where + key!r} must be a string")
    return value


def _int(body: dict[str, Any], key: str, where: str) -> int:
    return _int_value(body.get(key), where + key)


def _int_value(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT:
        raise VerificationError(f"charge proof field {where!r} must be an integer in 0..2^64-1")
    return value


def _list(body: dict[str, Any], key: str, where: str) -> list[object]:
    value = body.get(key)
    if not isinstance(value, list):
        raise VerificationError(f"charge proof field {where + key!r} must be a list")
    return value


def _hex(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise VerificationError(f"charge proof field {where!r} must be 64 lowercase hex digits")
    return bytes.fromhex(value)


def _b64_hash(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"charge proof field {where!r} must be a base64 string")
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"charge proof field {where!r} is not valid base64") from None
    if len(decoded) != HASH_SIZE or _b64(decoded) != value:
        raise VerificationError(f"charge proof field {where!r} is not a canonical base64 hash")
    return decoded


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
