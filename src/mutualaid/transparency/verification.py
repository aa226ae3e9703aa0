"""Offline verification of a proof bundle: what `mutualaid verify` runs, with no network and no
trust in the operator beyond the keys the auditor chooses to trust.

A bundle (JSON) carries a cosigned checkpoint, one leaf with its inclusion proof, and optionally
an older checkpoint with a consistency proof to the newer one::

    {
      "format": "mutualaid-proof-bundle/v1",
      "origin": "mutualaid.example/log",
      "log_key": "<verifier key>",
      "witness_keys": ["<verifier key>", ...],
      "quorum": 2,
      "checkpoint": "<signed checkpoint note>",
      "leaf_index": 5,
      "leaf_data": "<base64 leaf bytes>",
      "inclusion_proof": ["<base64 hash>", ...],
      "older_checkpoint": "<signed checkpoint note>",        (optional)
      "consistency_proof": ["<base64 hash>", ...]           (with older_checkpoint)
    }

Keys inside a bundle only say which keys the *operator* claims; an auditor should pin the log
key, witness keys and quorum obtained elsewhere (`TrustPolicy`) so the bundle cannot bring its
own.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mutualaid.transparency.checkpoints import Checkpoint, open_checkpoint
from mutualaid.transparency.errors import (
    KeyFormatError,
    LeafError,
    TransparencyError,
    VerificationError,
)
from mutualaid.transparency.leaves import Leaf, decode_leaf
from mutualaid.transparency.merkle import hash_leaf, verify_consistency, verify_inclusion
from mutualaid.transparency.notes import VerifierKey, parse_verifier_key
from mutualaid.transparency.witnesses import verify_cosigned

BUNDLE_FORMAT = "mutualaid-proof-bundle/v1"


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """What the auditor trusts, obtained independently of the bundle."""

    origin: str
    log_key: VerifierKey
    witness_keys: tuple[VerifierKey, ...]
    quorum: int


@dataclass(frozen=True, slots=True)
class ProofBundle:
    origin: str
    log_key: str
    witness_keys: tuple[str, ...]
    quorum: int
    checkpoint: str
    leaf_index: int
    leaf_data: bytes
    inclusion_proof: tuple[bytes, ...]
    older_checkpoint: str | None = None
    consistency_proof: tuple[bytes, ...] = ()

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "origin": self.origin,
            "log_key": self.log_key,
            "witness_keys": list(self.witness_keys),
            "quorum": self.quorum,
            "checkpoint": self.checkpoint,
            "leaf_index": self.leaf_index,
            "leaf_data": _b64(self.leaf_data),
            "inclusion_proof": [_b64(h) for h in self.inclusion_proof],
        }
        if self.older_checkpoint is not None:
            body["older_checkpoint"] = self.older_checkpoint
            body["consistency_proof"] = [_b64(h) for h in self.consistency_proof]
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class Check:
    """One step of verification: its name, whether it passed, and what exactly was found."""

    name: str
    passed: bool
    detail: str
    #: What was checked, for readers in other languages: a stable kind and the values it found.
    kind: str = ""
    values: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    """One leaf of a subject bundle as the verifier saw it."""

    leaf_index: int
    leaf_hash: bytes
    leaf: Leaf | None
    included: bool


@dataclass(frozen=True, slots=True)
class VerificationReport:
    checks: tuple[Check, ...]
    checkpoint: Checkpoint | None
    leaf_hash: bytes | None
    #: The leaf's decoded record when it is a canonical mutualaid leaf, for display.
    leaf: Leaf | None
    cosigners: tuple[str, ...]
    #: True when keys came from the bundle itself rather than from a `TrustPolicy`.
    keys_from_bundle: bool
    #: For a subject bundle: every leaf it carries (whether or not its inclusion held).
    entries: tuple[VerifiedEntry, ...] = ()

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def raise_for_failure(self) -> None:
        if not self.ok:
            raise VerificationError("; ".join(f"{c.name}: {c.detail}" for c in self.failures))


def json_document(text: str | bytes, format_name: str, what: str) -> dict[str, Any]:
    """A proof file's JSON object, refused unless its `format` field is `format_name`."""
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VerificationError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise VerificationError(f"{what} is not a JSON object")
    if body.get("format") != format_name:
        raise VerificationError(
            f"{what} format is {body.get('format')!r}, expected {format_name!r}"
        )
    return body


