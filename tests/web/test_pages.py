"""Pages render in both languages, label every input, keep personal data off public pages, and
answer refusals with a page in the reader's language (never a stack trace)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from tests.factories import account
from tests.web.conftest import Browser, phone_of, published_case

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.transparency.notes import generate_signer_key

PUBLIC_PAGES = [
    "/",
    "/plans/xhb-main",
    "/notices",
    "/plans/xhb-main/notices",
    "/plans/xhb-main/statistics",
    "/transparency",
    "/login",
    "/register",
]


@pytest.mark.parametrize(
    ("lang", "html_lang", "word"), [("zh_CN", "zh-CN", "互助计划"), ("en", "en", "Mutual aid")]
)
def test_public_pages_render_in_both_languages(
    client: TestClient, lang: str, html_lang: str, word: str
) -> None:
    for path in PUBLIC_PAGES:
        response = client.get(f"{path}?lang={lang}")
        assert response.status_code == 200, path
        assert f'<html lang="{html_lang}">' in response.text, path
        assert word in response.text, path


def test_chinese_is_the_default_and_the_switch_is_remembered(client: TestClient) -> None:
    assert '<html lang="zh-CN">' in client.get("/").text
    client.get("/?lang=en")
    assert '<html lang="en">' in client.get("/plans/xhb-main").text
    client.get("/login?lang=zh_CN")
    assert '<html lang="zh-CN">' in client.get("/").text


def test_the_plan_page_states_the_rules_in_plain_words(client: TestClient) -> None:
    zh = client.get("/plans/xhb-main?lang=zh_CN").text
    assert "90天等待期" in zh and "¥300,000.00" in zh and "¥0.10" in zh and "¥188.00" in zh
    en = client.get("/plans/xhb-main?lang=en").text
    assert "waiting period of 90 days" in en and "8% of the aid" in en


def test_public_pages_show_no_personal_data_and_no_evidence(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    case = published_case(ctx, clock)
    publish_checkpoint(ctx, LogConfig(generate_signer_key("mutualaid.example/log")))
    phone = phone_of(ctx, case.member.account_id)
    day = client.get("/plans/xhb-main/notices").text.split("/plans/xhb-main/notices/")[1][:10]
    pages = [*PUBLIC_PAGES, f"/verify/claim/{case.ref}", f"/plans/xhb-main/notices/{day}"]
    for path in pages:
        for lang in ("zh_CN", "en"):
            html = client.get(f"{path}?lang={lang}").text
            for secret in (case.full_name, case.id_number, case.hospital, phone, "/evidence"):
                assert secret not in html, (path, secret)
    notices = client.get("/notices").text
    assert "欧**华" in notices and case.ref in notices


def test_the_public_verification_page_checks_the_claims_proof(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    case = published_case(ctx, clock)
    assert "透明日志尚未发布检查点" in client.get(f"/verify/claim/{case.ref}").text
    publish_checkpoint(ctx, LogConfig(generate_signer_key("mutualaid.example/log")))
    page = client.get(f"/verify/claim/{case.ref}?lang=en").text
    assert "All checks passed." in page
    assert f"mutualaid verify bundle proof-claim-{case.ref}.json" in page
    bundle = client.get(f"/verify/claim/{case.ref}/bundle.json")
    assert bundle.headers["content-type"] == "application/json"
    assert bundle.json()["subject"] == {"type": "claim", "ref": case.ref}


class _Inputs(HTMLParser):
    """Collects form controls and the labels that name them."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self._label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "label":
            self._label_depth += 1
            if values.get("for"):
                self.label_for.add(str(values["for"]))
        elif tag in ("input", "select", "textarea") and values.get("type") not in (
            "hidden",
            "submit",
        ):
            self.controls.append({**values, "wrapped": "yes" if self._label_depth else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1


def test_every_form_control_has_a_label(
    ctx: ServiceContext, clock: FixedClock, browser: Browser
) -> None:
    case = published_case(ctx, clock)
    pages = [
        "/login",
        "/register",
        "/plans/xhb-main/join",
        "/me",
        "/claims/new",
        f"/claims/{case.ref}/objection",
        "/jury/certification",
    ]
    member = account(ctx)
    browser.log_in(phone_of(ctx, member.account_id))
    checked = 0
    for path in pages:
        html = browser.get(path).text
        parser = _Inputs()
        parser.feed(html)
        for control in parser.controls:
            assert control["wrapped"] or control.get("id") in parser.label_for, (path, control)
            checked += 1
    staff = Browser(browser.client)
    staff.submit("/me", "/logout", {})
    staff.log_in(phone_of(ctx, account(ctx, Role.OPERATOR).account_id))
    for path in (
        "/staff",
        f"/staff/claims/{case.ref}",
        "/staff/audit",
        "/staff/plans/xhb-main",
        "/staff/plans/xhb-main/periods",
    ):
        parser = _Inputs()
        parser.feed(staff.get(path).text)
        for control in parser.controls:
            assert control["wrapped"] or control.get("id") in parser.label_for, (path, control)
            checked += 1
    assert checked > 40


def test_a_missing_claim_is_a_page_in_the_readers_language(member_browser: Browser) -> None:
    response = member_browser.get("/claims/C0000-NOPE")
    assert response.status_code == 404
    assert "没有编号为 C0000-NOPE 的申请" in response.text
    assert "Traceback" not in response.text
    english = member_browser.get("/claims/C0000-NOPE?lang=en")
    assert "there is no claim C0000-NOPE" in english.text


def test_static_assets_are_served_from_the_app(client: TestClient) -> None:
    assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert "https://" not in client.get("/").text.split("<body")[0]
