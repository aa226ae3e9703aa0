"""C2SP signed notes, checked against golang.org/x/mod/sumdb/note's published test vectors.

Source of the PeterNeumann / EnochRoot keys and signatures: golang.org/x/mod sumdb/note/note.go
(package documentation) and note_test.go (TestNewVerifier, TestNewSigner, TestSign, TestOpen).
"""

from __future__ import annotations

import base64

import pytest

from mutualaid.transparency.errors import KeyFormatError, VerificationError
from mutualaid.transparency.notes import (
    SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
    NoteSignature,
    add_signatures,
    generate_signer_key,
    key_id,
    open_note,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)

PETER_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VERIFIER = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb"
    "6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33W"
    "Wd1RvMc+QQ=\n"
)

peter = parse_verifier_key(PETER_VERIFIER)
enoch = parse_verifier_key(ENOCH_VERIFIER)


def test_reference_signer_key_reproduces_the_published_signed_note() -> None:
    signer = parse_signer_key(PETER_SIGNER)
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert signer.verifier() == peter
    assert signer.verifier().encode() == PETER_VERIFIER
    assert signer.encode() == PETER_SIGNER
    # Ed25519 is deterministic, so the signature must be byte-for-byte the Go one.
    assert sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIG


def test_key_id_is_the_first_four_bytes_of_sha256_over_name_type_and_key() -> None:
    assert key_id("PeterNeumann", SIGNATURE_TYPE_ED25519, peter.public_key).hex() == "c74f20a3"
    assert key_id("EnochRoot", SIGNATURE_TYPE_ED25519, enoch.public_key).hex() == "af0cfe78"
    # The type byte is part of the hash: the same key as a witness has another ID.
    assert key_id("PeterNeumann", SIGNATURE_TYPE_COSIGNATURE_V1, peter.public_key) != peter.key_id


def test_open_verifies_the_known_key_and_keeps_the_unknown_one_aside() -> None:
    opened = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert opened.text == TEXT
    assert [s.label for s in opened.verified] == ["PeterNeumann+c74f20a3"]
    assert [s.label for s in opened.unknown] == ["EnochRoot+af0cfe78"]


def test_open_verifies_every_known_key() -> None:
    opened = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert [s.name for s in opened.verified] == ["PeterNeumann", "EnochRoot"]
    assert opened.unknown == ()


def test_note_without_a_signature_by_a_known_key_is_rejected() -> None:
    with pytest.raises(VerificationError) as caught:
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert caught.value.message == (
        "note has no signature by a known key (signed by 'PeterNeumann+c74f20a3', "
        "'EnochRoot+af0cfe78'; known keys: none)"
    )


def test_a_known_key_with_a_bad_signature_rejects_the_whole_note() -> None:
    forged = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(VerificationError, match="signature by key 'PeterNeumann\\+c74f20a3' is"):
        open_note(forged, [peter])


def test_a_signature_over_altered_text_is_rejected() -> None:
    altered = TEXT.replace("problem is", "problem was") + "\n" + PETER_SIG
    with pytest.raises(VerificationError) as caught:
        open_note(altered, [peter])
    assert caught.value.message == "signature by key 'PeterNeumann+c74f20a3' is not valid"


def test_repeated_signatures_count_once_and_unknown_ones_are_deduplicated() -> None:
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    opened = open_note(note, [peter])
    assert len(opened.verified) == 1
    assert len(opened.unknown) == 2  # Enoch's, and the distinct (corrupt) Enoch line


def test_two_different_known_keys_with_the_same_name_and_id_are_refused() -> None:
    impostor = type(enoch).__new__(type(enoch))
    for name, value in [
        ("name", enoch.name),
        ("key_id", enoch.key_id),
        ("signature_type", enoch.signature_type),
        ("public_key", bytes(32)),
    ]:
        object.__setattr__(impostor, name, value)
    with pytest.raises(VerificationError, match="two different known keys are named"):
        open_note(TEXT + "\n" + ENOCH_SIG, [enoch, peter, impostor])
    # ...but only when that key actually signed.
    open_note(TEXT + "\n" + PETER_SIG, [enoch, peter, impostor])


def test_more_than_one_hundred_signature_lines_are_refused() -> None:
    with pytest.raises(VerificationError, match="101 signature lines, more than the limit of 100"):
        open_note(TEXT + "\n" + PETER_SIG * 101, [peter])


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (TEXT, "no blank line"),
        (TEXT + "\n", "no signature lines"),
        (TEXT + "\n" + PETER_SIG[:-1], "does not end with a newline"),
        ("\x01" + TEXT + "\n" + PETER_SIG, "control character U\\+0001 at position 0"),
        (TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p\n",
         "line 1 \\('Bad'\\) is not valid base64"),
        (TEXT + "\n" + PETER_SIG + "Unexpected line.\n", "line 2 does not start with an em dash"),
        (TEXT + "\n" + "— PeterNeumann not*base64\n", "is not valid base64"),
        (TEXT + "\n" + "— PeterNeumann AAAA\n", "has 3 bytes, too short"),
    ],
)  # fmt: skip
def test_malformed_notes_are_refused_with_the_reason(note: str, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        open_note(note, [peter])


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(VerificationError, match="not valid UTF-8"):
        open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [peter])


