"""Plan rules: every number of a plan is configuration, read from a TOML file and validated here.

A malformed plan is refused with the exact key (``payout_bands[1].amount_fen``) and the reason, so an
operator can fix the file without reading code.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, field, fields
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import Fen
from mutualaid.domain.risk import DEFAULT_PARAMS as _RISK
from mutualaid.domain.risk import RiskParams, SignalCode

_STRICT = ConfigDict(extra="forbid")


#: Money bounds for plan files. Sums are int64 in the database (at most 9.2e18 fen) and the design
#: ceiling is 100M (1e8) members. A payout is at most ¥1,000,000 (1e8 fen; a real one ¥300,000):
#: a payout times 1e8 members is 1e16 fen, room for 900 such payouts in one period's sums. A
#: per-member cap (per case, per year) is at most ¥10,000,000 (1e9 fen, high enough to mean
#: "uncapped"): times 1e8 members it is 1e17 fen, 90 times below int64's limit.
MAX_PAYOUT_FEN = 100_000_000
MAX_SHARE_CAP_FEN = 1_000_000_000


class Tier(StrEnum):
    SEVERE = "severe"
    MILD = "mild"


class FundingModel(StrEnum):
    POST_PAID = "post_paid"
    PREPAID = "prepaid"


@dataclass(frozen=True, config=_STRICT)
class EntryRules:
    min_age_days: int = Field(default=30, ge=0)
    min_age_years: int = Field(default=0, ge=0, le=120)
    max_age_years: int = Field(default=59, ge=0, le=120)
    #: Membership ends on this birthday (in the plan's zone).
    exit_age_years: int = Field(default=60, ge=1, le=130)
    #: Credit/risk check threshold for the pluggable hook (Xiang Hu Bao: Sesame score >= 650).
    credit_min_score: int | None = None


@dataclass(frozen=True, config=_STRICT)
class WaitingPeriod:
    days: int = Field(default=90, ge=0, le=3650)
    #: During the waiting period only illness caused by an accident qualifies.
    accidents_covered: bool = True


@dataclass(frozen=True, config=_STRICT)
class HealthQuestion:
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
    text_zh: Annotated[str, Field(min_length=1)]
    text_en: Annotated[str, Field(min_length=1)]


@dataclass(frozen=True, config=_STRICT)
class PayoutBand:
    from_age: Annotated[int, Field(ge=0, le=130)]
    to_age: Annotated[int, Field(ge=0, le=130)]
    tier: Tier
    amount_fen: Annotated[int, Field(gt=0, le=MAX_PAYOUT_FEN)]
    cause: Literal["any", "illness", "accident"] = "any"


@dataclass(frozen=True, config=_STRICT)
class DefinitionSource:
    """Where a catalogue's illness definitions come from (e.g. the Insurance Association of
    China's 2020 critical illness definitions); illnesses name one by `code` in their `source`."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,40}$")]
    name_zh: Annotated[str, Field(min_length=1)]
    name_en: Annotated[str, Field(min_length=1)]
    url: str | None = None


@dataclass(frozen=True, config=_STRICT)
class Illness:
    code: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_.-]{0,19}$")]
    name_zh: Annotated[str, Field(min_length=1)]
    name_en: Annotated[str, Field(min_length=1)]
    tier: Tier
    #: The `definition_sources` code its definition follows (None: the plan's own wording).
    source: str | None = None
    #: accident: covered only when caused by an accident (a claim otherwise is refused with
    #: `accident_only`); any: illness or accident.
    cause: Literal["any", "accident"] = "any"


@dataclass(frozen=True, config=_STRICT)
class AgeOutMove:
    """Xiang Hu Bao's automatic move: a member who opts in (from `opt_in_from_age_years`) moves,
    when they age out of this plan, into plan `to_plan`, whose own rules apply from then."""

    to_plan: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")]
    opt_in_from_age_years: int = Field(default=59, ge=0, le=130)


@dataclass(frozen=True, config=_STRICT)
class Fees:
    management_fee_bp: int = Field(default=800, ge=0, le=5000)


@dataclass(frozen=True, config=_STRICT)
class Caps:
    per_case_fen: int | None = Field(default=10, gt=0, le=MAX_SHARE_CAP_FEN)
    annual_fen: int | None = Field(default=18_800, gt=0, le=MAX_SHARE_CAP_FEN)


@dataclass(frozen=True, config=_STRICT)
class PeriodSchedule:
    publicity_days: list[int] = field(default_factory=lambda: [7, 21])
    debit_days: list[int] = field(default_factory=lambda: [14, 28])
    publicity_length_days: int = Field(default=3, ge=1, le=30)
    payment_retry_days: int = Field(default=5, ge=0, le=60)


