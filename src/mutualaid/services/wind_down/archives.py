"""Writing a closed plan's static archive (see `transparency.archives` for its layout and checks).

Everything is read from the database once, at the final checkpoint's size, and written as plain
files: the log as tlog-tiles (one entry bundle of 256 leaves at a time), the public notices, the
plan's rules and the ledger's balances, and a manifest of SHA-256 hashes. It needs nothing of the
application to be served or checked.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    LedgerEntry,
    LedgerTransaction,
    LogCheckpoint,
    Period,
    Plan,
    PlanSponsorship,
    PlanVersion,
    PlanWindDown,
    PrepaidRefund,
    SponsoredScheme,
)
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.apportionment import PeriodState, reached
from mutualaid.domain.errors import Conflict
from mutualaid.domain.ledger import SPONSOR, plan_account
from mutualaid.domain.money import format_yuan
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.periods.notice import PeriodNotice, period_notice
from mutualaid.services.transparency.proofs import entry_bundle, hash_tile
from mutualaid.transparency.archives import (
    ARCHIVE_FORMAT,
    MANIFEST,
    sha256_hex,
    tile_refs,
)
from mutualaid.transparency.tiles import encode_entry_bundle

REFUND_KEY = "refund:{plan}"


def _json(value: Any) -> bytes:
    return (
        json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str) + "\n"
    ).encode()


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, str] = {}

    def write(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[name] = sha256_hex(data)


def write_archive(ctx: ServiceContext, plan_code: str, checkpoint_size: int, out: Path) -> str:
    """Write the archive of `plan_code` at the published checkpoint of `checkpoint_size` into
    the empty (or new) directory `out`; returns the manifest's SHA-256."""
    if out.exists() and any(out.iterdir()):
        raise Conflict("archive_dir_not_empty", f"{out} is not empty", "archive_dir")
    writer = _Writer(out)
    with ctx.reading() as session:
        row = session.scalars(
            select(LogCheckpoint).where(
                LogCheckpoint.size == checkpoint_size, LogCheckpoint.published
            )
        ).first()
        if row is None:
            raise Conflict("no_checkpoint", f"no published checkpoint at size {checkpoint_size}")
        writer.write("checkpoint", row.note.encode())
        writer.write(
            "keys.json",
            _json(
                {
                    "origin": row.note.split("\n", 1)[0],
                    "log_key": row.log_key,
                    "witness_keys": row.witness_keys,
                    "quorum": row.quorum,
                }
            ),
        )
        _write_tiles(session, writer, checkpoint_size)
        plan = plan_by_code(session, plan_code)
        writer.write("plan.json", _json(_plan_record(session, plan)))
        writer.write("ledger.json", _json(ledger_record(session, plan)))
        periods = session.execute(
            select(Period.publicity_on, Period.state)
            .where(Period.plan_id == plan.id)
            .order_by(Period.publicity_on)
        ).all()
    refs = []
    for day, state in periods:
        if not reached(PeriodState(state), PeriodState.COMPUTED):
            continue
        notice = period_notice(ctx, plan_code, day)
        writer.write(f"notices/{day}.json", _json(asdict(notice)))
        writer.write(f"notices/{day}.html", notice_html(notice).encode())
        refs.append(day.isoformat())
    writer.write("index.html", _index_html(plan_code, checkpoint_size, refs).encode())
    manifest = _json(
        {
            "format": ARCHIVE_FORMAT,
            "plan": plan_code,
            "checkpoint_size": checkpoint_size,
            "files": writer.files,
        }
    )
    (out / MANIFEST).write_bytes(manifest)
    return sha256_hex(manifest)


def _write_tiles(session: Session, writer: _Writer, size: int) -> None:
    for ref in tile_refs(size):
        if ref.level is None:
            data = encode_entry_bundle(entry_bundle(session, ref.index, ref.width))
        else:
            data = b"".join(hash_tile(session, ref.level, ref.index, ref.width))
        if not data:
            raise Conflict("log_not_integrated", f"{ref.path} cannot be read at size {size}")
        writer.write(ref.path, data)


def _plan_record(session: Session, plan: Plan) -> dict[str, Any]:
    wind_down = session.get(PlanWindDown, plan.id)
    versions = session.scalars(
        select(PlanVersion).where(PlanVersion.plan_id == plan.id).order_by(PlanVersion.version)
    )
    return {
        "code": plan.code,
        "name_zh": plan.name_zh,
        "name_en": plan.name_en,
        "status": plan.status,
        "versions": [
            {
                "version": v.version,
                "rules_sha256": v.rules_sha256,
                "rules": v.rules,
                "created_at": v.created_at,
            }
            for v in versions
        ],
        "schemes": [
            {
                "code": s.code,
                "rules": s.rules,
                "rules_sha256": s.rules_sha256,
                "attached_at": s.attached_at,
            }
            for s in session.scalars(
                select(SponsoredScheme).where(SponsoredScheme.plan_id == plan.id)
            )
        ],
        "sponsorships": [
            {"kind": s.kind, "from_on": s.from_on, "to_on": s.to_on, "memo": s.memo}
            for s in session.scalars(
                select(PlanSponsorship).where(PlanSponsorship.plan_id == plan.id)
            )
        ],
        "wind_down": None
        if wind_down is None
        else {
            "rule": wind_down.rule,
            "reason": wind_down.reason,
            "announced_at": wind_down.announced_at,
            "end_on": wind_down.end_on,
            "run_off_until_on": wind_down.run_off_until_on,
            "ended_at": wind_down.ended_at,
            "memberships_ended": wind_down.memberships_ended,
            "refunds": wind_down.refunds,
            "refunded_fen": wind_down.refunded_fen,
            "written_off_fen": wind_down.written_off_fen,
        },
    }


