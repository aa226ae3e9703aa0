"""`mutualaid payments reconcile` against the local Alipay gateway's statement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.alipay_gateway import (
    APP_ID,
    Gateway,
    Movement,
    alipay_gateway,
    new_key,
    private_pem,
    public_pem,
)
from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import account

from mutualaid.db.models import ProviderPayment
from mutualaid.services.context import ServiceContext

PAID_AT = datetime(2026, 3, 14, 2, 30, tzinfo=UTC)  # 10:30 in Beijing


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Gateway]:
    app_key = new_key()
    with alipay_gateway(app_key) as gateway:
        (tmp_path / "app.pem").write_text(private_pem(app_key))
        (tmp_path / "alipay.pem").write_text(public_pem(gateway.key))
        monkeypatch.setenv("MUTUALAID_ALIPAY_APP_ID", APP_ID)
        monkeypatch.setenv("MUTUALAID_ALIPAY_PRIVATE_KEY_FILE", str(tmp_path / "app.pem"))
        monkeypatch.setenv("MUTUALAID_ALIPAY_PUBLIC_KEY_FILE", str(tmp_path / "alipay.pem"))
        monkeypatch.setenv("MUTUALAID_ALIPAY_GATEWAY_URL", f"{gateway.url}/gateway.do")
        yield gateway


def paid_debits(ctx: ServiceContext, gateway: Gateway, amounts: list[int]) -> None:
    payer = account(ctx)
    with ctx.sessions.begin() as session:
        for n, amount in enumerate(amounts):
            out_ref, trade_no = f"MA{n:030d}", f"2026031422001{n:015d}"
            session.add(
                ProviderPayment(
                    provider="alipay",
                    kind="debit",
                    key=f"test/2026-03-07:{payer.account_id}:{n}",
                    out_ref=out_ref,
                    provider_ref=trade_no,
                    amount_fen=amount,
                    status="paid",
                    account_id=payer.account_id,
                    created_at=PAID_AT,
                    settled_at=PAID_AT,
                )
            )
            gateway.movements[out_ref] = Movement("debit", out_ref, trade_no, amount, "")


def test_the_reconciliation_lists_the_planted_difference_and_nothing_else(
    ctx: ServiceContext, gateway: Gateway
) -> None:
    paid_debits(ctx, gateway, [216, 216, 432])
    clean = mutualaid("payments", "reconcile", "--on", "2026-03-14")
    assert clean.exit_code == 0, clean.output
    assert "3 statement lines, no difference" in said(clean.output)

    gateway.statement_extra.append(
        Movement("debit", "MA" + "9" * 30, "2026031422001999999999999999", 500, "")
    )
    report = mutualaid("payments", "reconcile", "--on", "2026-03-14")
    assert report.exit_code == 1
    assert_clean_failure(report)
    rows = [line for line in report.output.splitlines() if "MA" in line]
    assert len(rows) == 1 and "unknown_reference" in rows[0] and "MA" + "9" * 30 in rows[0]
    assert "1 difference(s)" in said(report.output)
    assert gateway.refused_requests == 0


def test_a_reconciliation_without_alipay_settings_is_refused_cleanly(ctx: ServiceContext) -> None:
    result = mutualaid("payments", "reconcile", "--on", "2026-03-14")
    assert result.exit_code == 2
    assert_clean_failure(result)
    assert "provider_not_configured" in result.output
