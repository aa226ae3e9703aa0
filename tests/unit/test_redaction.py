"""What a juror reads of free text: names and numbers out, dates and facts in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mutualaid.domain.redaction import (
    NAME_REMOVED,
    NUMBER_REMOVED,
    document_kind,
    hospital_level,
    redact,
)


def test_the_claimants_name_given_name_id_number_and_phone_are_removed() -> None:
    text = "欧阳明华（110101198006150017，13912345678）说明华在2026-02-25确诊，病理为原位癌"
    cleaned = redact(text, ["欧阳明华", "110101198006150017", "13912345678"])
    assert "欧阳" not in cleaned and "明华" not in cleaned
    assert "110101198006150017" not in cleaned and "13912345678" not in cleaned
    assert NAME_REMOVED in cleaned and NUMBER_REMOVED in cleaned
    assert "2026-02-25" in cleaned and "原位癌" in cleaned


def test_any_id_like_or_phone_like_number_and_an_introduced_name_are_removed() -> None:
    cleaned = redact("患者：李四 身份证 44030419900101002X，电话 139-1234-5678，住院 12 天")
    assert "李四" not in cleaned and "44030419900101002X" not in cleaned
    assert "139-1234-5678" not in cleaned and "住院 12 天" in cleaned


@given(st.from_regex(r"[1-9]\d{16}[0-9X]", fullmatch=True), st.text(max_size=30))
def test_no_resident_id_survives(id_number: str, around: str) -> None:
    assert id_number not in redact(f"{around} {id_number} {around}")


def test_documents_are_told_by_kind_never_by_label() -> None:
    assert document_kind("张三的诊断证明") == "diagnosis_certificate"
    assert document_kind("Pathology report p.2") == "pathology_report"
    assert document_kind("身份证正面") == "identity_document"
    assert document_kind("张三") == "other"


def test_hospitals_are_told_by_level_never_by_name() -> None:
    assert hospital_level("浙江大学医学院附属第一医院") == "tertiary"
    assert hospital_level("杭州市第一人民医院") == "secondary"
    assert hospital_level("淳安县人民医院") == "county"
    assert hospital_level("梅林镇卫生院") == "primary"
    assert hospital_level("仁爱医院") == "unknown"