@dataclass(frozen=True, config=_STRICT)
class ClaimRules:
    deadline_days: int = Field(default=180, ge=1, le=3650)
    #: Days from the report by which the review should be decided, from the decision to the
    #: payout (after publicity), and from a rejection to the last day it may be disputed. None:
    #: the defaults in domain/claim_progress.py (and the plan's rules hash is unchanged).
    review_days: int | None = Field(default=None, ge=1, le=365)
    payout_days: int | None = Field(default=None, ge=1, le=365)
    dispute_days: int | None = Field(default=None, ge=1, le=3650)
    #: Days from a report to the staff decision (None: domain.casework's default); a staff
    #: queue shows it as each case's deadline.
    decision_days: int | None = Field(default=None, ge=1, le=365)


@dataclass(frozen=True, config=_STRICT)
class JuryRules:
    """Xiang Hu Bao's open vote (valid with >= 1,000 votes, > 50% approves) or a drawn panel."""

    mode: Literal["open_vote", "panel"] = "open_vote"
    min_votes: int = Field(default=1000, ge=1)
    #: Share of the votes cast (basis points) that approval must EXCEED.
    approve_above_bp: int = Field(default=5000, ge=0, lt=10000)
    panel_size: int = Field(default=13, ge=1, le=1001)
    vote_hours: int = Field(default=72, ge=1, le=24 * 60)
    max_rounds: int = Field(default=3, ge=1, le=10)
    juror_min_age_years: int = Field(default=18, ge=0)
    juror_min_membership_days: int = Field(default=30, ge=0)


@dataclass(frozen=True, config=_STRICT)
class WindDownRules:
    """How the plan ends (issue 8): who pays the periods after an announcement, and what happens
    when membership falls below `minimum_members`."""

    #: sponsor_paid: from the announcement, every case not yet shared is paid by the sponsor
    #: (Xiang Hu Bao, 2022); shared_until_end: members share until the end date.
    rule: Literal["sponsor_paid", "shared_until_end"] = "sponsor_paid"
    #: The end date must be at least this many days after the announcement.
    notice_days: int = Field(default=0, ge=0, le=3650)
    #: Below `minimum_members`: alert the operators, or also announce the end.
    below_minimum: Literal["alert", "wind_down"] = "alert"
    #: No minimum-membership alert in the first days after launch (the plan is filling up).
    minimum_grace_days: int = Field(default=30, ge=0, le=3650)


@dataclass(frozen=True, config=_STRICT)
class SharingBand:
    """An age band for the proportional and conditional mean sharing rules: approved claims per
    1,000,000 member-years at ages [from_age, to_age] (age at the period's lock date)."""

    from_age: Annotated[int, Field(ge=0, le=130)]
    to_age: Annotated[int, Field(ge=0, le=130)]
    severe_per_million: Annotated[int, Field(ge=0, le=1_000_000)]
    mild_per_million: Annotated[int, Field(ge=0, le=1_000_000)] = 0


@dataclass(frozen=True, config=_STRICT)
class RiskRules:
    """The risk signals' thresholds and weights (issue 9, docs/risk.md), tuned by publishing a new
    plan version. Defaults: the documented code defaults (domain/risk.py RiskParams, SIGNALS)."""

    soon_after_waiting_days: int = Field(default=_RISK.soon_after_waiting_days, ge=0, le=3650)
    near_joining_days: int = Field(default=_RISK.near_joining_days, ge=0, le=3650)
    declaration_lookback_days: int = Field(default=_RISK.declaration_lookback_days, ge=0, le=3650)
    near_duplicate_bits: int = Field(default=_RISK.near_duplicate_bits, ge=0, le=64)
    recent_days: int = Field(default=_RISK.recent_days, ge=1, le=3650)
    history_days: int = Field(default=_RISK.history_days, ge=1, le=3650)
    min_history_days: int = Field(default=_RISK.min_history_days, ge=0, le=3650)
    frequency_min_count: int = Field(default=_RISK.frequency_min_count, ge=1)
    frequency_z: float = Field(default=_RISK.frequency_z, gt=0, le=100)
    outlier_days: int = Field(default=_RISK.outlier_days, ge=1, le=3650)
    outlier_min_count: int = Field(default=_RISK.outlier_min_count, ge=1)
    outlier_factor: float = Field(default=_RISK.outlier_factor, gt=0, le=100)
    outlier_slack: float = Field(default=_RISK.outlier_slack, ge=0, le=1000)
    field_threshold: int = Field(default=_RISK.field_threshold, ge=0, le=100)
    high_threshold: int = Field(default=_RISK.high_threshold, ge=0, le=100)
    medium_threshold: int = Field(default=_RISK.medium_threshold, ge=0, le=100)
    #: Signal code -> points (replaces that signal's default weight; the others keep theirs).
    weights: dict[str, Annotated[int, Field(ge=0, le=100)]] = field(default_factory=dict)


