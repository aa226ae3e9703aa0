"""A member's charge proof is checked link by link against the keys the auditor trusts: every
forgery of issue 14 is refused, each at its own link, and so is any change to any one field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.builders.charge_proofs import APRIL, MARCH, TRUST, forgeries, honest

from mutualaid.transparency.charge_proofs import (
    BLOCK,
    LINKS,
    ChargeProof,
    ChargeProofError,
    parse_charge_proof,
    verify_charge_proof,
)
from mutualaid.transparency.errors import VerificationError


def refused_at(proof: ChargeProof, link: str, words: str) -> None:
    with pytest.raises(ChargeProofError) as refusal:
        verify_charge_proof(parse_charge_proof(proof.to_json()), TRUST)
    assert (refusal.value.link, refusal.value.passed) == (
        link,
        refusal.value.checks[: LINKS.index(link)],
    )
    assert words in refusal.value.detail, refusal.value.detail
    assert [c.name for c in refusal.value.checks] == list(LINKS[: LINKS.index(link) + 1])


def test_an_honest_proof_holds_at_every_link_and_survives_its_file() -> None:
    proof = honest()
    assert parse_charge_proof(proof.to_json()) == proof
    report = verify_charge_proof(proof, TRUST)
    assert [c.name for c in report.checks] == list(LINKS)
    assert all(c.passed for c in report.checks)
    assert report.cosigners == ("w0.example", "w1.example")
    assert report.commitment.fields["period_ref"] == MARCH
    assert "membership 3 was charged 282 fen" in report.checks[-1].detail
    verify_charge_proof(honest(APRIL, 1030, 3), TRUST)


@pytest.mark.parametrize("name", sorted(forgeries()))
def test_each_forgery_is_refused_at_its_own_link_with_its_own_message(name: str) -> None:
    forgery = forgeries()[name]
    refused_at(forgery.proof, forgery.link, forgery.words)


def test_the_forgeries_of_issue_14_are_refused_at_distinct_links() -> None:
    links = {f.link for f in forgeries().values()}
    assert links == set(LINKS)


def test_a_block_that_does_not_encode_is_refused() -> None:
    proof = honest()
    refused_at(
        dataclasses.replace(proof, block=tuple(reversed(proof.block))), BLOCK, "does not encode"
    )
    refused_at(dataclasses.replace(proof, block=((2000, 1),)), BLOCK, "does not encode")
    refused_at(dataclasses.replace(proof, block=()), BLOCK, "lists no charge")


def test_the_file_is_read_strictly() -> None:
    body = json.loads(honest().to_json())
    for broken, words in [
        ({**body, "format": "mutualaid-charge-proof/v2"}, "format"),
        ({**body, "extra": 1}, "unknown field 'extra'"),
        ({**body, "charge_fen": -1}, "'charge_fen' must be an integer"),
        ({**body, "charge_fen": True}, "'charge_fen' must be an integer"),
        ({**body, "block": {**body["block"], "charges": [[1]]}}, "block.charges[0]"),
        ({**body, "charges_tree": {**body["charges_tree"], "root": "AB" * 32}}, "lowercase hex"),
        (
            {**body, "commitment": {**body["commitment"], "inclusion_proof": ["AAB="]}},
            "canonical base64",
        ),
    ]:
        with pytest.raises(VerificationError, match=words.replace("[", r"\[")):
            parse_charge_proof(json.dumps(broken))


def _paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for n, item in enumerate(value) for p in _paths(item, (*path, n))]
    return [path]


HONEST = json.loads(honest().to_json())
PATHS = _paths(HONEST)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(path=st.sampled_from(PATHS), data=st.data())
def test_any_single_field_changed_is_refused(path: tuple[str | int, ...], data: Any) -> None:
    body = json.loads(json.dumps(HONEST))
    holder: Any = body
    for step in path[:-1]:
        holder = holder[step]
    old = holder[path[-1]]
    new: object
    if isinstance(old, int):
        new = data.draw(st.integers(0, 2**64 - 1).filter(lambda n: n != old))
    else:
        assert isinstance(old, str)
        position = data.draw(st.integers(0, len(old) - 1))
        char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != old[position]))
        new = old[:position] + char + old[position + 1 :]
    holder[path[-1]] = new
    with pytest.raises(VerificationError):
        verify_charge_proof(parse_charge_proof(json.dumps(body)), TRUST)
