"""Exports when a plan ends: each member's complete record (JSON and CSV), and the operator's
migration file for a successor (e.g. an insurer that takes members over with no new health
declaration and no new waiting period).

The member record is one account's data (small). The migration export touches every member of a
plan, so it is a generator of CSV lines read in keyset chunks of membership ids: memory stays
flat at 100M members and the first line leaves before the last row is read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from mutualaid.db.models import (
    Account,
    Claim,
    Evidence,
    LogEntry,
    Membership,
    Period,
    Person,
    Plan,
    PrepaidBalance,
    PrepaidRefund,
)
from mutualaid.db.queries.periods import membership_plan_is
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.claims import OPEN_STATES
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.member_data import export_member_data
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.periods.statements import account_statements
from mutualaid.services.wind_down.wind_down import PLAN_ENDED

RECORD_FORMAT = "mutualaid-member-record/v1"
RECORD_CSV_COLUMNS = ("section", "ref", "plan", "on", "amount_fen", "status", "detail")
MIGRATION_COLUMNS = (
    "membership_id",
    "plan",
    "person_ref",
    "relation",
    "name_masked",
    "birth_on",
    "sex",
    "province_code",
    "payer_phone",
    "state",
    "end_reason",
    "joined_on",
    "waiting_ends_on",
    "covered_from_on",
    "ages_out_on",
    "claims_paid",
    "paid_fen",
    "open_claims",
)
IDENTITY_COLUMNS = ("full_name", "id_number")
DEFAULT_CHUNK = 5_000


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def member_record(ctx: ServiceContext, actor: Actor) -> dict[str, Any]:
    """Everything about the account and the family it pays for: the personal data, memberships,
    every period's statement, the claims with their timelines, and the proofs (each evidence
    hash and claim event with its log index, each period's committed charges root)."""
    record = export_member_data(ctx, actor)
    statements = account_statements(ctx, actor)
    with ctx.reading() as session:
        claim_refs = [c["ref"] for c in record["claims"]]
        evidence = (
            session.execute(
                select(Claim.ref, Evidence.sha256, Evidence.label, Evidence.uploaded_at)
                .join(Claim, Claim.id == Evidence.claim_id)
                .where(Claim.ref.in_(claim_refs))
                .order_by(Evidence.id)
            ).all()
            if claim_refs
            else []
        )
        leaves = (
            session.execute(
                select(
                    LogEntry.subject_ref,
                    LogEntry.leaf_type,
                    LogEntry.leaf_index,
                    LogEntry.leaf_data,
                )
                .where(LogEntry.subject_type == "claim", LogEntry.subject_ref.in_(claim_refs))
                .order_by(LogEntry.id)
            ).all()
            if claim_refs
            else []
        )
        refs = sorted({line.period_ref for s in statements for line in s.lines})
        commitments = (
            session.execute(
                select(Period.ref, Period.charges_root, LogEntry.leaf_index)
                .outerjoin(LogEntry, LogEntry.id == Period.commitment_entry_id)
                .where(Period.ref.in_(refs))
            ).all()
            if refs
            else []
        )
        refunds = session.execute(
            select(Plan.code, PrepaidRefund.amount_fen, PrepaidRefund.refunded_at)
            .join(Plan, Plan.id == PrepaidRefund.plan_id)
            .where(PrepaidRefund.payer_account_id == actor.account_id)
        ).all()
        prepaid = session.execute(
            select(Plan.code, PrepaidBalance.balance_fen)
            .join(Plan, Plan.id == PrepaidBalance.plan_id)
            .where(PrepaidBalance.payer_account_id == actor.account_id)
        ).all()
    record.update(
        {
            "format": RECORD_FORMAT,
            "statements": [_plain(asdict(s)) for s in statements],
            "prepaid_balances": [{"plan": code, "balance_fen": amount} for code, amount in prepaid],
            "refunds": [
                {"plan": code, "amount_fen": amount, "refunded_at": at.isoformat()}
                for code, amount, at in refunds
            ],
            "proofs": {
                "evidence": [
                    {"claim_ref": ref, "sha256": sha, "label": label, "uploaded_at": at.isoformat()}
                    for ref, sha, label, at in evidence
                ],
                "log_leaves": [
                    {
                        "claim_ref": ref,
                        "leaf_type": kind,
                        "leaf_index": index,
                        "leaf": bytes(data).decode(),
                    }
                    for ref, kind, index, data in leaves
                ],
                "period_commitments": [
                    {"period_ref": ref, "charges_root": root, "leaf_index": index}
                    for ref, root, index in commitments
                ],
            },
        }
    )
    return record


