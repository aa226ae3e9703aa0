"""Canonical, versioned leaf records: the bytes that go into the transparency log.

A leaf is one JSON object with sorted keys, no whitespace, UTF-8 (``ensure_ascii=False``), holding
``"v": 1``, a ``"type"`` and that type's fields. Only strings and integers appear, never floats,
so every implementation re-encodes a leaf to the same bytes (and hence the same leaf hash).

Leaves are public forever, so they hold *no personal data*: people appear only as salted
commitments (`commit`), documents only as their SHA-256, claims and plans as opaque references.
Each type's schema lists its fields exactly; unknown fields are refused so that nothing slips in.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType
from typing import Any

from mutualaid.transparency.errors import LeafError

LEAF_VERSION = 1
#: Integers above 2**53 - 1 lose precision in JavaScript verifiers; no leaf needs them.
MAX_LEAF_INT = 2**53 - 1
MIN_SALT_BYTES = 16
COMMITMENT_DOMAIN = b"mutualaid/commitment/v1\n"


class FieldKind(StrEnum):
    SHA256_HEX = "sha256_hex"  # 64 lowercase hex digits (a document hash, a Merkle root)
    COUNT = "count"  # integer in 0..2**53-1 (sizes, votes, amounts in fen)
    POSITIVE = "positive"  # integer in 1..2**53-1 (versions)
    UNIX_SECONDS = "unix_seconds"  # integer POSIX time in seconds
    REF = "ref"  # opaque public identifier, e.g. "claim-2019-000123"
    TOKEN = "token"  # lowercase word from a fixed vocabulary, e.g. "approved"
    MEDIA_TYPE = "media_type"  # e.g. "image/jpeg"
    DATE = "date"  # calendar date "YYYY-MM-DD"
    #: Ascending positive integers in decimal, comma-separated, no spaces ("3,17,204"): the
    #: memberships of a `membership_events` batch. Strictly ascending, so there is one encoding.
    ID_LIST = "id_list"
    VERIFIER_KEY = "verifier_key"  # a signed-note verifier key "name+keyid+base64"
    SIGNATURE = "signature"  # a base64 Ed25519 signature (64 bytes)


_PATTERNS: Mapping[FieldKind, re.Pattern[str]] = {
    FieldKind.SHA256_HEX: re.compile(r"[0-9a-f]{64}"),
    FieldKind.REF: re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}"),
    FieldKind.TOKEN: re.compile(r"[a-z][a-z0-9_]{0,63}"),
    FieldKind.MEDIA_TYPE: re.compile(
        r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
    ),
    FieldKind.DATE: re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    FieldKind.ID_LIST: re.compile(r"[1-9][0-9]{0,15}(?:,[1-9][0-9]{0,15})*"),
    FieldKind.VERIFIER_KEY: re.compile(r"[!-*,-~]{1,200}\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}"),
    FieldKind.SIGNATURE: re.compile(r"[A-Za-z0-9+/]{86}=="),
}
_INTEGER_KINDS = (FieldKind.COUNT, FieldKind.POSITIVE, FieldKind.UNIX_SECONDS)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: FieldKind
    #: When set, the only values allowed (a closed vocabulary for TOKEN fields).
    choices: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class LeafSchema:
    required: Mapping[str, FieldSpec]
    optional: Mapping[str, FieldSpec] = field(default_factory=dict)


def _spec(kind: FieldKind, *choices: str) -> FieldSpec:
    return FieldSpec(kind, frozenset(choices) if choices else None)


#: The `event` of a membership_event leaf: joining, then the membership state machine's events
#: (domain/memberships.py), and the end of cover when a plan winds down.
MEMBERSHIP_LEAF_EVENTS = (
    "join",
    "waiting_period_over",
    "suspend",
    "reinstate",
    "leave",
    "remove",
    "age_out",
    "severe_payout",
    "cover_ended",
    "waiting_illness",
    "move_out",
    "move_in",
)
#: The `state` after the event (domain/memberships.py MembershipState).
MEMBERSHIP_LEAF_STATES = ("waiting", "covered", "suspended", "left", "ended")
#: The most memberships one `membership_events` leaf lists. With ids below 10**12 a full batch
#: is under 53,000 bytes, within an entry bundle's 65,535-byte limit (tiles.MAX_ENTRY_SIZE).
MEMBERSHIP_BATCH_SIZE = 4000

_REF = _spec(FieldKind.REF)
_HASH = _spec(FieldKind.SHA256_HEX)
_COUNT = _spec(FieldKind.COUNT)
_TIME = _spec(FieldKind.UNIX_SECONDS)

#: The leaf types of log version 1. To add a type, build a new mapping
#: ``{**LEAF_SCHEMAS, "new_type": LeafSchema(...)}`` and pass it as `schemas`; never change the
#: meaning of an existing type (old leaves must keep verifying) — add a new one instead.
LEAF_SCHEMAS: Mapping[str, LeafSchema] = MappingProxyType(
    {
        "evidence": LeafSchema(
            required={
                "claim_ref": _REF,
                "sha256": _HASH,
                "size": _COUNT,
                "media_type": _spec(FieldKind.MEDIA_TYPE),
            },
            optional={"submitted_at": _TIME},
        ),
        "claim_decision": LeafSchema(
            required={
                "claim_ref": _REF,
                "decision": _spec(FieldKind.TOKEN, "approved", "rejected"),
                "aid_fen": _COUNT,
                "decided_at": _TIME,
            },
            optional={
                "stage": _spec(FieldKind.TOKEN),
                "reason_code": _spec(FieldKind.TOKEN),
                "evidence_root": _HASH,
                # Issue 14: which plan's members share the aid, and whether they do at all.
                "plan_ref": _REF,
                "funding": _spec(FieldKind.TOKEN, "shared", "sponsored"),
            },
        ),
        "jury_result": LeafSchema(
            required={
                "claim_ref": _REF,
                "jury_ref": _REF,
                "votes_for": _COUNT,
                "votes_against": _COUNT,
                "outcome": _spec(FieldKind.TOKEN, "approved", "rejected", "no_quorum"),
                "closed_at": _TIME,
            },
        ),
        "period_commitment": LeafSchema(
            required={
                "plan_ref": _REF,
                "period_ref": _REF,
                "charges_root": _HASH,
                "charges_count": _COUNT,
                "total_charged_fen": _COUNT,
                "aid_fen": _COUNT,
                "fee_fen": _COUNT,
                "surplus_in_fen": _COUNT,
                "surplus_out_fen": _COUNT,
            },
            # Added with period closing (issue 5); optional, so earlier leaves still verify.
            optional={
                "sponsor_fen": _COUNT,
                "prorated_fen": _COUNT,
                "share_fen": _COUNT,
                "member_count": _COUNT,
                "case_count": _COUNT,
                "charges_leaves": _COUNT,
                "lock_at": _TIME,
            },
        ),
        "plan_version": LeafSchema(
            required={
                "plan_ref": _REF,
                "version": _spec(FieldKind.POSITIVE),
                "rules_sha256": _HASH,
                "effective_on": _spec(FieldKind.DATE),
            },
        ),
        "claim_event": LeafSchema(
            required={
                "claim_ref": _REF,
                "event": _spec(FieldKind.TOKEN),
                "state": _spec(FieldKind.TOKEN),
                "at": _TIME,
            },
            optional={
                "reason_code": _spec(FieldKind.TOKEN),
                "plan_ref": _REF,
                "illness_code": _REF,
                "aid_fen": _COUNT,
            },
        ),
        "objection": LeafSchema(
            required={
                "claim_ref": _REF,
                "objection_ref": _REF,
                "event": _spec(FieldKind.TOKEN, "filed", "upheld", "dismissed"),
                "at": _TIME,
            },
            optional={"evidence_sha256": _HASH},
        ),
        # Added with wind-down (issue 8): the end of a plan is public, and its figures too.
        "plan_event": LeafSchema(
            required={
                "plan_ref": _REF,
                "event": _spec(FieldKind.TOKEN, "wind_down_announced", "cover_ended"),
                "at": _TIME,
            },
            optional={
                "end_on": _spec(FieldKind.DATE),
                "run_off_until_on": _spec(FieldKind.DATE),
                "rule": _spec(FieldKind.TOKEN),
                "memberships_ended": _COUNT,
                "refunds": _COUNT,
                "refunded_fen": _COUNT,
                "written_off_fen": _COUNT,
            },
        ),
        # Issue 14: every join and change of a membership's state; the membership appears only
        # as an opaque ref ("m-<id>"), never as a person. (A `member_commitment` form was
        # documented before but never written.)
        "membership_event": LeafSchema(
            required={
                "plan_ref": _REF,
                "membership_ref": _REF,
                "event": _spec(FieldKind.TOKEN, *MEMBERSHIP_LEAF_EVENTS),
                "state": _spec(FieldKind.TOKEN, *MEMBERSHIP_LEAF_STATES),
                "occurred_at": _TIME,
            },
        ),
        # Issue 14, bulk paths (the daily job, the end of cover): the same event, taking effect
        # at the same instant, for up to MEMBERSHIP_BATCH_SIZE memberships of a plan, listed by
        # id ascending. Equivalent to one membership_event leaf per id ("m-<id>").
        "membership_events": LeafSchema(
            required={
                "plan_ref": _REF,
                "membership_ids": _spec(FieldKind.ID_LIST),
                "event": _spec(FieldKind.TOKEN, *MEMBERSHIP_LEAF_EVENTS),
                "state": _spec(FieldKind.TOKEN, *MEMBERSHIP_LEAF_STATES),
                "occurred_at": _TIME,
            },
        ),
        # Issue 16: a new log signing key, announced with a signature by the key it replaces
        # (transparency/key_rotations.py); checkpoints after it are signed by the new key.
        "log_key": LeafSchema(
            required={
                "old_key": _spec(FieldKind.VERIFIER_KEY),
                "new_key": _spec(FieldKind.VERIFIER_KEY),
                "signature": _spec(FieldKind.SIGNATURE),
                "at": _TIME,
            },
        ),
    }
)

LeafValue = str | int


@dataclass(frozen=True, slots=True)
class Leaf:
    type: str
    fields: Mapping[str, LeafValue]


def canonical_leaf(
    leaf_type: str,
    fields: Mapping[str, Any],
    *,
    schemas: Mapping[str, LeafSchema] = LEAF_SCHEMAS,
) -> bytes:
    """Validate `fields` against `leaf_type`'s schema and encode the canonical leaf bytes."""
    schema = schemas.get(leaf_type)
    if schema is None:
        raise LeafError(f"unknown leaf type {leaf_type!r}; known: {', '.join(sorted(schemas))}")
    for reserved in ("v", "type"):
        if reserved in fields:
            raise LeafError(f"{leaf_type} leaf field {reserved!r} is reserved")
    missing = sorted(set(schema.required) - set(fields))
    if missing:
        raise LeafError(f"{leaf_type} leaf is missing field(s) {', '.join(missing)}")
    unknown = sorted(set(fields) - set(schema.required) - set(schema.optional))
    if unknown:
        raise LeafError(f"{leaf_type} leaf has unknown field(s) {', '.join(unknown)}")
    for name, value in fields.items():
        spec = schema.required.get(name) or schema.optional[name]
        _check_value(leaf_type, name, value, spec)
    record: dict[str, LeafValue] = {"v": LEAF_VERSION, "type": leaf_type, **fields}
    return _encode(record)


