"""Alipay's RSA2 signing rules: which parameters are signed, and that any change breaks it."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from mutualaid.services.payments.alipay import fen_of, parse_statement, yuan
from mutualaid.services.payments.signatures import (
    NOTIFICATION_EXCLUDED,
    REQUEST_EXCLUDED,
    response_node,
    rsa2_verify,
    sign_notification,
    sign_request,
    signed_response,
    signing_string,
    verify_notification,
    verify_request,
)

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)

keys = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_"), min_size=1, max_size=12)
values = st.text(min_size=1, max_size=30).filter(lambda v: "\x00" not in v)
params = st.dictionaries(keys, values, min_size=1, max_size=8).map(
    lambda d: {k: v for k, v in d.items() if k not in ("sign", "sign_type")}
)


def test_the_signing_string_is_sorted_raw_and_leaves_out_sign_and_empty_values() -> None:
    fields = {
        "total_amount": "2.16",
        "app_id": "2021",
        "sign": "x",
        "sign_type": "RSA2",
        "body": "",
        "notify_url": "http://a.example/n?x=1&y=2",
        "subject": "互助 share",
    }
    assert signing_string(fields, REQUEST_EXCLUDED) == (
        "app_id=2021&notify_url=http://a.example/n?x=1&y=2&sign_type=RSA2"
        "&subject=互助 share&total_amount=2.16"
    )
    assert signing_string(fields, NOTIFICATION_EXCLUDED) == (
        "app_id=2021&notify_url=http://a.example/n?x=1&y=2&subject=互助 share&total_amount=2.16"
    )


@settings(max_examples=40, deadline=None)
@given(params, st.data())
def test_a_signed_notification_verifies_and_any_change_breaks_it(
    fields: dict[str, str], data: st.DataObject
) -> None:
    signed = sign_notification(fields, KEY)
    assert verify_notification(signed, KEY.public_key())
    assert not verify_notification(sign_notification(fields, OTHER), KEY.public_key())
    name = data.draw(st.sampled_from(sorted(fields)))
    changed = {**signed, name: signed[name] + "0"}
    assert not verify_notification(changed, KEY.public_key())
    assert not verify_notification({**signed, "sign_type": "RSA"}, KEY.public_key())


@settings(max_examples=20, deadline=None)
@given(params)
def test_a_request_signature_covers_sign_type(fields: dict[str, str]) -> None:
    signed = sign_request({**fields, "sign_type": "RSA2"}, KEY)
    assert verify_request(signed, KEY.public_key())
    assert not verify_request({**signed, "sign_type": "RSA"}, KEY.public_key())


def test_a_response_is_verified_over_the_exact_text_of_its_node() -> None:
    body = signed_response("alipay.trade.pay", {"code": "10000", "msg": "{不}"}, KEY)
    node = response_node(body, "alipay.trade.pay")
    assert node == '{"code":"10000","msg":"{不}"}'
    assert rsa2_verify(node, json.loads(body)["sign"], KEY.public_key())
    assert not rsa2_verify(
        node.replace("10000", "10003"), json.loads(body)["sign"], KEY.public_key()
    )
    assert response_node(body, "alipay.trade.query") is None


@given(st.integers(min_value=0, max_value=10**12))
def test_amounts_go_to_yuan_and_back_exactly(amount: int) -> None:
    assert fen_of(yuan(amount)) == amount


def test_a_statement_zip_in_gbk_is_read_from_its_header_row() -> None:
    import io
    import zipfile

    text = (
        "#支付宝业务明细查询\n支付宝交易号,商户订单号,业务类型,订单金额（元）\n"
        "2026031422001,MA01,交易,2.16\n2026032111007,MA02,转账,1000.00\n#业务明细列表结束\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("bill.csv", text.encode("gbk"))
    lines = parse_statement(buffer.getvalue())
    assert [(x.out_ref, x.reference, x.amount_fen, x.kind) for x in lines] == [
        ("MA01", "2026031422001", 216, "debit"),
        ("MA02", "2026032111007", 100_000, "transfer"),
    ]