#: Staff members who release a payout above a plan's four-eyes amount (each a different one).
FOUR_EYES = 2


@dataclass(frozen=True, config=_STRICT)
class PaymentRules:
    """Who moves the plan's money (issue 17, docs/payments.md). Keys and addresses are settings
    (MUTUALAID_ALIPAY_*), never part of a plan file."""

    #: simulated (demo and tests), file (the collection file and its results, for banks that work
    #: in batches), alipay (withholding agreements, deductions and transfers through Alipay).
    provider: Literal["simulated", "file", "alipay"] = "simulated"
    #: A payout above this many fen waits for two different staff members to release it.
    four_eyes_above_fen: int = Field(default=5_000_000, ge=0)

    def releases_needed(self, amount_fen: int) -> int:
        """How many different staff members release a payout of this amount (four eyes above
        `four_eyes_above_fen`)."""
        return FOUR_EYES if amount_fen > self.four_eyes_above_fen else 1


def params_of(rules: RiskRules | None) -> RiskParams:
    """A plan's `[risk]` table as the scorer's parameters (None: the defaults)."""
    if rules is None:
        return _RISK
    values = {f.name: getattr(rules, f.name) for f in fields(RiskParams) if f.name != "weights"}
    return RiskParams(
        **values,
        weights=tuple((SignalCode(code), weight) for code, weight in sorted(rules.weights.items())),
    )


@dataclass(frozen=True, config=_STRICT)
class PlanRules:
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")]
    name_zh: Annotated[str, Field(min_length=1)]
    name_en: Annotated[str, Field(min_length=1)]
    illnesses: Annotated[list[Illness], Field(min_length=1)]
    payout_bands: Annotated[list[PayoutBand], Field(min_length=1)]
    definition_sources: list[DefinitionSource] = field(default_factory=list)
    time_zone: str = "Asia/Shanghai"
    funding_model: FundingModel = FundingModel.POST_PAID
    sharing_rule: Literal[
        "uniform",
        "proportional",
        "conditional_mean",
        "linear_covariance",
        "linear_uniform",
        "compensation",
    ] = "uniform"
    #: Age bands and their claim rates for the non-uniform rules (None: the default table).
    sharing_bands: list[SharingBand] | None = None
    minimum_members: int = Field(default=0, ge=0)
    entry: EntryRules = field(default_factory=EntryRules)
    waiting_period: WaitingPeriod = field(default_factory=WaitingPeriod)
    health_questions: list[HealthQuestion] = field(default_factory=list)
    fees: Fees = field(default_factory=Fees)
    caps: Caps = field(default_factory=Caps)
    periods: PeriodSchedule = field(default_factory=PeriodSchedule)
    claims: ClaimRules = field(default_factory=ClaimRules)
    jury: JuryRules = field(default_factory=JuryRules)
    wind_down: WindDownRules = field(default_factory=WindDownRules)
    #: None: the code defaults (and a plan without the table keeps its rules hash).
    risk: RiskRules | None = None
    #: None: the simulated provider (and a plan without the table keeps its rules hash).
    payments: PaymentRules | None = None
    #: None: members simply age out (and a plan without the table keeps its rules hash).
    age_out_move: AgeOutMove | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def illness(self, code: str) -> Illness | None:
        return next((i for i in self.illnesses if i.code == code), None)

    def payout_fen(self, age_years: int, tier: Tier, accident: bool) -> Fen | None:
        """The one-time payout for a member of this age at first diagnosis (None: not covered)."""
        cause = "accident" if accident else "illness"
        matches = [
            band
            for band in self.payout_bands
            if band.tier == tier
            and band.from_age <= age_years <= band.to_age
            and band.cause in ("any", cause)
        ]
        if not matches:
            return None
        # A cause-specific band beats an "any" band.
        best = min(matches, key=lambda band: band.cause == "any")
        return Fen(best.amount_fen)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["risk"] is None:  # left out, so that the hash of a plan without it never changed
            del data["risk"]
        if data["payments"] is None:
            del data["payments"]
        for key in ("review_days", "payout_days", "dispute_days", "decision_days"):
            if data["claims"][key] is None:  # likewise for the claim progress keys
                del data["claims"][key]
        # Keys added with the full catalogue (issue 19) are left out at their defaults, so that
        # the hash of a plan that does not use them never changed.
        for key in ("age_out_move",):
            if data[key] is None:
                del data[key]
        if not data["definition_sources"]:
            del data["definition_sources"]
        for illness in data["illnesses"]:
            if illness["source"] is None:
                del illness["source"]
            if illness["cause"] == "any":
                del illness["cause"]
        return json.loads(json.dumps(data, default=str))  # type: ignore[no-any-return]