def decode_leaf(data: bytes, *, schemas: Mapping[str, LeafSchema] = LEAF_SCHEMAS) -> Leaf:
    """Parse leaf bytes, insisting they are exactly the canonical encoding of a valid leaf."""
    try:
        text = data.decode("utf-8")
        record = json.loads(text, parse_float=_refuse_float, parse_constant=_refuse_float)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise LeafError(f"leaf is not UTF-8 JSON of integers and strings: {error}") from None
    if not isinstance(record, dict):
        raise LeafError("leaf is not a JSON object")
    version = record.pop("v", None)
    leaf_type = record.pop("type", None)
    if version != LEAF_VERSION or isinstance(version, bool):
        raise LeafError(f"leaf version is {version!r}, expected {LEAF_VERSION}")
    if not isinstance(leaf_type, str):
        raise LeafError("leaf has no string 'type'")
    canonical = canonical_leaf(leaf_type, record, schemas=schemas)
    if canonical != data:
        raise LeafError("leaf bytes are not in canonical form (key order, spacing or escapes)")
    return Leaf(leaf_type, MappingProxyType(record))


def membership_ref(membership_id: int) -> str:
    """The public, opaque name of a membership on the log."""
    return f"m-{membership_id}"


def membership_event_leaf(
    plan_ref: str, membership_id: int, event: str, state: str, occurred_at: int
) -> bytes:
    """A membership_event leaf's canonical bytes, without the schema walk: bulk paths make
    millions. Equal to `canonical_leaf("membership_event", …)` (a test checks it); `plan_ref`,
    `event` and `state` must already be valid (the callers pass constants and a plan code)."""
    return (
        f'{{"event":"{event}","membership_ref":"m-{membership_id}",'
        f'"occurred_at":{occurred_at},"plan_ref":"{plan_ref}","state":"{state}",'
        '"type":"membership_event","v":1}'
    ).encode()


