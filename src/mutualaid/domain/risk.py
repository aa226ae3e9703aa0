"""Risk signals: which claims deserve a reviewer's closer look, and why. Never a decision.

Every signal has a code, a weight (points added to the claim's risk score), labels in zh_CN and en,
and a documented reason (docs/risk.md). The scorer is vectorised: it takes the plan's recent claims
and their evidence as NumPy columns and answers every claim at once, so a batch of thousands is
scored in milliseconds. A claim's score only directs effort (field investigation or desk review,
which case first); no claim is ever rejected by a score.

Dates enter as day ordinals (`date.toordinal()`); strings (hospital, doctor, hashed contacts) enter
as integer codes (`factorize`), -1 where the claim gave none.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.errors import DomainError

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
Floats = NDArray[np.float64]

#: The "no document date" ordinal: later than any real date, so it never precedes a joining date.
NO_DATE = 10**7


class SignalCode(StrEnum):
    SAME_FILE = "same_file"
    NEAR_DUPLICATE_IMAGE = "near_duplicate_image"
    SOON_AFTER_WAITING = "soon_after_waiting"
    DIAGNOSIS_NEAR_JOINING = "diagnosis_near_joining"
    RECORDS_BEFORE_JOINING = "records_before_joining"
    SHARED_PHONE = "shared_phone"
    SHARED_PAYEE = "shared_payee"
    SHARED_ADDRESS = "shared_address"
    SHARED_DEVICE = "shared_device"
    FREQUENT_HOSPITAL = "frequent_hospital"
    FREQUENT_DOCTOR = "frequent_doctor"
    OUTLIER_CELL = "outlier_cell"


@dataclass(frozen=True, slots=True)
class Signal:
    code: SignalCode
    weight: int
    label_zh: str
    label_en: str
    #: Why this pattern is worth a look, and when it is innocent (shown in docs and to reviewers).
    reason: str


SIGNALS: tuple[Signal, ...] = (
    Signal(SignalCode.SAME_FILE, 40, "证据文件与他人申请相同", "Same evidence file as another person's claim",
           "The exact same file (SHA-256) is attached to a claim of a different person. A diagnosis "
           "certificate or photo belongs to one patient; reuse is the commonest document fraud. "
           "Innocent when a shared family document (household register) was uploaded for two "
           "relatives."),
    Signal(SignalCode.NEAR_DUPLICATE_IMAGE, 30, "图片与他人证据几乎相同",
           "Image nearly identical to another person's evidence",
           "A different file whose picture is nearly the same (difference hash within the "
           "threshold) is attached to a claim of a different person: a re-saved, resized or "
           "lightly edited copy. Innocent for blank forms or printed templates photographed alike."),
    Signal(SignalCode.SOON_AFTER_WAITING, 10, "等待期刚结束即确诊", "Diagnosed just after the waiting period",
           "A non-accident illness diagnosed within the first days after the waiting period ended. "
           "People who know they are ill may join and wait out the period. Many honest claims also "
           "fall here, so the weight is low."),
    Signal(SignalCode.DIAGNOSIS_NEAR_JOINING, 15, "确诊日期接近加入日期", "Diagnosis close to the joining date",
           "The diagnosis is dated within days of joining (possible only for accident claims, which "
           "the waiting period does not hold back): an 'accident' may be a known illness."),
    Signal(SignalCode.RECORDS_BEFORE_JOINING, 35, "病历早于加入日期(与健康告知矛盾)",
           "Medical records predate joining (contradicts the health declaration)",
           "A medical document attached to the claim is dated before the member joined, within the "
           "health declaration's look-back (two years), while every declaration answer was 'no'."),
    Signal(SignalCode.SHARED_PHONE, 25, "联系电话与其他家庭的申请相同", "Contact phone shared with another family's claim",
           "The contact phone given on the claim also appears on a claim of another account: one "
           "person filing for several unrelated families."),
    Signal(SignalCode.SHARED_PAYEE, 35, "收款账户与其他家庭的申请相同", "Payee account shared with another family's claim",
           "The aid would be paid to an account that also receives another family's aid: the "
           "strongest link in organised claim rings."),
    Signal(SignalCode.SHARED_ADDRESS, 15, "地址与其他家庭的申请相同", "Address shared with another family's claim",
           "The same address on claims of different accounts. Weak alone (neighbours, care homes, "
           "shared housing), stronger with other links."),
    Signal(SignalCode.SHARED_DEVICE, 25, "设备与其他家庭的申请相同", "Device shared with another family's claim",
           "The claim was filed from a device that also filed another account's claim: an agent "
           "filing on behalf of many."),
    Signal(SignalCode.FREQUENT_HOSPITAL, 15, "医院近期申请异常增多", "Hospital appearing unusually often",
           "The hospital's claims in the last window far exceed its own earlier rate in this plan "
           "(Poisson bound): a small clinic suddenly issuing many certificates."),
    Signal(SignalCode.FREQUENT_DOCTOR, 20, "医生近期申请异常增多", "Doctor appearing unusually often",
           "The certifying doctor appears on far more recent claims than their earlier rate: one "
           "doctor signing for a ring."),
    Signal(SignalCode.OUTLIER_CELL, 15, "病种·年龄段·地区统计异常", "Statistical outlier: illness, age band and region",
           "Recent claims of this illness in this age band and province far exceed what the plan's "
           "own history predicts (illness-and-age count × the province's share of claims)."),
)

BY_CODE: dict[SignalCode, Signal] = {s.code: s for s in SIGNALS}
CODES: tuple[SignalCode, ...] = tuple(s.code for s in SIGNALS)
_COLUMN = {code: i for i, code in enumerate(CODES)}


class InvestigationMode(StrEnum):
    FIELD = "field"
    DESK = "desk"


class RiskLevel(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class RiskParams:
    """Thresholds of the signals (the documented defaults; docs/risk.md explains each)."""

    #: Days after the waiting period within which a diagnosis counts as "soon after".
    soon_after_waiting_days: int = 30
    #: Days after joining within which a diagnosis counts as "close to joining".
    near_joining_days: int = 30
    #: How far before joining a medical document contradicts the declaration (its look-back).
    declaration_lookback_days: int = 730
    #: Hamming distance (of 64 bits) at or under which two image hashes are near-duplicates.
    near_duplicate_bits: int = 6
    #: Frequency signals: the recent window, the earlier history it is compared with, the least
    #: history needed, the least count, and how many standard deviations above the key's own
    #: rate the window's count must be (a binomial test of window vs history).
    recent_days: int = 90
    history_days: int = 365
    min_history_days: int = 90
    frequency_min_count: int = 5
    frequency_z: float = 4.0
    #: Outlier cells: the window, and observed >= max(min_count, factor x expected + slack).
    outlier_days: int = 180
    outlier_min_count: int = 6
    outlier_factor: float = 3.0
    outlier_slack: float = 4.0
    #: Score at or above which a case goes to field investigation, and the level thresholds.
    field_threshold: int = 40
    high_threshold: int = 50
    medium_threshold: int = 25

    @property
    def lookback_days(self) -> int:
        """How much history the scorer needs before the newest claim."""
        return max(self.recent_days + self.history_days, self.outlier_days)


DEFAULT_PARAMS = RiskParams()


def level_of(score: int, params: RiskParams = DEFAULT_PARAMS) -> RiskLevel:
    if score >= params.high_threshold:
        return RiskLevel.HIGH
    return RiskLevel.MEDIUM if score >= params.medium_threshold else RiskLevel.LOW


def investigation_mode(score: int, params: RiskParams = DEFAULT_PARAMS) -> InvestigationMode:
    """High risk goes to a field investigator; everything else to a desk review."""
    return InvestigationMode.FIELD if score >= params.field_threshold else InvestigationMode.DESK


def age_band(age: Ints) -> Ints:
    """0-17, 18-29, 30-39, 40-49, 50-59, 60+ as 0..5."""
    return np.clip((age - 10) // 10, 0, 5).astype(np.int64)


def factorize(values: Sequence[Hashable | None]) -> Ints:
    """Integer codes for values (equal values, equal codes); None becomes -1."""
    seen: dict[Hashable, int] = {}
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        out[i] = -1 if value is None else seen.setdefault(value, len(seen))
    return out


@dataclass(frozen=True, slots=True)
class ClaimColumns:
    """One row per claim; every array has the same length."""

    person: Ints
    account: Ints
    joined: Ints
    covered_from: Ints
    diagnosed: Ints
    reported: Ints
    accident: Bools
    illness: Ints
    age: Ints
    province: Ints
    hospital: Ints
    doctor: Ints
    phone: Ints
    payee: Ints
    address: Ints
    device: Ints
    #: The earliest date on the claim's medical documents, NO_DATE when none is dated.
    earliest_document: Ints

    def __len__(self) -> int:
        return int(self.person.shape[0])


@dataclass(frozen=True, slots=True)
class EvidenceColumns:
    """One row per evidence file: the claim it belongs to (row in ClaimColumns), its SHA-256 code
    and its 64-bit image difference hash (has_phash False for documents that are not images)."""

    claim: Ints
    sha: Ints
    phash: NDArray[np.uint64]
    has_phash: Bools

    @staticmethod
    def empty() -> EvidenceColumns:
        none = np.zeros(0, dtype=np.int64)
        return EvidenceColumns(none, none, np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool))


@dataclass(frozen=True, slots=True)
class RiskResult:
    """`fired[i, s]`: signal CODES[s] fired on claim i; `first`/`second` its measured values
    (e.g. days, counts, expected counts) for the explanation; `score` the capped sum of weights."""

    fired: Bools
    first: Floats
    second: Floats
    score: Ints
    weights: Ints = field(repr=False)

    def signals_of(self, i: int) -> list[FiredSignal]:
        return [FiredSignal(CODES[s], int(self.weights[s]), float(self.first[i, s]),
                            float(self.second[i, s]))
                for s in np.flatnonzero(self.fired[i])]


@dataclass(frozen=True, slots=True)
class FiredSignal:
    code: SignalCode
    weight: int
    first: float
    second: float

    def explain(self) -> tuple[str, str]:
        return explain(self.code, self.first, self.second)


def weights_vector(weights: Mapping[SignalCode, int] | None = None) -> Ints:
    given = weights or {}
    return np.array([given.get(s.code, s.weight) for s in SIGNALS], dtype=np.int64)


# --- the scorer -------------------------------------------------------------------------------------

class _Put(Protocol):
    def __call__(self, code: SignalCode, mask: Bools, a: NDArray[np.generic],
                 b: NDArray[np.generic] | None = None) -> None: ...


_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Bits that differ between 64-bit hashes (broadcasting a against b)."""
    x = np.bitwise_xor(a, b)
    if hasattr(np, "bitwise_count"):  # NumPy >= 2
        counted: NDArray[np.uint8] = np.bitwise_count(x)
    else:
        counted = _BITS[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)
    return counted