def parse_bundle(text: str | bytes) -> ProofBundle:
    """Parse bundle JSON, with a precise message for the first field that is wrong."""
    body = json_document(text, BUNDLE_FORMAT, "bundle")
    older = _optional_str(body, "older_checkpoint")
    if older is None and "consistency_proof" in body:
        raise VerificationError("bundle has a consistency_proof but no older_checkpoint")
    return ProofBundle(
        origin=_str(body, "origin"),
        log_key=_str(body, "log_key"),
        witness_keys=tuple(_str_list(body, "witness_keys")),
        quorum=_int(body, "quorum"),
        checkpoint=_str(body, "checkpoint"),
        leaf_index=_int(body, "leaf_index"),
        leaf_data=_b64_field(body.get("leaf_data"), "leaf_data"),
        inclusion_proof=tuple(_hash_list(body, "inclusion_proof")),
        older_checkpoint=older,
        consistency_proof=tuple(_hash_list(body, "consistency_proof")) if older else (),
    )


def verify_bundle(bundle: ProofBundle, trust: TrustPolicy | None = None) -> VerificationReport:
    """Check (a) the leaf's inclusion at the checkpoint, (b) consistency with an older
    checkpoint when one is given, (c) the log signature and the cosignature quorum.

    Never raises for a failed check: each outcome is a `Check` in the report, so the auditor sees
    everything that passed and exactly what did not.
    """
    checks: list[Check] = []
    leaf_hash = hash_leaf(bundle.leaf_data)
    leaf = _decode_leaf_or_none(bundle.leaf_data)

    def report(checkpoint: Checkpoint | None, cosigners: Sequence[str] = ()) -> VerificationReport:
        return VerificationReport(
            tuple(checks), checkpoint, leaf_hash, leaf, tuple(cosigners), trust is None
        )

    # (c) signatures first: nothing else means anything unless the checkpoint is authentic.
    authentic = _authentic_checkpoint(bundle, trust, checks)
    if authentic is None:
        return report(None)
    policy, checkpoint, cosigners = authentic

    # (a) inclusion of the leaf.
    try:
        verify_inclusion(
            leaf_hash=leaf_hash,
            index=bundle.leaf_index,
            size=checkpoint.size,
            proof=bundle.inclusion_proof,
            root=checkpoint.root_hash,
        )
    except VerificationError as error:
        checks.append(
            Check(
                "leaf inclusion",
                False,
                error.message,
                "leaf_inclusion",
                {"index": bundle.leaf_index},
            )
        )
    else:
        checks.append(
            Check(
                "leaf inclusion",
                True,
                f"leaf {bundle.leaf_index} (hash {leaf_hash.hex()}) is in the log at size "
                f"{checkpoint.size}",
                "leaf_inclusion",
                {"index": bundle.leaf_index, "hash": leaf_hash.hex(), "size": checkpoint.size},
            )
        )

    # (b) append-only consistency with an older checkpoint the auditor saw before.
    if bundle.older_checkpoint is not None:
        checks.append(_check_consistency(bundle, policy, checkpoint))
    return report(checkpoint, cosigners)


def _check_consistency(
    bundle: ProofBundle | SubjectBundle, policy: TrustPolicy, newer: Checkpoint
) -> Check:
    name = "consistency with older checkpoint"
    assert bundle.older_checkpoint is not None
    try:
        older = open_checkpoint(
            bundle.older_checkpoint, policy.log_key, expected_origin=policy.origin
        ).checkpoint
    except TransparencyError as error:
        return Check(name, False, f"older checkpoint: {error.message}", "consistency")
    try:
        verify_consistency(
            old_size=older.size,
            new_size=newer.size,
            old_root=older.root_hash,
            new_root=newer.root_hash,
            proof=bundle.consistency_proof,
        )
    except VerificationError as error:
        return Check(name, False, error.message, "consistency")
    return Check(
        name,
        True,
        f"the log at size {newer.size} extends the log at size {older.size}",
        "consistency",
        {"old_size": older.size, "new_size": newer.size},
    )


def _policy_from_bundle(bundle: ProofBundle | SubjectBundle) -> TrustPolicy:
    try:
        log_key = parse_verifier_key(bundle.log_key)
        witness_keys = tuple(parse_verifier_key(key) for key in bundle.witness_keys)
    except KeyFormatError as error:
        raise VerificationError(f"bundle key is malformed: {error.message}") from None
    return TrustPolicy(bundle.origin, log_key, witness_keys, bundle.quorum)


def _decode_leaf_or_none(data: bytes) -> Leaf | None:
    try:
        return decode_leaf(data)
    except LeafError:
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _str(body: dict[str, Any], key: str, where: str = "") -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise VerificationError(f"bundle field {where + key!r} must be a string")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _str(body, key)


