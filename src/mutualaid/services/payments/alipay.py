"""The Alipay open-platform adapter: withholding agreements, deductions, transfers, statements.

Every request is a form POST to the gateway with the common parameters and a ``biz_content``
JSON, signed RSA2 with the app's key (signatures.py); every answer's signature is checked with
Alipay's public key before a field of it is believed. Methods used:

- ``alipay.user.agreement.page.sign``: the page where a payer signs the withholding agreement
  (product GENERAL_WITHHOLDING); Alipay then notifies ``dut_user_sign`` with the agreement_no;
- ``alipay.trade.pay`` with ``agreement_params``: a deduction under the agreement;
- ``alipay.fund.trans.uni.transfer``: a payout to the payee's Alipay account;
- ``alipay.data.dataservice.bill.downloadurl.query``: the day's statement (a zipped CSV).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx

from mutualaid.domain.errors import DomainError
from mutualaid.services.collections.providers import DebitResult
from mutualaid.services.context import AlipayConfig
from mutualaid.services.payments.signatures import (
    load_private_key,
    load_public_key,
    response_node,
    rsa2_verify,
    sign_request,
    verify_notification,
)

BEIJING = ZoneInfo("Asia/Shanghai")
PRODUCT_CODE = "GENERAL_WITHHOLDING"
PERSONAL_PRODUCT_CODE = "GENERAL_WITHHOLDING_P"
SIGN_SCENE = "INDUSTRY|INSURANCE"


class ProviderError(DomainError):
    status = 502


def out_reference(key: str) -> str:
    """Our idempotency key as Alipay accepts an out_trade_no / out_biz_no (letters and digits,
    at most 64): the same key always gives the same reference, so asking again after a crash is
    answered with the first trade instead of a second one."""
    return "MA" + hashlib.sha256(key.encode()).hexdigest()[:30]


def yuan(amount_fen: int) -> str:
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen_of(text: str) -> int:
    try:
        value = Decimal(text.strip()) * 100
    except InvalidOperation:
        raise ProviderError("invalid_amount", f"not an amount: {text!r}", "amount") from None
    if value != value.to_integral_value():
        raise ProviderError("invalid_amount", f"not an amount in fen: {text!r}", "amount")
    return int(value)


@dataclass(frozen=True, slots=True)
class TransferResult:
    out_ref: str
    #: Alipay's order_id (None when refused).
    reference: str | None
    accepted: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class StatementLine:
    out_ref: str
    reference: str
    amount_fen: int
    kind: str


class AlipayProvider:
    """A `PaymentProvider` (debits) that also transfers payouts and reads statements."""

    name = "alipay"

    def __init__(
        self,
        config: AlipayConfig,
        agreement_of: Callable[[int], str | None] = lambda _: None,
        *,
        http: httpx.Client | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(BEIJING),
    ) -> None:
        self.config = config
        self.agreement_of = agreement_of
        self._http = http
        self._owns_http = http is None
        self.now = now
        self._key = load_private_key(config.private_key)
        self._gateway_key = load_public_key(config.gateway_public_key)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=15)
        return self._http

    def close(self) -> None:
        if self._http is not None and self._owns_http:
            self._http.close()
            self._http = None

    def __enter__(self) -> AlipayProvider:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- requests --------------------------------------------------------------------------

    def _params(self, method: str, biz: Mapping[str, Any], notify: bool) -> dict[str, str]:
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": self.now().astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify:
            params["notify_url"] = self.config.notify_url
        return sign_request(params, self._key)

    def call(self, method: str, biz: Mapping[str, Any], *, notify: bool = False) -> dict[str, Any]:
        """One signed request; the answer's node, after its signature is checked."""
        try:
            response = self.http.post(
                self.config.gateway_url, data=self._params(method, biz, notify)
            )
        except httpx.HTTPError as error:
            raise ProviderError(
                "provider_unreachable", f"Alipay did not answer {method}: {type(error).__name__}"
            ) from None
        body = response.text
        node = response_node(body, method) or response_node(body, "error")
        try:
            signature = json.loads(body).get("sign", "")
        except (json.JSONDecodeError, AttributeError):
            signature = ""
        if node is None or not rsa2_verify(node, str(signature), self._gateway_key):
            raise ProviderError(
                "provider_bad_signature", f"Alipay's answer to {method} is not signed by Alipay"
            )
        answer: dict[str, Any] = json.loads(node)
        return answer

    # --- the withholding agreement ----------------------------------------------------------

    def agreement_sign_url(self, external_no: str, return_url: str = "") -> str:
        """The page where the payer signs the agreement (opened in the browser or the app)."""
        biz = {
            "personal_product_code": PERSONAL_PRODUCT_CODE,
            "product_code": PRODUCT_CODE,
            "sign_scene": SIGN_SCENE,
            "external_agreement_no": external_no,
            "access_params": {"channel": "ALIPAYAPP"},
        }
        params = self._params("alipay.user.agreement.page.sign", biz, notify=True)
        if return_url:
            params = sign_request({**params, "return_url": return_url}, self._key)
        return f"{self.config.gateway_url}?{urlencode(params)}"

    # --- money in ---------------------------------------------------------------------------

    def debit(self, payer_account_id: int, amount_fen: int, idempotency_key: str) -> DebitResult:
        out_ref = out_reference(idempotency_key)
        agreement = self.agreement_of(payer_account_id)
        if agreement is None:
            return DebitResult(False, "no debit agreement")
        answer = self.call(
            "alipay.trade.pay",
            {
                "out_trade_no": out_ref,
                "total_amount": yuan(amount_fen),
                "subject": "mutual aid share",
                "product_code": PRODUCT_CODE,
                "agreement_params": {"agreement_no": agreement},
            },
            notify=True,
        )
        code = str(answer.get("code", ""))
        trade_no = answer.get("trade_no")
        if code == "10000":
            return DebitResult(True, out_ref=out_ref, reference=trade_no)
        if code == "10003":  # waiting for the payer's side: a notification settles it
            return DebitResult(False, "waiting", out_ref=out_ref, reference=trade_no, pending=True)
        return DebitResult(False, str(answer.get("sub_code") or code), out_ref=out_ref)

    # --- money out --------------------------------------------------------------------------

    def transfer(
        self, payee_user_id: str, amount_fen: int, idempotency_key: str, title: str
    ) -> TransferResult:
        out_ref = out_reference(idempotency_key)
        answer = self.call(
            "alipay.fund.trans.uni.transfer",
            {
                "out_biz_no": out_ref,
                "trans_amount": yuan(amount_fen),
                "product_code": "TRANS_ACCOUNT_NO_PWD",
                "biz_scene": "DIRECT_TRANSFER",
                "order_title": title,
                "payee_info": {"identity": payee_user_id, "identity_type": "ALIPAY_USER_ID"},
            },
            notify=True,
        )
        if str(answer.get("code")) == "10000":
            return TransferResult(out_ref, answer.get("order_id"), True)
        return TransferResult(out_ref, None, False, str(answer.get("sub_code") or "refused"))

    # --- notifications and statements -------------------------------------------------------

    def verify(self, params: Mapping[str, str]) -> bool:
        return verify_notification(params, self._gateway_key)

    def statement(self, on: date) -> list[StatementLine]:
        """The day's statement: every trade and transfer Alipay booked (Beijing date)."""
        answer = self.call(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": on.isoformat()},
        )
        url = answer.get("bill_download_url")
        if str(answer.get("code")) != "10000" or not url:
            raise ProviderError(
                "statement_unavailable",
                f"Alipay has no statement for {on}: {answer.get('sub_code')}",
            )
        try:
            archive = self.http.get(str(url))
        except httpx.HTTPError as error:
            raise ProviderError(
                "provider_unreachable", f"the statement did not download: {type(error).__name__}"
            ) from None
        return parse_statement(archive.content)


def parse_statement(archive: bytes) -> list[StatementLine]:
    """Alipay's bill: a zip of GBK CSV files; the detail file's table starts at the row headed
    支付宝交易号, comment rows start with #."""
    lines: list[StatementLine] = []
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        for name in bundle.namelist():
            text = bundle.read(name).decode("gb18030")
            header: list[str] | None = None
            for row in csv.reader(io.StringIO(text)):
                cells = [cell.strip() for cell in row]
                if not cells or cells[0].startswith("#"):
                    continue
                if header is None:
                    if cells[0] == "支付宝交易号":
                        header = cells
                    continue
                record = dict(zip(header, cells, strict=False))
                lines.append(
                    StatementLine(
                        out_ref=record["商户订单号"],
                        reference=record["支付宝交易号"],
                        amount_fen=fen_of(record["订单金额（元）"]),
                        kind="transfer" if record.get("业务类型") == "转账" else "debit",
                    )
                )
    return lines
