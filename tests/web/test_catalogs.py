"""Every string the web app shows has a Chinese translation, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from mutualaid.web.i18n import LOCALE_DIR, Lang

WEB = Path(__file__).resolve().parents[2] / "src" / "mutualaid" / "web"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def extracted() -> set[str]:
    methods = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
    found: set[str] = set()
    for _, _, message, _, _ in extract_from_dir(str(WEB), methods, keywords=keywords):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_web_string_has_a_chinese_translation_with_the_same_placeholders() -> None:
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    translated = {}
    for message in catalog:
        if message.id:
            translated[_first(message.id)] = _first(message.string)
    messages = extracted()
    assert len(messages) > 400
    missing = sorted(m for m in messages if not translated.get(m))
    assert not missing, f"add these to locales/zh_CN/LC_MESSAGES/messages.po: {missing[:10]}"
    for msgid, msgstr in translated.items():
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(msgstr)), msgid


def test_a_refusal_is_told_in_the_readers_language() -> None:
    from mutualaid.domain.errors import DomainError

    error = DomainError(
        "invalid_id_number",
        "the identity number's check digit does not match (a digit was mistyped)",
        "id_number",
        details={"variant": "check_digit"},
    )
    assert Lang.of("zh_CN").explain_error(error) == "身份证号码的校验位不符（有数字输错了）"
    assert Lang.of("en").explain_error(error) == error.message
    waiting = DomainError(
        "waiting_period", "…", "diagnosed_on", details={"waiting_ends_on": "2026-06-01"}
    )
    assert "2026年6月1日" in Lang.of("zh_CN").explain_error(waiting)


def test_timeline_notes_keep_the_wording_the_services_write() -> None:
    from mutualaid.domain import claims
    from mutualaid.web.i18n import TIMELINE_NOTES

    assert all(note_format == msgid for note_format, msgid in TIMELINE_NOTES.items())
    zh = Lang.of("zh_CN")
    approved = claims.NOTE_APPROVED.format(on="2026-12-07")
    assert zh.note(approved) == zh.gettext(
        "approved subject to publicity from {on}", on="2026年12月7日"
    )
    published = claims.NOTE_PUBLISHED.format(at="2026-12-06 16:00 UTC")
    assert "2026年12月7日 00:00（UTC+8）" in zh.note(published)
    assert "16:00" not in zh.note(published)
    rejected = claims.NOTE_DISPUTABLE.format(note="a reviewer is checking your claim")
    assert zh.note(rejected).startswith(zh.gettext("a reviewer is checking your claim"))


def test_money_and_dates_follow_the_locale() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    zh, en = Lang.of("zh_CN"), Lang.of("en")
    assert zh.money(123456) == en.money(123456) == "¥1,234.56"
    assert zh.date(date(2026, 3, 1)) == "2026年3月1日"
    assert en.date(date(2026, 3, 1)) == "March 1, 2026"
    # 16:30 UTC is 00:30 the next day in Shanghai.
    instant = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    assert zh.datetime(instant, ZoneInfo("Asia/Shanghai")) == "2026年3月2日 00:30（UTC+8）"


def _first(value: object) -> str:
    """A catalog entry's text (the singular form of a plural entry)."""
    if isinstance(value, tuple | list):
        return str(value[0]) if value else ""
    return str(value or "")


def test_the_english_catalog_says_what_the_code_says() -> None:
    with (LOCALE_DIR / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="en")
    for message in catalog:
        text = _first(message.string)
        assert not message.id or not text or not re.search(r"[\u4e00-\u9fff]", text), message.id


def test_every_notification_a_service_sends_has_a_name_members_can_read() -> None:
    from mutualaid.web.i18n import NOTIFICATION_NAMES

    services = WEB.parent / "services"
    # The kind given to a notify(…)/notify_many(…) call: a payment's kind="debit" in the same
    # file is no notification.
    call = re.compile(r'\bnotify(?:_many)?\((?:(?!\bnotify).){0,600}?\bkind="([a-z_]+)"', re.S)
    sent = {kind for path in services.rglob("*.py") for kind in call.findall(path.read_text())}
    missing = sorted(k for k in sent if k not in NOTIFICATION_NAMES)
    assert not missing, f"name these in web/i18n.NOTIFICATION_NAMES: {missing}"
    assert len(sent) >= 10
    # Kinds built from a state (claims use the state names, shown by the template).
    assert {
        "objection_upheld",
        "objection_dismissed",
        "fraud_appeal_upheld",
        "fraud_appeal_dismissed",
    } <= set(NOTIFICATION_NAMES)


def test_every_log_record_and_field_has_a_name_people_can_read() -> None:
    from mutualaid.transparency.leaves import LEAF_SCHEMAS
    from mutualaid.web.i18n import LEAF_FIELD_NAMES, LEAF_NAMES

    assert set(LEAF_SCHEMAS) <= set(LEAF_NAMES)
    fields = {name for s in LEAF_SCHEMAS.values() for name in (*s.required, *s.optional)}
    assert fields <= set(LEAF_FIELD_NAMES), sorted(fields - set(LEAF_FIELD_NAMES))


def test_every_note_a_service_writes_on_a_timeline_is_in_the_catalog() -> None:
    """A note is a fixed text (FIXED_NOTES) or a format of domain/claims.py (TIMELINE_NOTES); an
    f-string written in place would reach Chinese readers in English."""
    import ast

    from mutualaid.web.i18n import FIXED_NOTES

    services = Path(__file__).resolve().parents[2] / "src" / "mutualaid" / "services"
    written: list[tuple[str, ast.expr]] = []
    for path in services.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "public_note":
                written.append((f"{path.name}:{node.value.lineno}", node.value))
    assert len(written) > 10
    for where, value in written:
        assert not isinstance(value, ast.JoinedStr), f"{where}: use a NOTE_* format"
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            assert value.value in FIXED_NOTES, f"{where}: add {value.value!r} to FIXED_NOTES"
