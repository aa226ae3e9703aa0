"""The import pipeline gives the same members and refusals however the file is cut and spread.

Reference: the whole file in one chunk, validated by one worker. Pipeline: small chunks, two
worker processes, so planted duplicates fall both inside one chunk and across chunks (where
"the later duplicate is refused" must still hold: the earlier row by file order wins).
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import text
from tests.factories import publish_demo_plans, resident_id

from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo_data import random_member_rows
from mutualaid.services.enrollment.member_imports import import_members

TODAY = date(2026, 3, 1)
HEADER = ["payer_phone", "full_name", "id_number", "relation", "joined_on"]
#: A later duplicate in another chunk finds the earlier row's person already written.
ACROSS_CHUNKS = {"already_member", "identity_registered_elsewhere"}


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def generated_file() -> tuple[str, set[int]]:
    """CSV text with bad rows and duplicates planted, and the lines of the planted duplicates."""
    rows: list[dict[str, str] | list[str]] = list(random_member_rows(240, TODAY, seed=20))
    good = [row for row in rows if isinstance(row, dict)]
    elder = dict(good[0], id_number=resident_id(date(1950, 1, 1)), payer_phone="13000000001")
    plants: list[tuple[int, dict[str, str] | list[str], bool]] = [
        (3, dict(good[1], full_name="李后"), True),  # same chunk as the earlier row, other name
        (60, dict(good[2], payer_phone="13000000002"), True),  # across chunks, other phone
        (120, dict(good[100], full_name="张后"), True),  # across chunks, same phone
        (150, dict(good[0], id_number=good[0]["id_number"][:-1] + "Z"), False),
        (151, elder, False),
        (152, dict(elder, id_number=resident_id(date(1990, 1, 1)), relation="cousin"), False),
        (153, dict(elder, id_number=resident_id(date(1991, 1, 1)), joined_on="2026-03-02"), False),
        (154, dict(elder, id_number=resident_id(date(1992, 1, 1)), full_name=""), False),
        (155, ["13000000003", "王短"], False),  # a short row
        (200, dict(good[150]), True),  # an exact repeat, far away
    ]
    for index, row, _ in plants:  # in ascending order, so each lands at its index
        rows.insert(index, row)
    duplicates = {index + 2 for index, _, duplicate in plants if duplicate}  # header: line 1
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([row[column] for column in HEADER] if isinstance(row, dict) else row)
    return buffer.getvalue(), duplicates


def imported_rows(ctx: ServiceContext) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every imported person and membership, ids replaced by what they point to, secrets opened."""
    decrypt = ctx.protector.decrypt
    with ctx.reading() as session:
        persons = session.execute(
            text("""SELECT a.phone, a.role, a.locale, p.relation, p.identity_hash,
                           p.identity_ciphertext, p.name_ciphertext, p.name_masked, p.birth_on,
                           p.sex, p.province_code, p.created_at, p.key_version
                    FROM persons p JOIN accounts a ON a.id = p.account_id""")
        ).all()
        memberships = session.execute(
            text("""SELECT p.identity_hash, a.phone, m.plan_id, m.plan_version, m.state,
                           m.joined_at, m.joined_on, m.waiting_ends_on, m.covered_from_on,
                           m.ages_out_on, m.ended_at
                    FROM memberships m JOIN persons p ON p.id = m.person_id
                    JOIN accounts a ON a.id = m.payer_account_id""")
        ).all()
        leaves = session.execute(
            text("SELECT count(*) FROM log_entries WHERE subject_type = 'membership'")
        ).scalar_one()
    assert leaves == len(memberships)
    opened = [
        (*row[:5], decrypt(bytes(row[5])), decrypt(bytes(row[6])), *row[7:]) for row in persons
    ]
    return sorted(opened, key=repr), sorted((tuple(row) for row in memberships), key=repr)


def forget_import(ctx: ServiceContext) -> None:
    with ctx.engine.begin() as connection:
        connection.execute(text("DELETE FROM log_entries WHERE subject_type = 'membership'"))
        connection.execute(text("DELETE FROM memberships"))
        connection.execute(text("DELETE FROM persons"))
        connection.execute(text("DELETE FROM accounts WHERE role = 'member'"))


def run(
    ctx: ServiceContext, csv_text: str, chunk_rows: int, workers: int
) -> tuple[tuple[int, int, int], list[tuple[int, str, str]]]:
    errors = io.StringIO()
    report = import_members(
        ctx,
        SYSTEM_ACTOR,
        "xhb-main",
        io.StringIO(csv_text),
        errors,
        chunk_rows=chunk_rows,
        workers=workers,
    )
    refused = [
        (int(e["line"]), e["code"], e["field"])
        for e in csv.DictReader(io.StringIO(errors.getvalue()))
    ]
    return (report.rows_read, report.imported, report.rejected), refused


def test_chunks_and_workers_import_the_same_rows_and_refuse_the_same_lines(
    ctx: ServiceContext,
) -> None:
    csv_text, duplicates = generated_file()
    whole_report, whole_refused = run(ctx, csv_text, chunk_rows=100_000, workers=1)
    whole_rows = imported_rows(ctx)
    forget_import(ctx)
    split_report, split_refused = run(ctx, csv_text, chunk_rows=17, workers=2)
    split_rows = imported_rows(ctx)

    assert whole_report == split_report == (250, 240, 10)
    assert split_rows == whole_rows
    assert [line for line, _, _ in split_refused] == [line for line, _, _ in whole_refused]
    for (line, split_code, split_field), (_, whole_code, whole_field) in zip(
        split_refused, whole_refused, strict=True
    ):
        if line in duplicates:
            # In one chunk the repeat is seen as such; across chunks it meets the earlier row's
            # person in the database. Refused either way: the earlier row by file order wins.
            assert whole_code == "duplicate_in_file"
            assert split_code in ACROSS_CHUNKS | {"duplicate_in_file"}
            assert split_field == whole_field == "id_number"
        else:
            assert (split_code, split_field) == (whole_code, whole_field)
    codes = {code for _, code, _ in split_refused}
    assert {"duplicate_in_file", "already_member", "identity_registered_elsewhere"} <= codes
    assert {"invalid_id_number", "too_old", "invalid_relation", "invalid_date"} <= codes
