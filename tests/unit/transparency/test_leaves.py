"""Canonical leaf records and salted commitments."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.transparency.errors import LeafError
from mutualaid.transparency.leaves import (
    LEAF_SCHEMAS,
    MEMBERSHIP_BATCH_SIZE,
    MEMBERSHIP_LEAF_EVENTS,
    MEMBERSHIP_LEAF_STATES,
    FieldKind,
    FieldSpec,
    LeafSchema,
    canonical_leaf,
    commit,
    decode_leaf,
    membership_event_leaf,
    membership_events_leaves,
    membership_ids,
)
from mutualaid.transparency.tiles import MAX_ENTRY_SIZE

DOC_HASH = hashlib.sha256(b"diagnosis certificate scan").hexdigest()
EVIDENCE = {
    "claim_ref": "claim-2019-000123",
    "sha256": DOC_HASH,
    "size": 183_204,
    "media_type": "image/jpeg",
}
SALT = bytes(range(16))


def test_evidence_leaf_is_sorted_compact_json_with_version_and_type() -> None:
    assert (
        canonical_leaf("evidence", EVIDENCE)
        == (
            '{"claim_ref":"claim-2019-000123","media_type":"image/jpeg",'
            f'"sha256":"{DOC_HASH}","size":183204,"type":"evidence","v":1}}'
        ).encode()
    )


def test_field_order_given_does_not_change_the_bytes() -> None:
    reordered = dict(reversed(list(EVIDENCE.items())))
    assert canonical_leaf("evidence", reordered) == canonical_leaf("evidence", EVIDENCE)


def test_every_registered_type_accepts_a_complete_record() -> None:
    examples: dict[str, dict[str, Any]] = {
        "claim_decision": {
            "claim_ref": "c-1", "decision": "approved", "aid_fen": 30_000_000,
            "decided_at": 1_560_000_000, "stage": "re_review",
        },
        "jury_result": {
            "claim_ref": "c-1", "jury_ref": "j-9", "votes_for": 180_000, "votes_against": 70_000,
            "outcome": "approved", "closed_at": 1_560_100_000,
        },
        "period_commitment": {
            "plan_ref": "main", "period_ref": "2019-12b", "charges_root": DOC_HASH,
            "charges_count": 3, "total_charged_fen": 300, "aid_fen": 250, "fee_fen": 20,
            "surplus_in_fen": 0, "surplus_out_fen": 30,
        },
        "plan_version": {
            "plan_ref": "main", "version": 2, "rules_sha256": DOC_HASH,
            "effective_on": "2019-01-01",
        },
        "membership_event": {
            "plan_ref": "main", "membership_ref": "m-1024", "event": "join",
            "state": "waiting", "occurred_at": 1_546_300_800,
        },
        "membership_events": {
            "plan_ref": "main", "membership_ids": "7,1024,1025", "event": "age_out",
            "state": "ended", "occurred_at": 1_546_300_800,
        },
        "claim_event": {
            "claim_ref": "C2603-1A2B3C4D", "event": "publish", "state": "in_publicity",
            "at": 1_560_000_000, "plan_ref": "xhb-main", "aid_fen": 30_000_000,
        },
        "objection": {
            "claim_ref": "C2603-1A2B3C4D", "objection_ref": "O17", "event": "filed",
            "at": 1_560_000_000, "evidence_sha256": DOC_HASH,
        },
        "plan_event": {
            "plan_ref": "xhb-main", "event": "cover_ended", "at": 1_643_299_200,
            "end_on": "2022-01-28", "run_off_until_on": "2022-07-27", "memberships_ended": 75,
            "refunds": 3, "refunded_fen": 1_234, "written_off_fen": 0,
        },
        "log_key": {
            "old_key": "log.example+4813722f+AST53MX/noCp2EJggFc9GrADr1g9dCQkK88yZk+GyY9y",
            "new_key": "log.example+0a1b2c3d+AST53MX/noCp2EJggFc9GrADr1g9dCQkK88yZk+GyY9z",
            "signature": "A" * 86 + "==", "at": 1_800_000_000,
        },
    }  # fmt: skip
    assert set(examples) | {"evidence"} == set(LEAF_SCHEMAS)
    for leaf_type, fields in examples.items():
        leaf = decode_leaf(canonical_leaf(leaf_type, fields))
        assert (leaf.type, dict(leaf.fields)) == (leaf_type, fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": 1.5}, "'size' must be an integer, got float"),
        ({"size": 2.0}, "'size' must be an integer, got float"),
        ({"size": True}, "'size' must be an integer, got bool"),
        ({"size": -1}, "'size' is -1, outside 0..9007199254740991"),
        ({"size": 2**53}, "outside 0..9007199254740991"),
        ({"sha256": DOC_HASH.upper()}, "'sha256' value .* is not a valid sha256_hex"),
        ({"sha256": DOC_HASH[:-1]}, "is not a valid sha256_hex"),
        ({"media_type": "JPEG"}, "'media_type' value 'JPEG' is not a valid media_type"),
        ({"claim_ref": "张*华"}, "'claim_ref' value '张\\*华' is not a valid ref"),
        ({"claim_ref": 7}, "'claim_ref' must be a string, got int"),
        ({"patient_name": "张三"}, "unknown field\\(s\\) patient_name"),
        ({"v": 2}, "field 'v' is reserved"),
    ],
)
def test_invalid_evidence_fields_are_refused_with_the_reason(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(LeafError, match=message):
        canonical_leaf("evidence", {**EVIDENCE, **change})


def test_missing_fields_and_unknown_types_are_refused() -> None:
    with pytest.raises(LeafError, match="evidence leaf is missing field\\(s\\) sha256, size"):
        canonical_leaf("evidence", {"claim_ref": "c", "media_type": "image/png"})
    with pytest.raises(LeafError, match="unknown leaf type 'gossip'"):
        canonical_leaf("gossip", {})


def test_closed_vocabularies_and_dates_are_enforced() -> None:
    decision = {"claim_ref": "c", "decision": "maybe", "aid_fen": 0, "decided_at": 0}
    with pytest.raises(LeafError, match="'decision' value 'maybe' is not one of approved, rej"):
        canonical_leaf("claim_decision", decision)
    plan = {"plan_ref": "main", "version": 1, "rules_sha256": DOC_HASH, "effective_on": ""}
    with pytest.raises(LeafError, match="is not a valid date"):
        canonical_leaf("plan_version", {**plan, "effective_on": "2019-1-1"})
    with pytest.raises(LeafError, match="'2019-02-30' is not a calendar date"):
        canonical_leaf("plan_version", {**plan, "effective_on": "2019-02-30"})
    with pytest.raises(LeafError, match=r"'version' is 0, outside 1\.\."):
        canonical_leaf("plan_version", {**plan, "version": 0, "effective_on": "2019-02-28"})


def test_new_leaf_types_are_added_with_an_extended_registry() -> None:
    schemas = {**LEAF_SCHEMAS, "notice": LeafSchema({"period_ref": FieldSpec(FieldKind.REF)})}
    data = canonical_leaf("notice", {"period_ref": "2019-12b"}, schemas=schemas)
    assert decode_leaf(data, schemas=schemas).fields == {"period_ref": "2019-12b"}
    with pytest.raises(LeafError, match="unknown leaf type 'notice'"):
        decode_leaf(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"claim_ref": "c"}', "leaf version is None, expected 1"),
        (b'{"claim_ref":"c","type":"evidence","v":1}', "missing field\\(s\\) media_type"),
        (b'{"size":1.0,"type":"evidence","v":1}', "is not an integer"),
        (b'{"type":"evidence","v":2}', "leaf version is 2, expected 1"),
        (b'{"type":"evidence","v":true}', "leaf version is True"),
        (b"[1]", "not a JSON object"),
        (b"\xff", "not UTF-8 JSON"),
        (b'{"v":1}', "no string 'type'"),
    ],
)
def test_decoding_refuses_anything_but_a_canonical_leaf(data: bytes, message: str) -> None:
    with pytest.raises(LeafError, match=message):
        decode_leaf(data)


def test_decoding_refuses_the_same_record_written_another_way() -> None:
    canonical = canonical_leaf("evidence", EVIDENCE)
    spaced = canonical.replace(b",", b", ")
    escaped = canonical.replace(b"claim-", b"claim\\u002d")
    for variant in (spaced, escaped):
        with pytest.raises(LeafError, match="not in canonical form"):
            decode_leaf(variant)


def test_commitment_hides_the_value_behind_a_domain_separated_salted_hash() -> None:
    value = "110101199001011234"
    digest = commit(SALT, value)
    assert len(digest) == 64 and digest == commit(SALT, value.encode())
    assert digest != hashlib.sha256(SALT + value.encode()).hexdigest()
    assert digest != commit(bytes(16), value)
    assert (
        digest
        == hashlib.sha256(
            b"mutualaid/commitment/v1\n" + (16).to_bytes(4, "big") + SALT + value.encode()
        ).hexdigest()
    )
    # The length prefix keeps (salt, value) pairs from colliding across the boundary.
    assert commit(SALT + b"1", "10101") != commit(SALT, "110101")


def test_commitment_refuses_a_short_salt() -> None:
    with pytest.raises(LeafError, match="salt is 8 bytes, expected at least 16"):
        commit(bytes(8), "x")


@settings(max_examples=100, deadline=None)
@given(
    claim_ref=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}", fullmatch=True),
    size=st.integers(0, 2**53 - 1),
    digest=st.binary(min_size=32, max_size=32),
)
def test_canonical_evidence_leaves_decode_to_the_same_fields(
    claim_ref: str, size: int, digest: bytes
) -> None:
    fields = {"claim_ref": claim_ref, "sha256": digest.hex(), "size": size, "media_type": "a/b"}
    assert dict(decode_leaf(canonical_leaf("evidence", fields)).fields) == fields


@settings(max_examples=200, deadline=None)
@given(
    plan_ref=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,40}", fullmatch=True),
    membership_id=st.integers(1, 2**53 - 1),
    event=st.sampled_from(MEMBERSHIP_LEAF_EVENTS),
    state=st.sampled_from(MEMBERSHIP_LEAF_STATES),
    occurred_at=st.integers(0, 2**40),
)
def test_the_fast_membership_leaf_is_the_canonical_one(
    plan_ref: str, membership_id: int, event: str, state: str, occurred_at: int
) -> None:
    fields = {
        "plan_ref": plan_ref,
        "membership_ref": f"m-{membership_id}",
        "event": event,
        "state": state,
        "occurred_at": occurred_at,
    }
    fast = membership_event_leaf(plan_ref, membership_id, event, state, occurred_at)
    assert fast == canonical_leaf("membership_event", fields)
    assert dict(decode_leaf(fast).fields) == fields


def test_a_membership_leaf_names_no_person() -> None:
    with pytest.raises(LeafError, match="unknown field"):
        canonical_leaf(
            "membership_event",
            {
                "plan_ref": "main",
                "membership_ref": "m-1",
                "event": "join",
                "state": "waiting",
                "occurred_at": 0,
                "member_commitment": commit(SALT, "110101199001011234"),
            },
        )


def _batch(ids: str) -> dict[str, object]:
    return {
        "plan_ref": "xhb-main",
        "membership_ids": ids,
        "event": "waiting_period_over",
        "state": "covered",
        "occurred_at": 1_772_294_400,
    }


def test_a_batch_leaf_lists_its_memberships_once_ascending() -> None:
    data = canonical_leaf("membership_events", _batch("3,17,204"))
    assert data == (
        b'{"event":"waiting_period_over","membership_ids":"3,17,204","occurred_at":1772294400,'
        b'"plan_ref":"xhb-main","state":"covered","type":"membership_events","v":1}'
    )
    assert membership_ids(str(decode_leaf(data).fields["membership_ids"])) == (3, 17, 204)


@pytest.mark.parametrize(
    ("ids", "why"),
    [
        ("17,3", "strictly ascending"),
        ("3,3", "strictly ascending"),
        ("03,4", "not a valid id_list"),
        ("3, 4", "not a valid id_list"),
        ("", "not a valid id_list"),
        ("0", "not a valid id_list"),
        ("3,", "not a valid id_list"),
        (str(2**53), "above"),
        (",".join(map(str, range(1, MEMBERSHIP_BATCH_SIZE + 2))), "more than"),
    ],
)
def test_a_batch_with_ids_out_of_order_repeated_or_spelled_otherwise_is_refused(
    ids: str, why: str
) -> None:
    """One list of memberships has one encoding: a second spelling would be a second leaf
    hash for the same change."""
    with pytest.raises(LeafError, match=why):
        canonical_leaf("membership_events", _batch(ids))


@settings(max_examples=50, deadline=None)
@given(
    ids=st.sets(st.integers(1, 2**40), min_size=1, max_size=300),
    batch_size=st.integers(1, 50),
)
def test_batches_cover_each_membership_once_in_order(ids: set[int], batch_size: int) -> None:
    leaves = membership_events_leaves(
        "xhb-main", "age_out", "ended", 0, list(ids), batch_size=batch_size
    )
    listed = [membership_ids(str(decode_leaf(data).fields["membership_ids"])) for data in leaves]
    assert [i for chunk in listed for i in chunk] == sorted(ids)
    assert all(len(chunk) == batch_size for chunk in listed[:-1])
    assert 1 <= len(listed[-1]) <= batch_size


def test_a_full_batch_of_large_ids_fits_an_entry_bundle() -> None:
    ids = range(10**12 - MEMBERSHIP_BATCH_SIZE, 10**12)
    [data] = membership_events_leaves("xhb-main", "waiting_period_over", "covered", 0, ids)
    assert len(data) <= MAX_ENTRY_SIZE
