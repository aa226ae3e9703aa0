"""What a juror may read of a case: free text with names and numbers taken out, documents by kind,
hospitals by level. Pure functions (no I/O): the service hands in the claimant's own name, ID
number and phone, which are removed wherever they appear, and every ID- or phone-like number is
removed whoever's it is."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: What stands where something was removed (the page translates these words).
NAME_REMOVED = "[name removed]"
NUMBER_REMOVED = "[number removed]"

# A resident ID (18 characters, the last may be X; or the old 15 digits), a mobile number, a
# bank card: any run of 11 or more digits (spaces or dashes between them allowed; a date has 8).
_LONG_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){10,}[0-9Xx]?(?![0-9A-Za-z])")
# "Name: 张三" / "姓名：张三" / "患者张三": a Chinese name after a word that introduces one.
_NAMED = re.compile(
    r"(姓名|患者|病人|申请人|会员|本人|name|patient)\s*[:：]?\s*[\u4e00-\u9fff]{2,4}", re.IGNORECASE
)


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` without the `known` strings (names, ID numbers, phones: longest first, and a Chinese
    full name's given name too) and without any long number or introduced name."""
    out = text
    secrets = sorted({k.strip() for k in known if k and len(k.strip()) >= 2}, key=len, reverse=True)
    for secret in secrets:
        replacement = NUMBER_REMOVED if any(ch.isdigit() for ch in secret) else NAME_REMOVED
        out = re.sub(re.escape(secret), replacement, out, flags=re.IGNORECASE)
    for secret in secrets:  # 欧阳明华 → also 明华; 张三丰 → also 三丰 (a given name of 2+ chars)
        if _is_chinese(secret) and len(secret) >= 3:
            given = secret[2:] if len(secret) >= 4 else secret[1:]
            if len(given) >= 2:
                out = out.replace(given, NAME_REMOVED)
    out = _LONG_NUMBER.sub(NUMBER_REMOVED, out)
    return _NAMED.sub(lambda m: f"{m.group(1)} {NAME_REMOVED}", out)


def _is_chinese(text: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in text)


#: Kinds of document, recognised from the words of the member's label (zh or en), in this order.
DOCUMENT_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pathology_report", ("病理", "活检", "pathology", "biopsy")),
    ("diagnosis_certificate", ("诊断", "diagnos")),
    ("discharge_summary", ("出院", "discharge")),
    ("hospital_record", ("病历", "住院", "入院", "门诊", "record", "admission")),
    ("imaging_report", ("影像", "CT", "MRI", "核磁", "X光", "B超", "超声", "scan", "imaging")),
    ("lab_report", ("化验", "检验", "血常规", "lab", "test result")),
    ("bill", ("发票", "费用", "收据", "invoice", "bill", "receipt")),
    ("identity_document", ("身份证", "户口", "identity", "ID card", "passport")),
    ("investigation_note", ("调查", "走访", "investigat", "visit")),
)


def document_kind(label: str) -> str:
    """A document's kind from its label ("other" when no word says): never the label itself,
    which a member may have written their name into."""
    lowered = label.lower()
    for kind, words in DOCUMENT_KINDS:
        if any(word.lower() in lowered for word in words):
            return kind
    return "other"


#: Hospital levels, recognised from the hospital's name, most specific first.
HOSPITAL_LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tertiary", ("三甲", "三级", "大学", "医学院", "附属", "省立", "省人民", "省")),
    ("secondary", ("二甲", "二级", "市", "区人民", "中心医院")),
    ("county", ("县", "旗")),
    ("primary", ("一级", "卫生院", "社区", "乡", "镇", "诊所", "卫生服务")),
)


def hospital_level(name: str) -> str:
    """tertiary (a provincial or university hospital, 三级), secondary (a city's, 二级), county,
    primary (a township or community clinic), or unknown: a level, never the hospital's name."""
    for level, words in HOSPITAL_LEVELS:
        if any(word in name for word in words):
            return level
    return "unknown"