def _csv_rows(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def member_record_csv(record: dict[str, Any]) -> str:
    """The same record as one CSV table (a spreadsheet's view of it): one row per membership,
    statement line, claim event and refund."""
    rows: list[Sequence[Any]] = [RECORD_CSV_COLUMNS]
    for m in record["memberships"]:
        rows.append(
            (
                "membership",
                m["id"],
                m["plan"],
                m["joined_on"],
                "",
                m["state"],
                f"covered from {m['covered_from_on']}; ended {m['ended_at'] or '-'} "
                f"({m['end_reason'] or '-'})",
            )
        )
    for statement in record["statements"]:
        for line in statement["lines"]:
            rows.append(
                (
                    "charge",
                    line["period_ref"],
                    statement["plan_code"],
                    line["debit_on"],
                    line["charge_fen"],
                    line["status"],
                    f"membership {statement['membership_id']}; paid {line['paid_fen']}; "
                    f"share {line['share_fen']}",
                )
            )
    for claim in record["claims"]:
        rows.append(
            (
                "claim",
                claim["ref"],
                claim["plan"],
                claim["diagnosed_on"],
                claim["payout_fen"],
                claim["state"],
                claim["illness_code"],
            )
        )
        for event in claim["timeline"]:
            rows.append(
                (
                    "claim_event",
                    claim["ref"],
                    claim["plan"],
                    event["at"],
                    "",
                    event["state"],
                    event["note"] or event["event"],
                )
            )
    for refund in record["refunds"]:
        rows.append(
            (
                "refund",
                "",
                refund["plan"],
                refund["refunded_at"],
                refund["amount_fen"],
                "refunded",
                "prepaid balance returned",
            )
        )
    return _csv_rows(rows)


def migration_export(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    *,
    with_identity: bool = False,
    chunk: int = DEFAULT_CHUNK,
) -> Iterator[str]:
    """CSV text, header first, then one line per membership of the plan that was in it when it
    ended (or is in it now), in membership id order — streamed in chunks of `chunk` rows.

    `person_ref` is the keyed identity hash: a successor can match people without the number.
    With `with_identity` (the members' consent obtained) the full name and identity number are
    added, decrypted, so the successor can enrol them without a new declaration."""
    require_role(actor.role, Role.OPERATOR)
    audited: UnitOfWork[int] = ctx.unit_of_work()
    with audited:  # reading personal data in bulk is audited
        session = audited.session
        plan_id = plan_by_code(session, plan_code).id
        audit.record(
            session,
            at=ctx.clock.now(),
            actor_account_id=actor.account_id,
            action="migration_export",
            subject_type="plan",
            subject_id=plan_id,
            with_identity=with_identity,
        )
        audited.commit(plan_id)
    columns = MIGRATION_COLUMNS + (IDENTITY_COLUMNS if with_identity else ())
    yield _csv_rows([columns])
    after = 0
    while True:
        with ctx.reading() as session:
            # Keyset on the primary key, kept on it by `membership_plan_is` (on SQLite the
            # (plan_id, state) index would make each chunk a scan and a sort of the whole plan).
            plan_match = membership_plan_is(session, plan_id)
            rows = session.execute(
                select(
                    Membership.id,
                    Membership.state,
                    Membership.end_reason,
                    Membership.joined_on,
                    Membership.waiting_ends_on,
                    Membership.covered_from_on,
                    Membership.ages_out_on,
                    Person.identity_hash,
                    Person.relation,
                    Person.name_masked,
                    Person.birth_on,
                    Person.sex,
                    Person.province_code,
                    Account.phone,
                    Person.name_ciphertext,
                    Person.identity_ciphertext,
                    Person.key_version,
                )
                .join(Person, Person.id == Membership.person_id)
                .join(Account, Account.id == Membership.payer_account_id)
                .where(
                    plan_match,
                    Membership.id > after,
                    Membership.ended_at.is_(None) | (Membership.end_reason == PLAN_ENDED),
                )
                .order_by(Membership.id)
                .limit(chunk)
            ).all()
            if not rows:
                return
            claims: dict[int, list[int]] = {}
            for membership_id, state, count, fen in session.execute(
                select(
                    Claim.membership_id,
                    Claim.state,
                    func.count(),
                    func.coalesce(func.sum(Claim.payout_fen), 0),
                )
                .where(
                    Claim.plan_id == plan_id,
                    Claim.membership_id > after,
                    Claim.membership_id <= rows[-1].id,
                )
                .group_by(Claim.membership_id, Claim.state)
            ):
                tally = claims.setdefault(membership_id, [0, 0, 0])
                if state == "paid":
                    tally[0], tally[1] = tally[0] + count, tally[1] + int(fen)
                elif state in OPEN_STATES:
                    tally[2] += count
            lines = []
            for row in rows:
                line: list[Any] = [
                    row.id,
                    plan_code,
                    row.identity_hash,
                    row.relation,
                    row.name_masked,
                    row.birth_on.isoformat(),
                    row.sex,
                    row.province_code,
                    row.phone,
                    row.state,
                    row.end_reason or "",
                    row.joined_on.isoformat(),
                    row.waiting_ends_on.isoformat(),
                    row.covered_from_on.isoformat(),
                    row.ages_out_on.isoformat(),
                    *claims.get(row.id, (0, 0, 0)),
                ]
                if with_identity:
                    line += [
                        ctx.protector.decrypt(row.name_ciphertext, row.key_version),
                        ctx.protector.decrypt(row.identity_ciphertext, row.key_version),
                    ]
                lines.append(line)
            after = rows[-1].id
        yield _csv_rows(lines)