def score_claims(
    claims: ClaimColumns, evidence: EvidenceColumns, params: RiskParams = DEFAULT_PARAMS,
    weights: Mapping[SignalCode, int] | None = None, targets: Ints | None = None,
) -> RiskResult:
    """Every signal for every claim, against the other claims given (the plan's recent history).

    The near-duplicate image search compares each image with every other (exact, O(images²));
    given `targets` (rows), it runs for those claims only and the other rows' near-duplicate
    column is left unset: what a claim's filing needs, at O(its images x all images)."""
    n = len(claims)
    fired = np.zeros((n, len(CODES)), dtype=bool)
    first = np.zeros((n, len(CODES)), dtype=np.float64)
    second = np.zeros((n, len(CODES)), dtype=np.float64)

    def put(code: SignalCode, mask: Bools, a: NDArray[np.generic], b: NDArray[np.generic] | None = None
            ) -> None:
        col = _COLUMN[code]
        fired[:, col] = mask
        first[:, col] = np.where(mask, a, 0)
        if b is not None:
            second[:, col] = np.where(mask, b, 0)

    if n:
        _timeline(claims, params, put)
        for code, key in ((SignalCode.SHARED_PHONE, claims.phone),
                          (SignalCode.SHARED_PAYEE, claims.payee),
                          (SignalCode.SHARED_ADDRESS, claims.address),
                          (SignalCode.SHARED_DEVICE, claims.device)):
            others = _other_groups(key, claims.account)
            put(code, others > 0, others)
        for code, key in ((SignalCode.FREQUENT_HOSPITAL, claims.hospital),
                          (SignalCode.FREQUENT_DOCTOR, claims.doctor)):
            recent, expected, mask = _frequency(key, claims.reported, params)
            put(code, mask, recent, expected)
        observed, expected, mask = _outlier_cells(claims, params)
        put(SignalCode.OUTLIER_CELL, mask, observed, expected)
        persons = _other_persons_per_claim(evidence, claims.person, n)
        put(SignalCode.SAME_FILE, persons > 0, persons)
        distance = _nearest_image(evidence, claims.person, n, targets)
        put(SignalCode.NEAR_DUPLICATE_IMAGE, distance <= params.near_duplicate_bits, distance)
    w = weights_vector(weights)
    score = np.minimum(fired.astype(np.int64) @ w, 100)
    return RiskResult(fired, first, second, score, w)