def membership_ids(listed: str) -> tuple[int, ...]:
    """The ids of a `membership_events` leaf's `membership_ids` (already checked by the schema)."""
    return tuple(int(part) for part in listed.split(","))


def membership_events_leaves(
    plan_ref: str,
    event: str,
    state: str,
    occurred_at: int,
    ids: Sequence[int],
    *,
    batch_size: int = MEMBERSHIP_BATCH_SIZE,
) -> list[bytes]:
    """The `membership_events` leaves of one event, effective at one instant, for `ids` (any
    order): ascending, `batch_size` (at most MEMBERSHIP_BATCH_SIZE) to a leaf. Checked against
    the schema, so equal to `canonical_leaf("membership_events", …)`; the database builds the
    same bytes (tests compare)."""
    ordered = sorted(ids)
    return [
        canonical_leaf(
            "membership_events",
            {
                "plan_ref": plan_ref,
                "membership_ids": ",".join(map(str, ordered[start : start + batch_size])),
                "event": event,
                "state": state,
                "occurred_at": occurred_at,
            },
        )
        for start in range(0, len(ordered), batch_size)
    ]


def commit(salt: bytes, value: str | bytes) -> str:
    """A hiding commitment to a personal value: hex SHA-256 over a domain-separated encoding.

    The salt (secret, random, at least 16 bytes, kept by the operator and given to the person)
    stops anyone from confirming a guessed identity number against a public leaf; the length
    prefix keeps salt and value from running into each other.
    """
    if len(salt) < MIN_SALT_BYTES:
        raise LeafError(f"commitment salt is {len(salt)} bytes, expected at least {MIN_SALT_BYTES}")
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return hashlib.sha256(COMMITMENT_DOMAIN + len(salt).to_bytes(4, "big") + salt + raw).hexdigest()


