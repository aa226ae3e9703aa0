"""A member downloads her charge proof from her statement, and anyone checks such a file on the
public verification page, which shows each link's result in Chinese and in English."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient
from tests.factories import (
    LOCK_MARCH_7,
    MARCH_7,
    TEST_LOG_KEY,
    approved_claim,
    close_on,
    members,
    use_rules,
)
from tests.web.conftest import Browser, csrf, phone_of

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.transparency.notes import generate_signer_key


def proof_file(ctx: ServiceContext, clock: FixedClock, client: TestClient) -> str:
    use_rules(ctx)
    people = members(ctx, clock, 3)
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    close_on(ctx, clock, MARCH_7)
    holder, membership = people[1]
    member = Browser(client)
    member.log_in(phone_of(ctx, holder.account_id))
    page = f"/me/statement/{membership.id}/{MARCH_7}"
    assert "下一个检查点发布后即可生成证明" in member.get(page).text
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    html = member.get(f"{page}?lang=en").text
    assert "Your charge is in the committed charges of this period" in html
    assert html.count("✓") == 9 and "✗" not in html
    assert f"mutualaid verify charge charge-proof-xhb-main_{MARCH_7}-{membership.id}.json" in html
    download = member.get(f"{page}/charge-proof.json")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/json"
    assert "attachment" in download.headers["content-disposition"]
    assert download.json()["membership_id"] == membership.id
    return download.text


def upload(browser: Browser, text: str, lang: str = "zh_CN", **fields: str) -> tuple[int, str]:
    form = browser.get(f"/verify/charge?lang={lang}").text
    answer = browser.client.post(
        f"/verify/charge?lang={lang}",
        data={"csrf_token": csrf(form), **fields},
        files={"proof_file": ("proof.json", text.encode(), "application/json")},
    )
    return answer.status_code, answer.text


def test_a_member_downloads_her_proof_and_the_public_page_checks_every_link(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    text = proof_file(ctx, clock, client)
    public = Browser(client)
    public.client.cookies.clear()
    status, zh = upload(public, text)
    assert status == 200
    assert "每一环都成立" in zh and "检查点由日志签名" in zh and zh.count("✓") == 9
    assert "运营方公布的密钥" in zh
    status, en = upload(public, text, "en", log_key=TEST_LOG_KEY.verifier().encode())
    assert "Every link holds" in en and "Checked with the keys you gave." in en

    forged = json.loads(text)
    forged["charge_fen"] -= 1
    status, refused = upload(public, json.dumps(forged), "en")
    assert status == 200 and "A link does not hold" in refused
    assert refused.count("✓") == 8 and "✗" in refused
    assert "The block charges the member the stated amount" in refused

    other = generate_signer_key("mutualaid.example/log", seed=b"\x01" * 32)
    _, elsewhere = upload(public, text, "en", log_key=other.verifier().encode())
    assert "✗" in elsewhere and "not checked, an earlier link failed" in elsewhere
    assert "not signed by the trusted log" in elsewhere

    _, garbage = upload(public, "{}", "en")
    assert "The file is not a charge proof:" in garbage
    status, bad_key = upload(public, text, "en", log_key="not a key")
    assert status == 422 and "not a key" in bad_key


def test_the_public_page_asks_for_a_file(ctx: ServiceContext, client: TestClient) -> None:
    browser = Browser(client)
    form = browser.get("/verify/charge").text
    assert "检查分摊证明" in form and 'type="file"' in form
    answer = browser.client.post("/verify/charge", data={"csrf_token": csrf(form)})
    assert answer.status_code == 422 and "请选择分摊证明文件" in answer.text