def _timeline(claims: ClaimColumns, params: RiskParams, put: _Put) -> None:
    after_waiting = claims.diagnosed - claims.covered_from
    put(SignalCode.SOON_AFTER_WAITING,
        ~claims.accident & (after_waiting >= 0) & (after_waiting < params.soon_after_waiting_days),
        after_waiting + 1)
    after_joining = claims.diagnosed - claims.joined
    put(SignalCode.DIAGNOSIS_NEAR_JOINING, after_joining <= params.near_joining_days, after_joining)
    before = claims.joined - claims.earliest_document
    put(SignalCode.RECORDS_BEFORE_JOINING,
        (before > 0) & (before <= params.declaration_lookback_days), before)


def _other_groups(key: Ints, group: Ints) -> Ints:
    """For each row: how many other groups (accounts) share its key; 0 where the key is missing."""
    out = np.zeros(key.shape[0], dtype=np.int64)
    valid = key >= 0
    if not valid.any():
        return out
    _, group_codes = np.unique(group, return_inverse=True)
    pairs = np.unique(key[valid] * (int(group_codes.max()) + 1) + group_codes[valid])
    per_key = np.bincount(pairs // (int(group_codes.max()) + 1), minlength=int(key.max()) + 1)
    out[valid] = per_key[key[valid]] - 1
    return out


def _other_persons_per_claim(evidence: EvidenceColumns, person: Ints, n: int) -> Ints:
    """For each claim: the most other persons any of its files is also attached for."""
    out = np.zeros(n, dtype=np.int64)
    if evidence.sha.shape[0]:
        others = _other_groups(evidence.sha, person[evidence.claim])
        np.maximum.at(out, evidence.claim, others)
    return out


def _nearest_image(evidence: EvidenceColumns, person: Ints, n: int, targets: Ints | None,
                   chunk: int = 512) -> Ints:
    """For each claim: the smallest Hamming distance between one of its images and a different
    file of a different person (65 where there is none). Brute force in chunks: exact, one XOR and
    popcount per pair."""
    out = np.full(n, 65, dtype=np.int64)
    rows = np.flatnonzero(evidence.has_phash)
    if rows.shape[0] < 2:
        return out
    hashes = evidence.phash[rows]
    owners = person[evidence.claim[rows]]
    shas = evidence.sha[rows]
    claims = evidence.claim[rows]
    queries = np.arange(rows.shape[0]) if targets is None else \
        np.flatnonzero(np.isin(claims, targets))
    for start in range(0, queries.shape[0], chunk):
        q = queries[start:start + chunk]
        distance = hamming(hashes[q, None], hashes[None, :])
        distance[(owners[q, None] == owners[None, :]) | (shas[q, None] == shas[None, :])] = 65
        np.minimum.at(out, claims[q], distance.min(axis=1))
    return out


_SPAN = 1 << 22  # room for day ordinals (~740,000) in a combined (key, day) sort key


def _window_counts(key: Ints, day: Ints, lo: Ints, hi: Ints) -> Ints:
    """For each row: how many rows with the same key have lo < day <= hi (key >= 0 only)."""
    combined = np.sort(key * _SPAN + day)
    return (np.searchsorted(combined, key * _SPAN + hi, side="right")
            - np.searchsorted(combined, key * _SPAN + lo, side="right")).astype(np.int64)


def _frequency(key: Ints, reported: Ints, params: RiskParams) -> tuple[Ints, Floats, Bools]:
    """Claims naming the key within the recent window around each claim (up to `recent_days`
    before and, when rescoring, after it) against the key's own rate in the history before."""
    valid = key >= 0
    safe = np.where(valid, key, 0)
    window_start = reported - params.recent_days
    recent = _window_counts(safe, reported, window_start, reported + params.recent_days)
    prior = _window_counts(safe, reported, window_start - params.history_days, window_start)
    history = np.maximum(np.minimum(params.history_days, window_start - int(reported.min()) + 1), 1)
    span = np.minimum(2 * params.recent_days, int(reported.max()) - reported + params.recent_days)
    expected = prior * span / history
    # Of the key's claims in history + window, a share span/(span+history) falls in the window if
    # the rate did not change; z says how far above that share the window's count is.
    total = recent + prior
    share = span / (span + history)
    z = (recent - total * share) / np.sqrt(np.maximum(total * share * (1 - share), 1e-9))
    mask = valid & (history >= params.min_history_days) & \
        (recent >= params.frequency_min_count) & (z >= params.frequency_z)
    return recent, expected, mask


def _outlier_cells(claims: ClaimColumns, params: RiskParams) -> tuple[Ints, Floats, Bools]:
    """Claims of the same illness, age band and province around each claim, against the same
    illness and age band in all provinces times the province's share of the plan's claims."""
    band = age_band(claims.age)
    provinces = int(claims.province.max()) + 1
    illness_band = claims.illness * 6 + band
    cell = illness_band * provinces + claims.province
    lo, hi = claims.reported - params.outlier_days, claims.reported + params.outlier_days
    observed = _window_counts(cell, claims.reported, lo, hi)
    same_illness_band = _window_counts(illness_band, claims.reported, lo, hi)
    share = np.bincount(claims.province, minlength=provinces) / len(claims)
    expected = same_illness_band * share[claims.province]
    bound = np.maximum(params.outlier_min_count, params.outlier_factor * expected + params.outlier_slack)
    return observed, expected, observed >= bound


# --- links between claims (the graph view) ----------------------------------------------------------

class LinkKind(StrEnum):
    PHONE = "phone"
    PAYEE = "payee"
    ADDRESS = "address"
    DEVICE = "device"
    DOCTOR = "doctor"
    SAME_FILE = "same_file"
    SIMILAR_IMAGE = "similar_image"


def links_of(claims: ClaimColumns, evidence: EvidenceColumns, i: int,
             params: RiskParams = DEFAULT_PARAMS) -> dict[int, set[LinkKind]]:
    """The other claims that share something with claim i, and what they share."""
    found: dict[int, set[LinkKind]] = {}

    def add(rows: NDArray[np.intp], kind: LinkKind) -> None:
        for j in rows.tolist():
            if j != i:
                found.setdefault(int(j), set()).add(kind)

    for kind, key in ((LinkKind.PHONE, claims.phone), (LinkKind.PAYEE, claims.payee),
                      (LinkKind.ADDRESS, claims.address), (LinkKind.DEVICE, claims.device),
                      (LinkKind.DOCTOR, claims.doctor)):
        if key[i] >= 0:
            add(np.flatnonzero(key == key[i]), kind)
    own = evidence.claim == i
    if own.any():
        add(evidence.claim[np.isin(evidence.sha, evidence.sha[own])], LinkKind.SAME_FILE)
        mine = evidence.phash[own & evidence.has_phash]
        if mine.shape[0]:
            distance = hamming(mine[:, None], evidence.phash[None, :]).min(axis=0)
            close = evidence.has_phash & (distance <= params.near_duplicate_bits) & \
                ~np.isin(evidence.sha, evidence.sha[own])
            add(evidence.claim[close], LinkKind.SIMILAR_IMAGE)
    return found


# --- explanations -----------------------------------------------------------------------------------

def explain(code: SignalCode, first: float, second: float = 0.0) -> tuple[str, str]:
    """The reason a signal fired on a claim, with its numbers, in zh_CN and en."""
    a, b = int(first), second
    match code:
        case SignalCode.SAME_FILE:
            return (f"同一文件也出现在另外 {a} 人的申请中", f"the same file is attached for {a} other person(s)")
        case SignalCode.NEAR_DUPLICATE_IMAGE:
            return (f"有图片与他人证据仅相差 {a} 位(64 位差值哈希)",
                    f"an image differs from another person's evidence by only {a} of 64 hash bits")
        case SignalCode.SOON_AFTER_WAITING:
            return (f"等待期结束后第 {a} 天确诊", f"diagnosed on day {a} after the waiting period")
        case SignalCode.DIAGNOSIS_NEAR_JOINING:
            return (f"加入后 {a} 天确诊", f"diagnosed {a} days after joining")
        case SignalCode.RECORDS_BEFORE_JOINING:
            return (f"有病历日期早于加入日 {a} 天", f"a medical record is dated {a} days before joining")
        case SignalCode.SHARED_PHONE | SignalCode.SHARED_PAYEE | SignalCode.SHARED_ADDRESS \
                | SignalCode.SHARED_DEVICE:
            what_zh, what_en = {
                SignalCode.SHARED_PHONE: ("联系电话", "contact phone"),
                SignalCode.SHARED_PAYEE: ("收款账户", "payee account"),
                SignalCode.SHARED_ADDRESS: ("地址", "address"),
                SignalCode.SHARED_DEVICE: ("设备", "device"),
            }[code]
            return (f"{what_zh}也出现在另外 {a} 个家庭的申请中",
                    f"the {what_en} also appears on claims of {a} other famil{'y' if a == 1 else 'ies'}")
        case SignalCode.FREQUENT_HOSPITAL | SignalCode.FREQUENT_DOCTOR:
            zh, en = ("该医院", "this hospital") if code is SignalCode.FREQUENT_HOSPITAL else \
                ("该医生", "this doctor")
            return (f"{zh}近期出现在 {a} 件申请中,按以往预期约 {b:.1f} 件",
                    f"{en} is on {a} recent claims where its history predicts {b:.1f}")
        case SignalCode.OUTLIER_CELL:
            return (f"同病种、同年龄段、同省份近期有 {a} 件申请,预期约 {b:.1f} 件",
                    f"{a} recent claims of this illness, age band and province where {b:.1f} "
                    "are expected")
    raise ValueError(code)  # pragma: no cover - the match covers every code


# --- tuning weights from reviewers' feedback ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SignalRecord:
    """What happened to one signal: how often it fired, what reviewers said, how cases ended."""

    code: SignalCode
    weight: int
    fired: int
    useful: int
    not_useful: int
    decided: int
    rejected: int


@dataclass(frozen=True, slots=True)
class WeightAdvice:
    code: SignalCode
    weight: int
    suggested: int
    useful_rate: float | None
    rejected_rate: float | None
    enough_feedback: bool


#: Feedback below this count leaves a weight as it is.
MIN_FEEDBACK = 10
MAX_WEIGHT = 60


def advise_weights(records: Sequence[SignalRecord]) -> list[WeightAdvice]:
    """Scale each weight by how useful reviewers found the signal, relative to an even 50%:
    suggested = weight x 2 x (useful + 1) / (feedback + 2), capped at MAX_WEIGHT (a Laplace-smoothed
    rate, so a few answers move the weight little). Below MIN_FEEDBACK answers: keep the weight."""
    advice = []
    for r in records:
        feedback = r.useful + r.not_useful
        enough = feedback >= MIN_FEEDBACK
        suggested = min(MAX_WEIGHT, round(r.weight * 2 * (r.useful + 1) / (feedback + 2))) \
            if enough else r.weight
        advice.append(WeightAdvice(
            r.code, r.weight, suggested, r.useful / feedback if feedback else None,
            r.rejected / r.decided if r.decided else None, enough))
    return advice


# --- the optional link data a claim may carry ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClaimLinks:
    """Contact and payment details given with a claim. Phone, payee account, address and device are
    stored only as keyed hashes (enough to see that two claims share one); the doctor in clear."""

    contact_phone: str | None = None
    payee_account: str | None = None
    address: str | None = None
    device_id: str | None = None
    doctor: str | None = None

    def normalized(self) -> dict[str, str | None]:
        """Each field trimmed (and case and spacing folded for matching), None when blank; a value
        too long is refused with the field it came from."""
        limits = {"contact_phone": 30, "payee_account": 64, "address": 300, "device_id": 200,
                  "doctor": 100}
        out: dict[str, str | None] = {}
        for name, limit in limits.items():
            raw = getattr(self, name)
            value = " ".join(raw.split()) if raw else ""
            if len(value) > limit:
                raise DomainError(f"invalid_{name}", f"at most {limit} characters", name)
            if name in ("contact_phone", "payee_account"):
                value = value.replace(" ", "").replace("-", "")
            out[name] = (value if name == "doctor" else value.casefold()) or None
        return out
