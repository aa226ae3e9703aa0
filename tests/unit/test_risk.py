"""The risk scorer on hand-built claims: each signal's pattern, its innocent look-alikes, the score,
explanations, weight advice, and properties that hold for any population (Hypothesis)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from mutualaid.domain.errors import DomainError
from mutualaid.domain.risk import (
    BY_CODE,
    CODES,
    DEFAULT_PARAMS,
    SIGNALS,
    ClaimLinks,
    InvestigationMode,
    SignalCode,
    SignalRecord,
    advise_weights,
    explain,
    investigation_mode,
    level_of,
)
from mutualaid.domain.risk_scores import (
    BAND_BITS,
    BANDS,
    NO_DATE,
    ClaimColumns,
    EvidenceColumns,
    LinkKind,
    age_band,
    age_band_bounds,
    band_probes,
    links_of,
    phash_band,
    score_claims,
)
from mutualaid.services.risk.risk import difference_hash

DAY = date(2026, 3, 1).toordinal()


def column(values: list[int]) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(values, dtype=np.int64)


def claims(n: int, **overrides: list[int] | list[bool]) -> ClaimColumns:
    """n unrelated, unremarkable claims: different families, joined two years before, diagnosed
    long after the waiting period, different hospitals and provinces, no contacts given."""
    base: dict[str, np.ndarray] = {  # type: ignore[type-arg]
        "person": column(list(range(n))),
        "account": column(list(range(n))),
        "joined": column([DAY - 700] * n),
        "covered_from": column([DAY - 609] * n),
        "diagnosed": column([DAY - 10] * n),
        "reported": column([DAY - i for i in range(n)]),
        "accident": np.zeros(n, dtype=bool),
        "illness": column([i % 5 for i in range(n)]),
        "age": column([35] * n),
        "province": column([i % 7 for i in range(n)]),
        "hospital": column(list(range(n))),
        "doctor": column([-1] * n),
        "phone": column([-1] * n),
        "payee": column([-1] * n),
        "address": column([-1] * n),
        "device": column([-1] * n),
        "earliest_document": column([NO_DATE] * n),
    }
    for name, values in overrides.items():
        base[name] = np.asarray(values, dtype=bool if name == "accident" else np.int64)
    return ClaimColumns(**base)


def evidence(rows: list[tuple[int, int, int | None]]) -> EvidenceColumns:
    """(claim row, file code, image hash or None)."""
    return EvidenceColumns(
        claim=column([r[0] for r in rows]),
        sha=column([r[1] for r in rows]),
        phash=np.asarray([r[2] or 0 for r in rows], dtype=np.uint64),
        has_phash=np.asarray([r[2] is not None for r in rows], dtype=bool),
    )


def fired(c: ClaimColumns, e: EvidenceColumns | None = None) -> list[set[str]]:
    result = score_claims(c, e or EvidenceColumns.empty())
    return [{str(s.code) for s in result.signals_of(i)} for i in range(len(c))]


def test_unremarkable_claims_fire_nothing_and_score_zero() -> None:
    result = score_claims(claims(6), EvidenceColumns.empty())
    assert not result.fired.any() and result.score.tolist() == [0] * 6


class TestLinks:
    def test_a_payee_shared_by_two_families_flags_both(self) -> None:
        assert fired(claims(3, payee=[7, 7, -1])) == [{"shared_payee"}, {"shared_payee"}, set()]

    def test_one_family_filing_twice_is_not_a_link(self) -> None:
        c = claims(2, account=[1, 1], phone=[3, 3], device=[4, 4])
        assert fired(c) == [set(), set()]

    def test_the_explanation_counts_the_other_families(self) -> None:
        result = score_claims(claims(4, device=[2, 2, 2, 2]), EvidenceColumns.empty())
        [signal] = result.signals_of(0)
        assert signal.explain() == (
            "设备也出现在另外 3 个家庭的申请中",
            "the device also appears on claims of 3 other families",
        )

    def test_links_of_names_each_shared_thing(self) -> None:
        c = claims(3, payee=[1, 1, -1], doctor=[5, 5, 5])
        e = evidence([(0, 1, 0xF0F0), (2, 1, 0xF0F0)])
        assert links_of(c, e, 0) == {
            1: {LinkKind.PAYEE, LinkKind.DOCTOR},
            2: {LinkKind.DOCTOR, LinkKind.SAME_FILE},
        }


class TestEvidence:
    def test_the_same_file_for_two_patients_flags_both_but_one_patients_own_reuse_does_not(
        self,
    ) -> None:
        c = claims(4, person=[1, 2, 3, 3])
        e = evidence([(0, 10, None), (1, 10, None), (2, 11, None), (3, 11, None)])
        assert fired(c, e) == [{"same_file"}, {"same_file"}, set(), set()]

    def test_a_near_copy_of_another_patients_image_is_found_within_the_threshold(self) -> None:
        image = 0x0123_4567_89AB_CDEF
        e = evidence(
            [
                (0, 1, image),
                (1, 2, image ^ 0b101101),
                (2, 3, image ^ (0b1111111 << 20)),
                (3, 4, ~image & (2**64 - 1)),
            ]
        )
        result = fired(claims(4), e)
        # 4 bits apart: a near-duplicate; 7 bits apart: not (the threshold is 6).
        assert result == [{"near_duplicate_image"}, {"near_duplicate_image"}, set(), set()]

    def test_a_record_dated_before_joining_within_the_look_back_contradicts_the_declaration(
        self,
    ) -> None:
        c = claims(3, earliest_document=[DAY - 720, DAY - 700 - 731, DAY - 700])
        assert fired(c) == [{"records_before_joining"}, set(), set()]


class TestTimeline:
    def test_a_diagnosis_in_the_first_30_days_after_waiting_is_flagged_unless_an_accident(
        self,
    ) -> None:
        c = claims(
            4,
            diagnosed=[DAY - 609, DAY - 580, DAY - 579, DAY - 609],
            accident=[False, False, False, True],
        )
        assert [s - {"diagnosis_near_joining"} for s in fired(c)] == [
            {"soon_after_waiting"},
            {"soon_after_waiting"},
            set(),
            set(),
        ]

    def test_an_accident_just_after_joining_is_flagged(self) -> None:
        c = claims(2, diagnosed=[DAY - 690, DAY - 600], accident=[True, True])
        assert fired(c) == [{"diagnosis_near_joining"}, set()]
        assert (
            explain(SignalCode.DIAGNOSIS_NEAR_JOINING, 10)[1] == "diagnosed 10 days after joining"
        )


def population(n: int, seed: int) -> ClaimColumns:
    rng = np.random.default_rng(seed)
    return claims(
        n,
        reported=column((DAY - rng.integers(0, 540, n)).tolist()),
        hospital=column(rng.integers(0, 40, n).tolist()),
        doctor=column(rng.integers(0, 400, n).tolist()),
        illness=column(rng.integers(0, 10, n).tolist()),
        age=column(rng.integers(18, 60, n).tolist()),
        province=column(rng.integers(0, 31, n).tolist()),
    )


class TestStatistics:
    def test_a_new_clinic_suddenly_on_many_claims_is_frequent_but_a_steady_big_hospital_is_not(
        self,
    ) -> None:
        base = population(600, 1)
        hospital = base.hospital.copy()
        hospital[:200] = 99  # a big hospital, steady over the 18 months
        reported = base.reported.copy()
        hospital[200:210] = 77  # a clinic never seen before: 10 claims in the last 40 days
        reported[200:210] = DAY - np.arange(10) * 4
        c = replace(base, hospital=hospital, reported=reported)
        result = fired(c)
        assert all("frequent_hospital" in result[i] for i in range(200, 210))
        assert not any("frequent_hospital" in result[i] for i in range(200))

    def test_a_rare_illness_clustered_in_one_province_and_age_band_is_an_outlier(self) -> None:
        base = population(600, 2)
        illness, age, province, reported = (
            base.illness.copy(),
            base.age.copy(),
            base.province.copy(),
            base.reported.copy(),
        )
        illness[:8], age[:8], province[:8], reported[:8] = 50, 33, 5, DAY - np.arange(8) * 7
        result = score_claims(
            replace(base, illness=illness, age=age, province=province, reported=reported),
            EvidenceColumns.empty(),
        )
        column_of = CODES.index(SignalCode.OUTLIER_CELL)
        assert result.fired[:8, column_of].all() and not result.fired[8:, column_of].any()
        assert result.first[0, column_of] == 8


class TestScore:
    def test_the_score_is_the_sum_of_weights_capped_at_100_and_sets_level_and_mode(self) -> None:
        c = claims(2, payee=[1, 1], device=[2, 2], phone=[3, 3], address=[4, 4])
        result = score_claims(c, EvidenceColumns.empty())
        assert result.score.tolist() == [100, 100]  # 35 + 25 + 25 + 15
        assert level_of(49) == "medium" and level_of(50) == "high" and level_of(24) == "low"
        assert investigation_mode(40) is InvestigationMode.FIELD
        assert investigation_mode(39) is InvestigationMode.DESK

    def test_tuned_weights_replace_the_defaults(self) -> None:
        params = replace(DEFAULT_PARAMS, weights=((SignalCode.SHARED_PAYEE, 12),))
        result = score_claims(claims(2, payee=[1, 1]), EvidenceColumns.empty(), params)
        assert result.score.tolist() == [12, 12]
        assert [s.weight for s in result.signals_of(0)] == [12]

    def test_every_signal_is_documented_with_labels_and_a_reason(self) -> None:
        assert len(SIGNALS) == len(CODES) == len(set(CODES))
        for signal in SIGNALS:
            assert signal.label_zh and signal.label_en and len(signal.reason) > 60
            assert 0 < signal.weight <= 60
            zh, en = explain(signal.code, 3, 1.5)
            assert "3" in zh and "3" in en


small_populations = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, 2**31 - 1), st.permutations(list(range(n))))
)


@settings(max_examples=60, deadline=None)
@given(small_populations)
def test_the_order_of_claims_changes_no_claims_signals(case: tuple[int, int, list[int]]) -> None:
    n, seed, order = case
    rng = np.random.default_rng(seed)

    def pick(high: int, missing: float = 0.3) -> list[int]:
        return [int(v) if rng.random() > missing else -1 for v in rng.integers(0, high, n)]

    c = claims(
        n,
        account=column(rng.integers(0, max(1, n // 2), n).tolist()).tolist(),
        payee=pick(4),
        phone=pick(4),
        device=pick(3),
        address=pick(5),
        doctor=pick(3),
        hospital=column(rng.integers(0, 3, n).tolist()).tolist(),
        reported=(DAY - rng.integers(0, 400, n)).tolist(),
        diagnosed=(DAY - rng.integers(550, 640, n)).tolist(),
    )
    images = [
        (i, int(rng.integers(0, 5)), int(rng.integers(0, 2**62)) if rng.random() < 0.7 else None)
        for i in range(n)
        for _ in range(2)
    ]
    e = evidence(images)
    result = score_claims(c, e)
    perm = np.asarray(order)
    inverse = np.argsort(perm)
    shuffled = ClaimColumns(**{name: getattr(c, name)[perm] for name in ClaimColumns.__slots__})
    shuffled_e = replace(e, claim=inverse[e.claim])
    again = score_claims(shuffled, shuffled_e)
    assert (again.fired == result.fired[perm]).all()
    assert (again.score == result.score[perm]).all()
    assert (result.score == np.minimum(result.fired.astype(int) @ result.weights, 100)).all()


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 200)),
        min_size=len(SIGNALS),
        max_size=len(SIGNALS),
    )
)
def test_weight_advice_moves_only_with_enough_feedback_and_with_its_sign(
    answers: list[tuple[int, int]],
) -> None:
    records = [
        SignalRecord(s.code, s.weight, 0, useful, not_useful, 0, 0)
        for s, (useful, not_useful) in zip(SIGNALS, answers, strict=True)
    ]
    for record, advice in zip(records, advise_weights(records), strict=True):
        feedback = record.useful + record.not_useful
        assert 0 <= advice.suggested <= 60
        if feedback < 10:
            assert advice.suggested == record.weight
        elif record.useful > record.not_useful + 1:
            assert advice.suggested >= record.weight or advice.suggested == 60
        elif record.not_useful > record.useful + 1:
            assert advice.suggested <= record.weight


def test_links_are_normalised_so_spacing_and_dashes_do_not_hide_a_match() -> None:
    a = ClaimLinks(
        contact_phone="138 0000-0000", payee_account="6222 0210", address=" 北京市 朝阳区 "
    )
    b = ClaimLinks(contact_phone="13800000000", payee_account="62220210", address="北京市 朝阳区")
    assert a.normalized() == b.normalized()
    with pytest.raises(DomainError) as refused:
        ClaimLinks(address="x" * 301).normalized()
    assert refused.value.code == "invalid_address"
    assert refused.value.field == "address"


def png(image: Image.Image, kind: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def test_the_difference_hash_survives_resaving_and_tells_different_pictures_apart() -> None:
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize((800, 600))
    other = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize((800, 600))
    original = int(difference_hash(png(picture)) or "0", 16)
    variants = [
        png(picture.resize((400, 300)), "JPEG", quality=60),
        png(picture.filter(ImageFilter.GaussianBlur(1))),
        png(picture.convert("L")),
    ]
    for data in variants:
        assert bin(original ^ int(difference_hash(data) or "0", 16)).count("1") <= 6
    assert bin(original ^ int(difference_hash(png(other)) or "0", 16)).count("1") > 16
    assert difference_hash(b"%PDF-1.4 not an image") is None
    assert BY_CODE[SignalCode.NEAR_DUPLICATE_IMAGE].weight == 30


@settings(max_examples=200)
@given(st.integers(0, 2**64 - 1), st.sets(st.integers(0, 63), max_size=6))
def test_an_image_within_six_bits_shares_a_probed_band_value(phash: int, flips: set[int]) -> None:
    other = phash ^ sum(1 << b for b in flips)
    assert any(phash_band(other, band) in band_probes(phash, band) for band in range(BANDS))


def test_band_probes_reach_one_bit_per_band_and_age_bands_match_their_bounds() -> None:
    assert len(band_probes(0, 0)) == 1 + BAND_BITS
    assert (
        phash_band(0x1234_5678_9ABC_DEF0, 0) == 0x1234
        and phash_band(0x1234_5678_9ABC_DEF0, 3) == 0xDEF0
    )
    for band in range(6):
        low, high = age_band_bounds(band)
        ages = column(list(range(low, high + 1)))
        assert set(age_band(ages).tolist()) == {band}
    assert age_band(column([0, 19, 20, 59, 60, 120])).tolist() == [0, 0, 1, 4, 5, 5]