def ledger_record(session: Session, plan: Plan) -> dict[str, Any]:
    """The plan's balances, what the sponsor paid into it, and the refunds checked two ways: the
    per-payer refund rows against the ledger's prepaid account before the refund."""
    prepaid = plan_account(plan.code, "prepaid")
    refund_key = REFUND_KEY.format(plan=plan.code)
    before = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerEntry.account_code == prepaid, LedgerTransaction.key != refund_key)
    )
    refunded = session.execute(
        select(func.count(), func.coalesce(func.sum(PrepaidRefund.amount_fen), 0)).where(
            PrepaidRefund.plan_id == plan.id
        )
    ).one()
    sponsor = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerEntry.account_code == SPONSOR, LedgerTransaction.plan_id == plan.id)
    )
    return {
        "plan": plan.code,
        "balances": balances(session, f"plan:{plan.code}:"),
        "sponsor_paid_fen": -int(sponsor or 0),
        "unbalanced_transactions": unbalanced_transactions(session),
        "refunds": {
            "payers": int(refunded[0]),
            "refunded_fen": int(refunded[1]),
            "balances_before_fen": int(before or 0),
        },
    }


def _yuan(fen: int | None) -> str:
    return format_yuan(fen, grouping=True) if fen is not None else "—"


def notice_html(notice: PeriodNotice) -> str:
    p = notice.period
    rows = "".join(
        f"<tr><td>{html.escape(c.ref)}</td><td>{html.escape(c.name_masked)}</td>"
        f"<td>{html.escape(c.illness_zh)} / {html.escape(c.illness_en)}</td><td>{c.age}</td>"
        f"<td>{html.escape(c.province_zh)}</td><td>{_yuan(c.payout_fen)}</td>"
        f"<td>{'赞助 sponsored' if sponsored else '分摊 shared'}</td></tr>"
        for sponsored, cases in ((False, notice.cases), (True, notice.sponsored_cases))
        for c in cases
    )
    checks = "".join(
        f"<li>{html.escape(c.expression)}: {c.left} = {c.right} {'✓' if c.holds else '✗'}</li>"
        for c in notice.checks
    )
    figures = "".join(
        f"<tr><th>{label}</th><td>{value}</td></tr>"
        for label, value in (
            ("成员 members", p.member_count),
            ("案例 cases", p.case_count),
            ("互助金 aid (¥)", _yuan(p.aid_fen)),
            ("管理费 fee (¥)", _yuan(p.fee_fen)),
            ("人均分摊 share (¥)", _yuan(p.share_fen)),
            ("分摊总额 total charged (¥)", _yuan(p.total_charged_fen)),
            ("运营方承担 paid by the sponsor (¥)", _yuan(p.sponsor_fen)),
            ("赞助案例 sponsored cases (¥)", _yuan(p.sponsored_aid_fen)),
            ("Merkle root", html.escape(p.charges_root or "—")),
        )
    )
    return (
        f'<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
        f"<title>{html.escape(p.ref)}</title><h1>{html.escape(p.ref)}</h1>"
        f"<table>{figures}</table><h2>案例 Cases</h2><table>{rows}</table>"
        f"<h2>核对 Checks</h2><ul>{checks}</ul></html>\n"
    )


def _index_html(plan_code: str, size: int, refs: list[str]) -> str:
    links = "".join(
        f'<li><a href="notices/{html.escape(r)}.html">{html.escape(r)}</a> '
        f'(<a href="notices/{html.escape(r)}.json">JSON</a>)</li>'
        for r in refs
    )
    return (
        f'<!doctype html><html><meta charset="utf-8"><title>{html.escape(plan_code)}</title>'
        f"<h1>{html.escape(plan_code)}: archive</h1><p>Final checkpoint: "
        f'<a href="checkpoint">size {size}</a>; the log as tlog-tiles under '
        f"<code>tile/</code>. Check everything offline with "
        f"<code>mutualaid verify archive DIR --log-key … --witness-key …</code>.</p>"
        f'<ul>{links}</ul><p><a href="plan.json">plan</a> · '
        f'<a href="ledger.json">ledger</a></p></html>\n'
    )
