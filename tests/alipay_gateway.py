"""A local Alipay open-platform gateway for tests: its own generated RSA keys, the app's public
key to check every request's RSA2 signature, signed answers, signed asynchronous notifications
to the app's notify_url, and the day's statement as Alipay serves it (a zip of a GBK CSV).
Served by uvicorn on a free localhost port (tests/live_servers.py)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.live_servers import served

from mutualaid.services.context import AlipayConfig
from mutualaid.services.payments.alipay import fen_of, yuan
from mutualaid.services.payments.signatures import (
    sign_notification,
    signed_response,
    verify_request,
)

APP_ID = "2021000000000001"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class Movement:
    kind: str  # debit, transfer
    out_ref: str
    reference: str
    amount_fen: int
    notify_url: str


@dataclass
class Gateway:
    app_key: rsa.RSAPrivateKey
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    url: str = ""
    #: agreement_no -> the payer's Alipay user id (set when a payer signs)
    agreements: dict[str, str] = field(default_factory=dict)
    #: external_agreement_no -> notify_url of a sign page opened
    sign_pages: dict[str, str] = field(default_factory=dict)
    #: agreement numbers whose deductions are refused (no balance) or left waiting
    declined: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    movements: dict[str, Movement] = field(default_factory=dict)
    #: out_ref -> amount written on the statement instead of the true one (a planted difference)
    statement_amounts: dict[str, int] = field(default_factory=dict)
    statement_extra: list[Movement] = field(default_factory=list)
    refused_requests: int = 0
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> Starlette:
        async def gateway(request: Request) -> Response:
            if request.method == "GET":  # the agreement sign page, opened in a browser
                params = dict(request.query_params)
            else:
                params = {k: str(v) for k, v in (await request.form()).items()}
            method = params.get("method", "")
            if (
                not verify_request(params, self.app_key.public_key())
                or params.get("app_id") != APP_ID
            ):
                self.refused_requests += 1
                return self._answer(
                    "error",
                    {
                        "code": "40002",
                        "msg": "Invalid Arguments",
                        "sub_code": "isv.invalid-signature",
                    },
                )
            biz = json.loads(params.get("biz_content", "{}"))
            notify_url = params.get("notify_url", "")
            if method == "alipay.user.agreement.page.sign":
                self.sign_pages[biz["external_agreement_no"]] = notify_url
                # A page as a browser test meets it (the axe check runs on every page).
                return Response(
                    '<!doctype html><html lang="zh-CN"><head><title>支付宝签约</title></head>'
                    "<body><main><h1>签约</h1></main></body></html>",
                    media_type="text/html",
                )
            if method == "alipay.trade.pay":
                return self._answer(method, self._deduct(biz, notify_url))
            if method == "alipay.fund.trans.uni.transfer":
                return self._answer(method, self._transfer(biz, notify_url))
            if method == "alipay.data.dataservice.bill.downloadurl.query":
                url = f"{self.url}/bills/{biz['bill_date']}.zip"
                return self._answer(
                    method, {"code": "10000", "msg": "Success", "bill_download_url": url}
                )
            return self._answer(
                method,
                {"code": "40004", "msg": "Business Failed", "sub_code": "isv.unknown-method"},
            )

        async def bill(request: Request) -> Response:
            return Response(self.statement_zip(), media_type="application/zip")

        return Starlette(
            routes=[
                Route("/gateway.do", gateway, methods=["GET", "POST"]),
                Route("/bills/{day}.zip", bill),
            ]
        )

    def _answer(self, method: str, node: dict[str, Any]) -> Response:
        return Response(signed_response(method, node, self.key), media_type="application/json")

    def _deduct(self, biz: dict[str, Any], notify_url: str) -> dict[str, Any]:
        out_ref = biz["out_trade_no"]
        agreement = biz["agreement_params"]["agreement_no"]
        known = self.movements.get(out_ref)
        if known is not None:  # the same out_trade_no again: the first trade
            return {
                "code": "10000",
                "msg": "Success",
                "trade_no": known.reference,
                "out_trade_no": out_ref,
                "total_amount": yuan(known.amount_fen),
            }
        if agreement not in self.agreements:
            return {
                "code": "40004",
                "msg": "Business Failed",
                "sub_code": "ACQ.AGREEMENT_NOT_EXIST",
            }
        if agreement in self.declined:
            return {
                "code": "40004",
                "msg": "Business Failed",
                "sub_code": "ACQ.BUYER_BALANCE_NOT_ENOUGH",
            }
        trade_no = f"2026031422001{next(self.numbers):015d}"
        movement = Movement("debit", out_ref, trade_no, fen_of(biz["total_amount"]), notify_url)
        if agreement in self.waiting:
            self.pending[out_ref] = movement
            return {
                "code": "10003",
                "msg": "Waiting",
                "trade_no": trade_no,
                "out_trade_no": out_ref,
            }
        self.movements[out_ref] = movement
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade_no,
            "out_trade_no": out_ref,
            "total_amount": biz["total_amount"],
        }

    pending: dict[str, Movement] = field(default_factory=dict)

    def _transfer(self, biz: dict[str, Any], notify_url: str) -> dict[str, Any]:
        out_ref = biz["out_biz_no"]
        known = self.movements.get(out_ref)
        if known is None:
            order_id = f"20260321110070000{next(self.numbers):015d}"
            known = Movement("transfer", out_ref, order_id, fen_of(biz["trans_amount"]), notify_url)
            self.movements[out_ref] = known
        return {
            "code": "10000",
            "msg": "Success",
            "out_biz_no": out_ref,
            "order_id": known.reference,
            "status": "SUCCESS",
        }

    # --- what Alipay sends the app -----------------------------------------------------------

    def post(
        self, notify_url: str, params: dict[str, str], key: rsa.RSAPrivateKey | None = None
    ) -> httpx.Response:
        signed = sign_notification(params, key or self.key)
        return httpx.post(notify_url, data=signed, timeout=20)

    def sign_agreement(self, external_no: str, user_id: str) -> httpx.Response:
        """The payer signs on the page: Alipay notifies dut_user_sign."""
        agreement_no = f"20265314000{next(self.numbers):09d}"
        self.agreements[agreement_no] = user_id
        return self.post(
            self.sign_pages[external_no],
            {
                "notify_type": "dut_user_sign",
                "notify_id": f"n-sign-{agreement_no}",
                "notify_time": "2026-03-01 10:00:00",
                "app_id": APP_ID,
                "charset": "utf-8",
                "version": "1.0",
                "external_agreement_no": external_no,
                "agreement_no": agreement_no,
                "alipay_user_id": user_id,
                "status": "NORMAL",
                "personal_product_code": "GENERAL_WITHHOLDING_P",
                "sign_scene": "INDUSTRY|INSURANCE",
            },
        )

    def trade_params(self, movement: Movement, status: str, notify_id: str) -> dict[str, str]:
        return {
            "notify_type": "trade_status_sync",
            "notify_id": notify_id,
            "notify_time": "2026-03-14 10:05:00",
            "app_id": APP_ID,
            "charset": "utf-8",
            "version": "1.0",
            "out_trade_no": movement.out_ref,
            "trade_no": movement.reference,
            "trade_status": status,
            "total_amount": yuan(movement.amount_fen),
            "gmt_payment": "2026-03-14 10:05:00" if status == "TRADE_SUCCESS" else "",
        }

    def settle_pending(self, out_ref: str, status: str, notify_id: str) -> httpx.Response:
        movement = self.pending[out_ref]
        if status == "TRADE_SUCCESS":
            self.movements[out_ref] = movement
        return self.post(movement.notify_url, self.trade_params(movement, status, notify_id))

    def transfer_params(self, movement: Movement, status: str, notify_id: str) -> dict[str, str]:
        biz = {
            "out_biz_no": movement.out_ref,
            "order_id": movement.reference,
            "status": status,
            "trans_amount": yuan(movement.amount_fen),
            "biz_scene": "DIRECT_TRANSFER",
            "product_code": "TRANS_ACCOUNT_NO_PWD",
        }
        return {
            "msg_method": "alipay.fund.trans.order.changed",
            "notify_id": notify_id,
            "utc_timestamp": "1773453600000",
            "app_id": APP_ID,
            "charset": "utf-8",
            "version": "1.1",
            "biz_content": json.dumps(biz, separators=(",", ":")),
        }

    def statement_zip(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        out.write(f"#支付宝业务明细查询\n#账号：[{APP_ID}]\n")
        writer.writerow(
            [
                "支付宝交易号",
                "商户订单号",
                "业务类型",
                "商品名称",
                "订单金额（元）",
                "商家实收（元）",
            ]
        )
        for m in [*self.movements.values(), *self.statement_extra]:
            amount = yuan(self.statement_amounts.get(m.out_ref, m.amount_fen))
            kind = "转账" if m.kind == "transfer" else "交易"
            writer.writerow([m.reference, m.out_ref, kind, "mutual aid", amount, amount])
        out.write(
            "#-----------------------------------------业务明细列表结束------------------------------------\n"
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            bundle.writestr(f"{APP_ID}_20260314_业务明细.csv", out.getvalue().encode("gb18030"))
        return buffer.getvalue()


@contextmanager
def alipay_gateway(app_key: rsa.RSAPrivateKey) -> Iterator[Gateway]:
    gateway = Gateway(app_key)
    with served(gateway.app(), "alipay-gateway") as live:
        gateway.url = live.url
        yield gateway


def site_config(gateway: Gateway, app_url: str) -> AlipayConfig:
    """The site's Alipay settings for this gateway, notified at the app served at `app_url`."""
    return AlipayConfig(
        app_id=APP_ID,
        private_key=private_pem(gateway.app_key),
        gateway_public_key=public_pem(gateway.key),
        gateway_url=f"{gateway.url}/gateway.do",
        notify_url=f"{app_url}/api/v1/payments/alipay/notify",
    )
