"""Risk signals: which claims deserve a reviewer's closer look, and why. Never a decision.

Every signal has a code, a weight (points added to the claim's risk score), labels in zh_CN and en,
and a documented reason (docs/risk.md). This module holds the signals, the thresholds and weights
(`RiskParams`), levels and investigation modes, the explanations, the weight advice learnt from
reviewers, and the link data a claim may carry; the vectorised scorer is in `risk_scores.py`. A
claim's score only directs effort (field investigation or desk review, which case first); no claim
is ever rejected by a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from mutualaid.domain.errors import DomainError


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
    #: The same in Chinese.
    reason_zh: str


SIGNALS: tuple[Signal, ...] = (
    Signal(
        SignalCode.SAME_FILE,
        40,
        "证据文件与他人申请相同",
        "Same evidence file as another person's claim",
        "The exact same file (SHA-256) is attached to a claim of a different person. A diagnosis "
        "certificate or photo belongs to one patient; reuse is the commonest document fraud. "
        "Innocent when a shared family document (household register) was uploaded for two "
        "relatives.",
        "完全相同的文件（SHA-256）出现在另一个人的申请中。诊断证明或照片只属于一位患者，重复使用是最常见的材料造假。若是两位亲属共用的家庭文件（如户口簿）则属正常。",
    ),
    Signal(
        SignalCode.NEAR_DUPLICATE_IMAGE,
        30,
        "图片与他人证据几乎相同",
        "Image nearly identical to another person's evidence",
        "A different file whose picture is nearly the same (difference hash within the "
        "threshold) is attached to a claim of a different person: a re-saved, resized or "
        "lightly edited copy. Innocent for blank forms or printed templates photographed alike.",
        "另一个人的申请中有一张几乎相同的图片（差值哈希在阈值内）：可能是另存、缩放或稍加修改的副本。空白表格或印好的模板拍得相似则属正常。",
    ),
    Signal(
        SignalCode.SOON_AFTER_WAITING,
        10,
        "等待期刚结束即确诊",
        "Diagnosed just after the waiting period",
        "A non-accident illness diagnosed within the first days after the waiting period ended. "
        "People who know they are ill may join and wait out the period. Many honest claims also "
        "fall here, so the weight is low.",
        "非意外疾病在等待期结束后没几天就确诊。知道自己患病的人可能加入后等过等待期。很多正常申请也落在这里，所以权重较低。",
    ),
    Signal(
        SignalCode.DIAGNOSIS_NEAR_JOINING,
        15,
        "确诊日期接近加入日期",
        "Diagnosis close to the joining date",
        "The diagnosis is dated within days of joining (possible only for accident claims, which "
        "the waiting period does not hold back): an 'accident' may be a known illness.",
        "确诊日期与加入日期只差几天（只有意外申请才可能，等待期不限制意外）：所谓“意外”可能是已知的疾病。",
    ),
    Signal(
        SignalCode.RECORDS_BEFORE_JOINING,
        35,
        "病历早于加入日期（与健康告知矛盾）",
        "Medical records predate joining (contradicts the health declaration)",
        "A medical document attached to the claim is dated before the member joined, within the "
        "health declaration's look-back (two years), while every declaration answer was 'no'.",
        "申请所附的医疗材料日期早于加入日期，且在健康告知的回溯期（两年）内，而健康告知的每个问题都回答了“否”。",
    ),
    Signal(
        SignalCode.SHARED_PHONE,
        25,
        "联系电话与其他家庭的申请相同",
        "Contact phone shared with another family's claim",
        "The contact phone given on the claim also appears on a claim of another account: one "
        "person filing for several unrelated families.",
        "申请填写的联系电话也出现在另一个账户的申请中：一个人在为多个不相关的家庭申请。",
    ),
    Signal(
        SignalCode.SHARED_PAYEE,
        35,
        "收款账户与其他家庭的申请相同",
        "Payee account shared with another family's claim",
        "The aid would be paid to an account that also receives another family's aid: the "
        "strongest link in organised claim rings.",
        "互助金会打入一个也在接收其他家庭互助金的账户：这是有组织骗保团伙最明显的关联。",
    ),
    Signal(
        SignalCode.SHARED_ADDRESS,
        15,
        "地址与其他家庭的申请相同",
        "Address shared with another family's claim",
        "The same address on claims of different accounts. Weak alone (neighbours, care homes, "
        "shared housing), stronger with other links.",
        "不同账户的申请使用同一地址。单独出现时较弱（邻居、养老院、合租），与其他关联同时出现时更值得注意。",
    ),
    Signal(
        SignalCode.SHARED_DEVICE,
        25,
        "设备与其他家庭的申请相同",
        "Device shared with another family's claim",
        "The claim was filed from a device that also filed another account's claim: an agent "
        "filing on behalf of many.",
        "申请来自一台也提交过其他账户申请的设备：可能是代理人替多人申请。",
    ),
    Signal(
        SignalCode.FREQUENT_HOSPITAL,
        15,
        "医院近期申请异常增多",
        "Hospital appearing unusually often",
        "The hospital's claims in the last window far exceed its own earlier rate in this plan "
        "(Poisson bound): a small clinic suddenly issuing many certificates.",
        "该医院在最近一段时间的申请数远超其在本计划中的以往水平（泊松上限）：比如一家小诊所突然开出很多证明。",
    ),
    Signal(
        SignalCode.FREQUENT_DOCTOR,
        20,
        "医生近期申请异常增多",
        "Doctor appearing unusually often",
        "The certifying doctor appears on far more recent claims than their earlier rate: one "
        "doctor signing for a ring.",
        "开具证明的医生出现在近期申请中的次数远超以往：可能有一位医生在为团伙签字。",
    ),
    Signal(
        SignalCode.OUTLIER_CELL,
        15,
        "病种·年龄段·地区统计异常",
        "Statistical outlier: illness, age band and region",
        "Recent claims of this illness in this age band and province far exceed what the plan's "
        "own history predicts (illness-and-age count × the province's share of claims).",
        "该病种在该年龄段和省份的近期申请数，远超本计划自身历史的预期（病种与年龄的数量 × 该省份的申请占比）。",
    ),
)

BY_CODE: dict[SignalCode, Signal] = {s.code: s for s in SIGNALS}
CODES: tuple[SignalCode, ...] = tuple(s.code for s in SIGNALS)


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
    #: The plan's weights (signal, points) where they differ from the signals' defaults.
    weights: tuple[tuple[SignalCode, int], ...] = ()

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


def weight_of(code: SignalCode, params: RiskParams = DEFAULT_PARAMS) -> int:
    """The points this signal adds under these parameters (the plan's weight or the default)."""
    return dict(params.weights).get(code, BY_CODE[code].weight)


# --- explanations -----------------------------------------------------------------------------------


def explain(code: SignalCode, first: float, second: float = 0.0) -> tuple[str, str]:
    """The reason a signal fired on a claim, with its numbers, in zh_CN and en."""
    a, b = int(first), second
    match code:
        case SignalCode.SAME_FILE:
            return (
                f"同一文件也出现在另外 {a} 人的申请中",
                f"the same file is attached for {a} other person(s)",
            )
        case SignalCode.NEAR_DUPLICATE_IMAGE:
            return (
                f"有图片与他人证据仅相差 {a} 位（64 位差值哈希）",
                f"an image differs from another person's evidence by only {a} of 64 hash bits",
            )
        case SignalCode.SOON_AFTER_WAITING:
            return (f"等待期结束后第 {a} 天确诊", f"diagnosed on day {a} after the waiting period")
        case SignalCode.DIAGNOSIS_NEAR_JOINING:
            return (f"加入后 {a} 天确诊", f"diagnosed {a} days after joining")
        case SignalCode.RECORDS_BEFORE_JOINING:
            return (
                f"有病历日期早于加入日 {a} 天",
                f"a medical record is dated {a} days before joining",
            )
        case (
            SignalCode.SHARED_PHONE
            | SignalCode.SHARED_PAYEE
            | SignalCode.SHARED_ADDRESS
            | SignalCode.SHARED_DEVICE
        ):
            what_zh, what_en = {
                SignalCode.SHARED_PHONE: ("联系电话", "contact phone"),
                SignalCode.SHARED_PAYEE: ("收款账户", "payee account"),
                SignalCode.SHARED_ADDRESS: ("地址", "address"),
                SignalCode.SHARED_DEVICE: ("设备", "device"),
            }[code]
            return (
                f"{what_zh}也出现在另外 {a} 个家庭的申请中",
                f"the {what_en} also appears on claims of {a} other famil{'y' if a == 1 else 'ies'}",
            )
        case SignalCode.FREQUENT_HOSPITAL | SignalCode.FREQUENT_DOCTOR:
            zh, en = (
                ("该医院", "this hospital")
                if code is SignalCode.FREQUENT_HOSPITAL
                else ("该医生", "this doctor")
            )
            return (
                f"{zh}近期出现在 {a} 件申请中，按以往预期约 {b:.1f} 件",
                f"{en} is on {a} recent claims where its history predicts {b:.1f}",
            )
        case SignalCode.OUTLIER_CELL:
            return (
                f"同病种、同年龄段、同省份近期有 {a} 件申请，预期约 {b:.1f} 件",
                f"{a} recent claims of this illness, age band and province where {b:.1f} "
                "are expected",
            )
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
        suggested = (
            min(MAX_WEIGHT, round(r.weight * 2 * (r.useful + 1) / (feedback + 2)))
            if enough
            else r.weight
        )
        advice.append(
            WeightAdvice(
                r.code,
                r.weight,
                suggested,
                r.useful / feedback if feedback else None,
                r.rejected / r.decided if r.decided else None,
                enough,
            )
        )
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
        limits = {
            "contact_phone": 30,
            "payee_account": 64,
            "address": 300,
            "device_id": 200,
            "doctor": 100,
        }
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