def _int(body: dict[str, Any], key: str, where: str = "") -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VerificationError(f"bundle field {where + key!r} must be a non-negative integer")
    return value


def _str_list(body: dict[str, Any], key: str, where: str = "") -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise VerificationError(f"bundle field {where + key!r} must be a list of strings")
    return value


def _hash_list(body: dict[str, Any], key: str, where: str = "") -> list[bytes]:
    return [
        _b64_field(item, f"{where}{key}[{position}]")
        for position, item in enumerate(_str_list(body, key, where))
    ]


def _b64_field(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"bundle field {where!r} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"bundle field {where!r} is not valid base64") from None


# --------------------------------------------------------------------------------------------
# Subject bundles: every leaf about one subject (a claim), proven against one checkpoint

SUBJECT_BUNDLE_FORMAT = "mutualaid-subject-bundle/v1"


@dataclass(frozen=True, slots=True)
class BundleEntry:
    leaf_index: int
    leaf_data: bytes
    inclusion_proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SubjectBundle:
    """All the leaves the log holds about one subject (e.g. a claim), each with its inclusion
    proof at one cosigned checkpoint: what a member downloads to check their claim's record.

    JSON: the fields of a proof bundle, except that ``leaf_index``/``leaf_data``/
    ``inclusion_proof`` move into ``"entries": [{...}, ...]``, plus
    ``"subject": {"type": "claim", "ref": "..."}`` and ``"format":
    "mutualaid-subject-bundle/v1"``.
    """

    subject_type: str
    subject_ref: str
    origin: str
    log_key: str
    witness_keys: tuple[str, ...]
    quorum: int
    checkpoint: str
    entries: tuple[BundleEntry, ...]
    older_checkpoint: str | None = None
    consistency_proof: tuple[bytes, ...] = ()

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format": SUBJECT_BUNDLE_FORMAT,
            "subject": {"type": self.subject_type, "ref": self.subject_ref},
            "origin": self.origin,
            "log_key": self.log_key,
            "witness_keys": list(self.witness_keys),
            "quorum": self.quorum,
            "checkpoint": self.checkpoint,
            "entries": [
                {
                    "leaf_index": entry.leaf_index,
                    "leaf_data": _b64(entry.leaf_data),
                    "inclusion_proof": [_b64(h) for h in entry.inclusion_proof],
                }
                for entry in self.entries
            ],
        }
        if self.older_checkpoint is not None:
            body["older_checkpoint"] = self.older_checkpoint
            body["consistency_proof"] = [_b64(h) for h in self.consistency_proof]
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def parse_subject_bundle(text: str | bytes) -> SubjectBundle:
    body = _load_object(text)
    if body.get("format") != SUBJECT_BUNDLE_FORMAT:
        raise VerificationError(
            f"bundle format is {body.get('format')!r}, expected {SUBJECT_BUNDLE_FORMAT!r}"
        )
    subject = body.get("subject")
    if not isinstance(subject, dict):
        raise VerificationError("bundle field 'subject' must be an object with 'type' and 'ref'")
    raw_entries = body.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise VerificationError("bundle field 'entries' must be a non-empty list")
    entries: list[BundleEntry] = []
    for position, raw in enumerate(raw_entries):
        if not isinstance(raw, dict):
            raise VerificationError(f"bundle field 'entries[{position}]' must be an object")
        where = f"entries[{position}]."
        entries.append(
            BundleEntry(
                leaf_index=_int(raw, "leaf_index", where),
                leaf_data=_b64_field(raw.get("leaf_data"), f"{where}leaf_data"),
                inclusion_proof=tuple(_hash_list(raw, "inclusion_proof", where)),
            )
        )
    older = _optional_str(body, "older_checkpoint")
    if older is None and "consistency_proof" in body:
        raise VerificationError("bundle has a consistency_proof but no older_checkpoint")
    return SubjectBundle(
        subject_type=_str(subject, "type", "subject."),
        subject_ref=_str(subject, "ref", "subject."),
        origin=_str(body, "origin"),
        log_key=_str(body, "log_key"),
        witness_keys=tuple(_str_list(body, "witness_keys")),
        quorum=_int(body, "quorum"),
        checkpoint=_str(body, "checkpoint"),
        entries=tuple(entries),
        older_checkpoint=older,
        consistency_proof=tuple(_hash_list(body, "consistency_proof")) if older else (),
    )