_RULES_ADAPTER = TypeAdapter(PlanRules)


def dotted_key(location: tuple[int | str, ...]) -> str:
    """A validation error location as the key an operator would look for: ``payout_bands[1].amount_fen``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _check_consistency(rules: PlanRules) -> None:
    """Cross-key rules a per-field schema cannot express."""
    try:
        ZoneInfo(rules.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError(
            "invalid_plan", f"{rules.time_zone!r} is not an IANA time zone", "time_zone"
        ) from None
    entry = rules.entry
    if entry.min_age_years > entry.max_age_years:
        raise DomainError(
            "invalid_plan", "the minimum entry age is above the maximum", "entry.min_age_years"
        )
    if entry.max_age_years >= entry.exit_age_years:
        raise DomainError(
            "invalid_plan",
            "the maximum entry age must be below the exit age",
            "entry.max_age_years",
        )
    _refuse_repeated_codes([i.code for i in rules.illnesses], "illness code", "illnesses")
    _check_definition_sources(rules)
    _refuse_repeated_codes(
        [q.code for q in rules.health_questions], "question code", "health_questions"
    )
    for index, band in enumerate(rules.payout_bands):
        if band.from_age > band.to_age:
            raise DomainError(
                "invalid_plan",
                f"from_age {band.from_age} is above to_age {band.to_age}",
                f"payout_bands[{index}].from_age",
            )
    # Every illness maps to a payout at every age a member can have: an accident-only illness
    # through the accident bands, any other through the illness bands.
    used = {(illness.tier, illness.cause == "accident") for illness in rules.illnesses}
    for tier, accident in sorted(used):
        for age in range(entry.min_age_years, entry.exit_age_years):
            if rules.payout_fen(age, tier, accident=accident) is None:
                cause = " (accident)" if accident else ""
                raise DomainError(
                    "invalid_plan",
                    f"no payout band covers age {age} for tier {tier}{cause}",
                    "payout_bands",
                )
    if rules.age_out_move is not None and rules.age_out_move.to_plan == rules.code:
        raise DomainError(
            "invalid_plan", "a plan cannot move its members into itself", "age_out_move.to_plan"
        )
    _check_sharing_bands(rules)
    _check_risk(rules.risk)
    periods = rules.periods
    for name, days in (
        ("publicity_days", periods.publicity_days),
        ("debit_days", periods.debit_days),
    ):
        if not days:
            raise DomainError("invalid_plan", "at least one day is needed", f"periods.{name}")
        for index, day in enumerate(days):
            if not 1 <= day <= 28:
                raise DomainError(
                    "invalid_plan",
                    f"day {day} must be between 1 and 28 so that it exists in every month",
                    f"periods.{name}[{index}]",
                )
        if list(days) != sorted(set(days)):
            raise DomainError("invalid_plan", "days must be increasing", f"periods.{name}")
    if len(periods.debit_days) != len(periods.publicity_days):
        raise DomainError(
            "invalid_plan",
            "each publicity day needs a debit day (the same number of each)",
            "periods.debit_days",
        )
    for index, (publicity, debit) in enumerate(
        zip(periods.publicity_days, periods.debit_days, strict=True)
    ):
        if debit <= publicity + periods.publicity_length_days - 1:
            raise DomainError(
                "invalid_plan",
                f"debit day {debit} falls before publicity from day {publicity} has ended",
                f"periods.debit_days[{index}]",
            )


def _refuse_repeated_codes(codes: list[str], what: str, table: str) -> None:
    """Each code of a plan table names one row: the second of a pair is refused by its place."""
    seen: set[str] = set()
    for index, code in enumerate(codes):
        if code in seen:
            raise DomainError(
                "invalid_plan", f"{what} {code} appears twice", f"{table}[{index}].code"
            )
        seen.add(code)


def _check_definition_sources(rules: PlanRules) -> None:
    codes = [source.code for source in rules.definition_sources]
    _refuse_repeated_codes(codes, "definition source", "definition_sources")
    for index, illness in enumerate(rules.illnesses):
        if illness.source is not None and illness.source not in codes:
            raise DomainError(
                "invalid_plan",
                f"{illness.source} is not one of the plan's definition_sources",
                f"illnesses[{index}].source",
            )


def _check_sharing_bands(rules: PlanRules) -> None:
    """Bands start at age 0, follow each other without a gap, and never straddle a change of
    payout (a band's members must all carry the same risk)."""
    bands = rules.sharing_bands
    if bands is None:
        return
    if not bands:
        raise DomainError(
            "invalid_plan", "at least one band is needed (or leave the table out)", "sharing_bands"
        )
    expected = 0
    for index, band in enumerate(bands):
        if band.from_age != expected:
            raise DomainError(
                "invalid_plan",
                f"this band should start at age {expected}",
                f"sharing_bands[{index}].from_age",
            )
        if band.to_age < band.from_age:
            raise DomainError(
                "invalid_plan",
                f"to_age {band.to_age} is below from_age",
                f"sharing_bands[{index}].to_age",
            )
        for tier in Tier:
            payouts = {
                rules.payout_fen(age, tier, accident=False)
                for age in range(band.from_age, min(band.to_age + 1, rules.entry.exit_age_years))
            }
            if len(payouts) > 1:
                raise DomainError(
                    "invalid_plan",
                    f"the {tier} payout changes inside this band",
                    f"sharing_bands[{index}]",
                )
        expected = band.to_age + 1
    if expected < rules.entry.exit_age_years:
        raise DomainError(
            "invalid_plan",
            f"the bands end at {expected - 1}; members stay until {rules.entry.exit_age_years}",
            f"sharing_bands[{len(bands) - 1}].to_age",
        )


def _check_risk(risk: RiskRules | None) -> None:
    if risk is None:
        return
    for code in risk.weights:
        if code not in {c.value for c in SignalCode}:
            raise DomainError(
                "invalid_plan",
                f"risk.weights.{code}: unknown signal (known: {', '.join(SignalCode)})",
                f"risk.weights.{code}",
            )
    if risk.medium_threshold > risk.high_threshold:
        raise DomainError(
            "invalid_plan",
            "risk.medium_threshold: above risk.high_threshold",
            "risk.medium_threshold",
        )


def parse_plan_rules(data: dict[str, Any]) -> PlanRules:
    try:
        # Validated as JSON in strict mode: no silent coercion (true is not 1, "90" is not 90),
        # while enums and nested tables still come from their plain JSON forms.
        rules = _RULES_ADAPTER.validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as error:
        refusal = refusal_from(error, "invalid_plan")
        refusal.details = {
            "problems": [
                {"field": dotted_key(e["loc"]), "message": e["msg"]}
                for e in error.errors(include_url=False)
            ]
        }
        raise refusal from None
    _check_consistency(rules)
    return rules


def parse_plan_toml(text: str) -> PlanRules:
    """Read a plan file; refuse it with the exact key and reason when it is malformed."""
    return parse_plan_rules(read_toml(text, "invalid_plan"))


def refusal_from(error: ValidationError, code: str) -> DomainError:
    """A strict validation failure as the refusal an operator reads: the first key and why
    (shared by other rule files, e.g. sponsored schemes)."""
    first = error.errors(include_url=False)[0]
    key = dotted_key(first["loc"]) or "(top level)"
    unknown = first["type"] in ("extra_forbidden", "unexpected_keyword_argument")
    return DomainError(
        code, f"{key}: {'unknown key (misspelt?)' if unknown else first['msg']}", key
    )


#: Rule files are a few KB, nested two or three levels; the bounds are checked before parsing,
#: because tomllib recurses per level (a deeply nested file ran 8 s into a RecursionError).
MAX_TOML_CHARS = 256 * 1024
MAX_TOML_DEPTH = 32


def read_toml(text: str, code: str) -> dict[str, Any]:
    if len(text) > MAX_TOML_CHARS:
        raise DomainError(code, f"the file is larger than {MAX_TOML_CHARS // 1024} KB", "(file)")
    if _bracket_depth(text) > MAX_TOML_DEPTH:
        raise DomainError(code, f"nested deeper than {MAX_TOML_DEPTH} levels", "(file)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DomainError(code, f"not valid TOML: {error}", "(file)") from None


def _bracket_depth(text: str) -> int:
    """The deepest nesting of arrays and inline tables, skipping strings and comments."""
    depth = deepest = 0
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
        index += 1
    return deepest


def json_fingerprint(data: Any) -> str:
    """SHA-256 of the canonical JSON of `data` (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def rules_fingerprint(rules: PlanRules) -> str:
    return json_fingerprint(rules.to_json())
