"""`written`: the one check of what people write about a claim (notes, reasons, findings)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from tests.refusals import refused

from mutualaid.domain.claims import MAX_NOTE_CHARS, MIN_OBJECTION_CHARS, written


@given(st.text(max_size=MAX_NOTE_CHARS + 20))
def test_a_text_is_taken_stripped_exactly_when_its_length_is_within_the_limits(text: str) -> None:
    stripped = text.strip()
    if MIN_OBJECTION_CHARS <= len(stripped) <= MAX_NOTE_CHARS:
        assert written(text, "reason_required", "m", "reason", min_chars=10) == stripped
    else:
        with refused("reason_required"):
            written(text, "reason_required", "m", "reason", min_chars=10)


def test_blank_and_overlong_notes_are_refused_with_the_callers_code() -> None:
    with refused("note_required"):
        written(" \n ", "note_required", "say why", "note")
    with refused("note_required"):
        written("x" * (MAX_NOTE_CHARS + 1), "note_required", "say why", "note")
    assert written("  x  ", "note_required", "say why", "note") == "x"
