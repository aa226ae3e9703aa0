"""Whether a payer has authorised the plan's provider to debit them (issue 17, member side).

A post-paid plan that debits through Alipay takes no member whose payer has not signed a
withholding agreement: joining is refused with `debit_authorisation_required` until Alipay's
`dut_user_sign` notification has made the agreement active (agreements.py, callbacks.py).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mutualaid.db.models import PaymentAgreement
from mutualaid.domain.errors import Conflict
from mutualaid.domain.plans import FundingModel, PlanRules


def has_active_agreement(connection: Connection, account_id: int, provider: str = "alipay") -> bool:
    found = connection.scalar(
        select(PaymentAgreement.id)
        .where(
            PaymentAgreement.provider == provider,
            PaymentAgreement.account_id == account_id,
            PaymentAgreement.status == "active",
        )
        .limit(1)
    )
    return found is not None


def require_debit_agreement(connection: Connection, account_id: int, plan_code: str) -> None:
    """Refused (409 `debit_authorisation_required`) until the payer's agreement is active; the
    details say where to sign it."""
    if not has_active_agreement(connection, account_id):
        raise Conflict(
            "debit_authorisation_required",
            "this plan takes its shares by Alipay withholding: sign the debit agreement first",
            "debit_authorisation",
            details={"provider": "alipay", "plan": plan_code, "sign_page": "/me/payments"},
        )


def needs_debit_agreement(rules: PlanRules) -> bool:
    """A post-paid plan that debits through Alipay: its payer signs a withholding agreement
    before joining (a prepaid plan is paid by top-ups, the simulated and file providers need none)."""
    provider = rules.payments.provider if rules.payments is not None else "simulated"
    return provider == "alipay" and rules.funding_model is FundingModel.POST_PAID