def _check_value(leaf_type: str, name: str, value: object, spec: FieldSpec) -> None:
    where = f"{leaf_type} leaf field {name!r}"
    if spec.kind in _INTEGER_KINDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LeafError(f"{where} must be an integer, got {type(value).__name__}")
        low = 1 if spec.kind is FieldKind.POSITIVE else 0
        if not low <= value <= MAX_LEAF_INT:
            raise LeafError(f"{where} is {value}, outside {low}..{MAX_LEAF_INT}")
        return
    if not isinstance(value, str):
        raise LeafError(f"{where} must be a string, got {type(value).__name__}")
    if not _PATTERNS[spec.kind].fullmatch(value):
        raise LeafError(f"{where} value {value!r} is not a valid {spec.kind.value}")
    if spec.kind is FieldKind.ID_LIST:
        ids = membership_ids(value)
        if any(a >= b for a, b in pairwise(ids)):
            raise LeafError(f"{where} is not strictly ascending")
        if ids[-1] > MAX_LEAF_INT:
            raise LeafError(f"{where} holds {ids[-1]}, above {MAX_LEAF_INT}")
        if len(ids) > MEMBERSHIP_BATCH_SIZE:
            raise LeafError(f"{where} lists {len(ids)} ids, more than {MEMBERSHIP_BATCH_SIZE}")
    if spec.kind is FieldKind.DATE:
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            raise LeafError(f"{where} value {value!r} is not a calendar date") from None
    if spec.choices is not None and value not in spec.choices:
        raise LeafError(f"{where} value {value!r} is not one of {', '.join(sorted(spec.choices))}")


def _encode(record: Mapping[str, LeafValue]) -> bytes:
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_float(text: str) -> object:
    raise ValueError(f"number {text} is not an integer")