def parse_any_bundle(text: str | bytes) -> ProofBundle | SubjectBundle:
    """A proof bundle or a subject bundle, told apart by their ``format``."""
    body = _load_object(text)
    if body.get("format") == SUBJECT_BUNDLE_FORMAT:
        return parse_subject_bundle(text)
    if body.get("format") == BUNDLE_FORMAT:
        return parse_bundle(text)
    raise VerificationError(
        f"bundle format is {body.get('format')!r}, expected {BUNDLE_FORMAT!r} or "
        f"{SUBJECT_BUNDLE_FORMAT!r}"
    )


def verify_subject_bundle(
    bundle: SubjectBundle, trust: TrustPolicy | None = None
) -> VerificationReport:
    """`verify_bundle` for every leaf of a subject bundle: the checkpoint's signatures and quorum
    once, then one inclusion check per leaf (named ``leaf <index> inclusion``), then consistency
    with the older checkpoint when one is given."""
    checks: list[Check] = []
    entries: list[VerifiedEntry] = []

    def report(checkpoint: Checkpoint | None, cosigners: Sequence[str] = ()) -> VerificationReport:
        return VerificationReport(
            tuple(checks), checkpoint, None, None, tuple(cosigners), trust is None, tuple(entries)
        )

    # (c) signatures first: nothing else means anything unless the checkpoint is authentic.
    authentic = _authentic_checkpoint(bundle, trust, checks)
    if authentic is None:
        return report(None)
    policy, checkpoint, cosigners = authentic
    for entry in bundle.entries:
        leaf_hash = hash_leaf(entry.leaf_data)
        name = f"leaf {entry.leaf_index} inclusion"
        try:
            verify_inclusion(
                leaf_hash=leaf_hash,
                index=entry.leaf_index,
                size=checkpoint.size,
                proof=entry.inclusion_proof,
                root=checkpoint.root_hash,
            )
        except VerificationError as error:
            checks.append(
                Check(name, False, error.message, "leaf_inclusion", {"index": entry.leaf_index})
            )
            included = False
        else:
            checks.append(
                Check(
                    name,
                    True,
                    f"leaf {entry.leaf_index} (hash {leaf_hash.hex()}) is in the log at size "
                    f"{checkpoint.size}",
                    "leaf_inclusion",
                    {"index": entry.leaf_index, "hash": leaf_hash.hex(), "size": checkpoint.size},
                )
            )
            included = True
        leaf = _decode_leaf_or_none(entry.leaf_data)
        entries.append(VerifiedEntry(entry.leaf_index, leaf_hash, leaf, included))
    if bundle.older_checkpoint is not None:
        checks.append(_check_consistency(bundle, policy, checkpoint))
    return report(checkpoint, cosigners)


def _load_object(text: str | bytes) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VerificationError(f"bundle is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise VerificationError("bundle is not a JSON object")
    return body


def _authentic_checkpoint(
    bundle: Any, trust: TrustPolicy | None, checks: list[Check]
) -> tuple[TrustPolicy, Checkpoint, list[str]] | None:
    """Check the keys, origin and (co)signatures of a bundle's checkpoint, recording each check.

    Shared by claim-leaf bundles and subject bundles; None when the checkpoint is not authentic.
    """
    try:
        policy = trust or _policy_from_bundle(bundle)
    except TransparencyError as error:
        checks.append(Check("keys", False, error.message, "keys"))
        return None
    if trust is not None and bundle.origin != trust.origin:
        checks.append(
            Check(
                "origin",
                False,
                f"bundle origin '{bundle.origin}' does not match expected origin '{trust.origin}'",
                "origin",
            )
        )
        return None
    try:
        cosigned = verify_cosigned(
            bundle.checkpoint,
            policy.log_key,
            policy.witness_keys,
            policy.quorum,
            expected_origin=policy.origin,
        )
    except TransparencyError as error:
        checks.append(Check("checkpoint signatures", False, error.message, "checkpoint_signatures"))
        return None
    cosigners = [c.name for c in cosigned.cosigners]
    checks.append(
        Check(
            "checkpoint signatures",
            True,
            f"signed by log key '{policy.log_key.label}' and cosigned by {len(cosigners)} of "
            f"{len(policy.witness_keys)} witnesses (quorum {policy.quorum})",
            "checkpoint_signatures",
            {
                "key": policy.log_key.label,
                "cosigners": len(cosigners),
                "witnesses": len(policy.witness_keys),
                "quorum": policy.quorum,
            },
        )
    )
    return policy, cosigned.checkpoint, cosigners
