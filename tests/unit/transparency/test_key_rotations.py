"""Issue 16: a chain of log key announcements is followed from the original key, and broken by
any announcement the trusted key did not sign."""

from __future__ import annotations

import pytest

from mutualaid.transparency.errors import KeyFormatError, VerificationError
from mutualaid.transparency.key_rotations import follow_key_chain, key_announcement_leaf
from mutualaid.transparency.notes import SignerKey, generate_signer_key

ORIGIN = "log.example"
FIRST, SECOND, THIRD = (generate_signer_key(ORIGIN, seed=bytes([n]) * 32) for n in (1, 2, 3))
OTHER_LEAF = b'{"type":"plan_event","v":1}'


def test_two_rotations_lead_from_the_original_key_to_the_third() -> None:
    entries = [
        OTHER_LEAF,
        key_announcement_leaf(FIRST, SECOND.verifier(), 100),
        OTHER_LEAF,
        key_announcement_leaf(SECOND, THIRD.verifier(), 200),
    ]
    trusted, changes = follow_key_chain(entries, FIRST.verifier())
    assert trusted == THIRD.verifier()
    assert [(c.leaf_index, c.new_key) for c in changes] == [
        (1, SECOND.verifier()),
        (3, THIRD.verifier()),
    ]


def test_an_announcement_skipping_a_link_of_the_chain_is_refused() -> None:
    """The second key's holder cannot be skipped: the third is announced by the first again."""
    entries = [
        key_announcement_leaf(FIRST, SECOND.verifier(), 100),
        key_announcement_leaf(FIRST, THIRD.verifier(), 200),
    ]
    with pytest.raises(VerificationError, match="the key trusted there is"):
        follow_key_chain(entries, FIRST.verifier())


def test_without_announcements_the_original_key_stays_trusted() -> None:
    assert follow_key_chain([OTHER_LEAF], FIRST.verifier()) == (FIRST.verifier(), ())


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (FIRST, "the key in use"),
        (generate_signer_key("other.example"), "checkpoint's origin is its key's name"),
    ],
)
def test_an_announcement_of_the_same_key_or_another_logs_key_is_not_made(
    new: SignerKey, message: str
) -> None:
    with pytest.raises(KeyFormatError, match=message):
        key_announcement_leaf(FIRST, new.verifier(), 100)