def test_every_truncation_or_mangling_of_a_verifier_key_is_refused() -> None:
    # TestNewVerifier: every proper substring and every single-character change.
    for start in range(len(PETER_VERIFIER) + 1):
        for end in range(start + 1, len(PETER_VERIFIER) + 1):
            if (start, end) != (0, len(PETER_VERIFIER)):
                with pytest.raises(KeyFormatError):
                    parse_verifier_key(PETER_VERIFIER[start:end])
    for position, char in enumerate(PETER_VERIFIER):
        mangled = PETER_VERIFIER[:position] + chr(ord(char) + 1) + PETER_VERIFIER[position + 1 :]
        with pytest.raises(KeyFormatError):
            parse_verifier_key(mangled)


def test_every_truncation_or_mangling_of_a_signer_key_is_refused() -> None:
    # TestNewSigner.
    for start in range(len(PETER_SIGNER) + 1):
        for end in range(start + 1, len(PETER_SIGNER) + 1):
            if (start, end) != (0, len(PETER_SIGNER)):
                with pytest.raises(KeyFormatError):
                    parse_signer_key(PETER_SIGNER[start:end])
    for position, char in enumerate(PETER_SIGNER):
        mangled = PETER_SIGNER[:position] + chr(ord(char) + 1) + PETER_SIGNER[position + 1 :]
        with pytest.raises(KeyFormatError):
            parse_signer_key(mangled)


def test_verifier_keys_with_wrong_length_or_unknown_algorithm_are_refused() -> None:
    # TestNewVerifier's last two cases, whose key IDs were adjusted to match. (The first is
    # also non-canonical base64, which is refused before its length is looked at.)
    with pytest.raises(KeyFormatError, match="not valid base64"):
        parse_verifier_key(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    with pytest.raises(KeyFormatError, match="signature type 0x65"):
        parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    long_key = peter.public_key + b"\x00"
    hex_id = key_id("PeterNeumann", SIGNATURE_TYPE_ED25519, long_key).hex()
    material = base64.b64encode(bytes([SIGNATURE_TYPE_ED25519]) + long_key).decode()
    with pytest.raises(KeyFormatError, match="public key is 33 bytes, expected 32"):
        parse_verifier_key(f"PeterNeumann+{hex_id}+{material}")


def test_key_with_a_mismatched_id_names_both_ids() -> None:
    with pytest.raises(KeyFormatError) as caught:
        parse_verifier_key(PETER_VERIFIER.replace("c74f20a3", "c74f20a4"))
    assert caught.value.message == (
        "verifier key 'PeterNeumann' declares key ID c74f20a4 but its key hashes to c74f20a3"
    )


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0", "new\nline"])
def test_key_names_with_spaces_pluses_or_controls_are_refused(name: str) -> None:
    with pytest.raises(KeyFormatError, match="is empty or contains a space"):
        generate_signer_key(name)


def test_generated_keys_round_trip_through_their_strings_and_hide_the_seed() -> None:
    signer = generate_signer_key("mutualaid.example/log")
    assert parse_signer_key(signer.encode()) == signer
    assert parse_verifier_key(signer.verifier().encode()) == signer.verifier()
    assert signer.seed.hex() not in repr(signer)
    assert "seed" not in repr(signer)


def test_signing_refuses_text_without_final_newline_or_with_controls() -> None:
    signer = parse_signer_key(PETER_SIGNER)
    with pytest.raises(VerificationError, match="must end with a newline"):
        sign_note("abc", [signer])
    with pytest.raises(VerificationError, match="control character U\\+0009"):
        sign_note("a\tb\n", [signer])


def test_sign_note_refuses_a_witness_key() -> None:
    witness = generate_signer_key("w", signature_type=SIGNATURE_TYPE_COSIGNATURE_V1)
    with pytest.raises(KeyFormatError, match="only Ed25519 \\(0x01\\)"):
        sign_note(TEXT, [witness])


def test_note_text_may_contain_blank_lines() -> None:
    signer = parse_signer_key(PETER_SIGNER)
    text = "first\n\nthird\n"
    assert open_note(sign_note(text, [signer]), [peter]).text == text


def test_added_signature_replaces_an_older_one_by_the_same_key() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    replacement = NoteSignature("EnochRoot", enoch.key_id, b"\x00" * 64)
    updated = add_signatures(note, [replacement])
    assert parse_note(updated).signatures == (parse_note(note).signatures[0], replacement)
