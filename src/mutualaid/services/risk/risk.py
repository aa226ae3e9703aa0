"""Risk controls: score claims when filed and when evidence arrives, explain every signal, route
investigations by score, learn from reviewers' feedback, and record proven fraud (appealable).

Nothing here rejects a claim: a score orders and routes work; people decide. Proven fraud is only
recorded for a claim a reviewer rejected for fraud, and the record can be appealed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Connection, case, delete, func, insert, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Account,
    Claim,
    ClaimRisk,
    ClaimRiskSignal,
    Evidence,
    FraudAppeal,
    FraudRecord,
    InvestigationReport,
    Membership,
    Plan,
    PlanVersion,
    RiskSignalFeedback,
)
from mutualaid.db.queries.plans import known_rules, plan_by_code
from mutualaid.domain.accounts import STAFF_ROLES, Role, require_role
from mutualaid.domain.claims import OPEN_STATES, RejectionReason
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.plans import params_of
from mutualaid.domain.risk import (
    BY_CODE,
    CODES,
    DEFAULT_PARAMS,
    NO_DATE,
    SIGNALS,
    ClaimColumns,
    ClaimLinks,
    EvidenceColumns,
    InvestigationMode,
    LinkKind,
    RiskParams,
    RiskResult,
    SignalCode,
    SignalRecord,
    WeightAdvice,
    WindowCounts,
    advise_weights,
    age_band,
    age_band_bounds,
    band_probes,
    explain,
    factorize,
    hamming,
    investigation_mode,
    level_of,
    links_of,
    score_claims,
    weight_of,
    window_counts,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.notifications import notify
from mutualaid.services.personal_data import PersonalDataProtector

FEEDBACK_ROLES = (Role.REVIEWER, Role.INVESTIGATOR, Role.OPERATOR)
_OPEN = [str(s) for s in OPEN_STATES]


# --- link data and image hashes (called by the claim and evidence services) ----------------------


def link_columns(
    protector: PersonalDataProtector, links: ClaimLinks | None
) -> dict[str, str | None]:
    """The Claim columns for a claim's optional link data: contacts as keyed hashes only."""
    values = (links or ClaimLinks()).normalized()

    def keyed(name: str) -> str | None:
        value = values[name]
        return protector.identity_hash(f"{name}:{value}") if value else None

    return {
        "contact_phone_hash": keyed("contact_phone"),
        "payee_account_hash": keyed("payee_account"),
        "address_hash": keyed("address"),
        "device_hash": keyed("device_id"),
        "doctor": values["doctor"],
    }


def difference_hash(data: bytes) -> str | None:
    """The 64-bit difference hash (dHash) of an image as 16 hex digits; None if it is no image.

    The picture is shrunk to 9x8 grey pixels; each bit says whether a pixel is brighter than its
    right neighbour. Re-saving, resizing, recompressing or a slight colour change moves few bits.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (64, 64))  # JPEG: decode at a fraction of the size
            grey = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
            pixels = np.asarray(grey, dtype=np.int16)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        return None
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def evidence_phash(ctx: ServiceContext, sha256: str, media_type: str) -> str | None:
    """The stored file's image hash (images only; read back from the encrypted store)."""
    if ctx.evidence_store is None or not media_type.startswith("image/"):
        return None
    return difference_hash(b"".join(ctx.evidence_store.open(sha256)))


# --- loading the plan's recent claims as columns ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    ids: list[int]
    refs: list[str]
    states: list[str]
    claims: ClaimColumns
    evidence: EvidenceColumns

    def row_of(self, claim_id: int) -> int:
        return self.ids.index(claim_id)


def _load(session: Session, where: ColumnElement[bool]) -> _Window:
    """The claims matching `where` (on Claim's columns), with their evidence, as columns."""
    rows = session.execute(
        select(
            Claim.id,
            Claim.ref,
            Claim.state,
            Claim.person_id,
            Claim.claimant_account_id,
            Membership.joined_on,
            Membership.covered_from_on,
            Claim.diagnosed_on,
            Claim.reported_on,
            Claim.accident,
            Claim.illness_code,
            Claim.age_at_diagnosis,
            Claim.province_code,
            Claim.hospital,
            Claim.doctor,
            Claim.contact_phone_hash,
            Claim.payee_account_hash,
            Claim.address_hash,
            Claim.device_hash,
        )
        .join(Membership, Membership.id == Claim.membership_id)
        .where(where)
        .order_by(Claim.id)
    ).all()
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * 19
    ids = [int(i) for i in cols[0]]
    position = {claim_id: i for i, claim_id in enumerate(ids)}
    evidence = session.execute(
        select(Evidence.claim_id, Evidence.sha256, Evidence.phash, Evidence.document_on)
        .join(Claim, Claim.id == Evidence.claim_id)
        .where(where)
    ).all()
    earliest = np.full(len(ids), NO_DATE, dtype=np.int64)
    for claim_id, _, _, document_on in evidence:
        if document_on is not None:
            row = position[claim_id]
            earliest[row] = min(earliest[row], document_on.toordinal())

    def ints(values: Iterable[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.fromiter(values, dtype=np.int64, count=len(ids))

    def days(values: Sequence[date]) -> np.ndarray[Any, np.dtype[np.int64]]:
        return ints(d.toordinal() for d in values)

    claims = ClaimColumns(
        person=ints(cols[3]),
        account=ints(cols[4]),
        joined=days(cols[5]),
        covered_from=days(cols[6]),
        diagnosed=days(cols[7]),
        reported=days(cols[8]),
        accident=np.fromiter(cols[9], dtype=bool, count=len(ids)),
        illness=factorize(cols[10]),
        age=ints(cols[11]),
        province=factorize(cols[12]),
        hospital=factorize(cols[13]),
        doctor=factorize(cols[14]),
        phone=factorize(cols[15]),
        payee=factorize(cols[16]),
        address=factorize(cols[17]),
        device=factorize(cols[18]),
        earliest_document=earliest,
    )
    phashes = [p for _, _, p, _ in evidence]
    evidence_columns = EvidenceColumns(
        claim=np.fromiter(
            (position[c] for c, _, _, _ in evidence), dtype=np.int64, count=len(evidence)
        ),
        sha=factorize([s for _, s, _, _ in evidence]),
        phash=np.fromiter(
            (int(p, 16) if p else 0 for p in phashes), dtype=np.uint64, count=len(evidence)
        ),
        has_phash=np.fromiter((p is not None for p in phashes), dtype=bool, count=len(evidence)),
    )
    return _Window(
        ids, [str(r) for r in cols[1]], [str(s) for s in cols[2]], claims, evidence_columns
    )


def _window(session: Session, plan_id: int, since: date) -> _Window:
    """Every claim of the plan reported since that day, with its evidence: the claims to score and
    the history the signals compare them with."""
    return _load(session, (Claim.plan_id == plan_id) & (Claim.reported_on >= since))


def _report_days(session: Session, plan_id: int) -> tuple[int, int]:
    """The plan's first and last report days (ordinals): how much history the plan has."""
    first, last = session.execute(
        select(func.min(Claim.reported_on), func.max(Claim.reported_on)).where(
            Claim.plan_id == plan_id
        )
    ).one()
    return first.toordinal(), last.toordinal()


def plan_params(session: Session, plan_id: int) -> RiskParams:
    """The risk thresholds and weights in force: the `[risk]` table of the plan's current version
    (one small read; the parsed rules are cached by hash). A claim is scored by the rules in force
    when it is scored, whichever version its member joined under: tuning is operational."""
    sha256, version = session.execute(
        select(PlanVersion.rules_sha256, Plan.current_version)
        .join(
            Plan, (Plan.id == PlanVersion.plan_id) & (Plan.current_version == PlanVersion.version)
        )
        .where(Plan.id == plan_id)
    ).one()
    return params_of(known_rules(session, sha256, plan_id, version).risk)


def _since(reported_on: date, params: RiskParams) -> date:
    return reported_on - timedelta(days=params.lookback_days)


def _persist(
    session: Session,
    window: _Window,
    result: RiskResult,
    rows: Sequence[int],
    now: datetime,
    params: RiskParams,
) -> None:
    """Replace the stored risk of these claims (rows of the window) with the new result."""
    ids = [window.ids[r] for r in rows]
    if not ids:
        return
    session.execute(delete(ClaimRiskSignal).where(ClaimRiskSignal.claim_id.in_(ids)))
    session.execute(delete(ClaimRisk).where(ClaimRisk.claim_id.in_(ids)))
    risks: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    for r in rows:
        score = int(result.score[r])
        risks.append(
            {
                "claim_id": window.ids[r],
                "score": score,
                "level": str(level_of(score, params)),
                "mode": str(investigation_mode(score, params)),
                "computed_at": now,
            }
        )
        signals.extend(
            {
                "claim_id": window.ids[r],
                "code": str(s.code),
                "weight": s.weight,
                "details": {"first": s.first, "second": s.second},
            }
            for s in result.signals_of(r)
        )
    session.execute(insert(ClaimRisk), risks)
    if signals:
        session.execute(insert(ClaimRiskSignal), signals)


# --- scoring one claim by indexed lookups ------------------------------------------------------------

_LINK_COLUMNS = (
    Claim.contact_phone_hash,
    Claim.payee_account_hash,
    Claim.address_hash,
    Claim.device_hash,
)
_BAND_COLUMNS = (
    Evidence.phash_band0,
    Evidence.phash_band1,
    Evidence.phash_band2,
    Evidence.phash_band3,
)


def _neighbours(
    session: Session, plan_id: int, ids: Sequence[int], since: date, params: RiskParams
) -> set[int]:
    """These claims and every claim of the plan reported since that day that shares a contact
    key, an evidence file or a close image hash with one of them: by index, however large the
    plan. (The image candidates share a band within reach; the scorer checks them exactly.)"""
    keys: list[tuple[str | None, ...]] = [
        tuple(k) for k in session.execute(select(*_LINK_COLUMNS).where(Claim.id.in_(ids)))
    ]
    files = session.execute(
        select(Evidence.sha256, Evidence.phash).where(Evidence.claim_id.in_(ids))
    ).all()
    shared = [
        column.in_(values)
        for column, values in (
            (c, sorted({str(k[i]) for k in keys if k[i] is not None}))
            for i, c in enumerate(_LINK_COLUMNS)
        )
        if values
    ]
    images = np.asarray([int(p, 16) for _, p in files if p], dtype=np.uint64)
    # Each probe on its own index (no plan or date condition, which would tempt a planner into
    # scanning the plan's window); the candidates are then kept by plan and window.
    candidates = set(session.scalars(select(Claim.id).where(or_(*shared)))) if shared else set()
    if files:
        candidates.update(
            session.scalars(
                select(Evidence.claim_id).where(Evidence.sha256.in_(sorted({s for s, _ in files})))
            )
        )
    for band, column in enumerate(_BAND_COLUMNS if images.shape[0] else ()):
        probes = sorted({v for h in images.tolist() for v in band_probes(h, band, params)})
        found_images = session.execute(
            select(Evidence.claim_id, Evidence.phash).where(column.in_(probes))
        ).all()
        if found_images:  # random band collisions are dropped here, by the exact distance
            hashes = np.asarray([int(p or "0", 16) for _, p in found_images], dtype=np.uint64)
            close = (
                hamming(hashes[:, None], images[None, :]).min(axis=1) <= params.near_duplicate_bits
            )
            candidates.update(
                c for (c, _), keep in zip(found_images, close.tolist(), strict=True) if keep
            )
    found, ordered = set(ids), sorted(candidates)
    for start in range(0, len(ordered), 1000):
        chunk = ordered[start : start + 1000]
        found.update(
            claim_id
            for claim_id, plan, reported in session.execute(
                select(Claim.id, Claim.plan_id, Claim.reported_on).where(Claim.id.in_(chunk))
            )
            if plan == plan_id and reported >= since
        )
    return found


_COUNTS = (
    "hospital_recent",
    "hospital_prior",
    "doctor_recent",
    "doctor_prior",
    "cell",
    "illness_band",
    "province",
    "total",
)


def _counts(
    session: Session, plan_id: int, near: _Window, rows: Sequence[int], params: RiskParams
) -> WindowCounts:
    """The statistical signals' counts for these rows of `near`, counted by index (COUNT over one
    hospital's, doctor's, illness's or province's claims in the row's windows); 0 elsewhere."""
    out = {name: np.zeros(len(near.ids), dtype=np.int64) for name in _COUNTS}
    facts = {
        row[0]: row
        for row in session.execute(
            select(
                Claim.id,
                Claim.hospital,
                Claim.doctor,
                Claim.illness_code,
                Claim.age_at_diagnosis,
                Claim.province_code,
                Claim.reported_on,
            ).where(Claim.id.in_([near.ids[r] for r in rows]))
        )
    }
    for r in rows:
        values = session.execute(_count_query(plan_id, facts[near.ids[r]], params)).one()
        for name, value in zip(_COUNTS, values, strict=True):
            out[name][r] = int(value)
    first_day, last_day = _report_days(session, plan_id)
    return WindowCounts(**out, first_day=first_day, last_day=last_day)


def _count_query(plan_id: int, claim: Any, params: RiskParams) -> Any:
    """One SELECT of the _COUNTS of one claim: each an index range count."""
    _, hospital, doctor, illness, age, province, reported = claim

    def count(*where: ColumnElement[bool]) -> Any:
        return select(func.count()).where(Claim.plan_id == plan_id, *where).scalar_subquery()

    def days(lo: int, hi: int | None = None) -> list[ColumnElement[bool]]:
        """lo < reported_on (<= hi), in days from the claim's report day."""
        bounds = [Claim.reported_on > reported + timedelta(days=lo)]
        return (
            bounds if hi is None else [*bounds, Claim.reported_on <= reported + timedelta(days=hi)]
        )

    recent, history, outlier = params.recent_days, params.history_days, params.outlier_days
    frequency = [
        count(column == value, *days(lo, hi)) if value is not None else literal(0)
        for column, value in ((Claim.hospital, hospital), (Claim.doctor, doctor))
        for lo, hi in ((-recent, recent), (-recent - history, -recent))
    ]
    low, high = age_band_bounds(int(age_band(np.asarray([age]))[0]))
    same_illness = [
        Claim.illness_code == illness,
        Claim.age_at_diagnosis.between(low, high),
        *days(-outlier, outlier),
    ]
    since = days(-params.lookback_days - 1)
    return select(
        *frequency,
        count(*same_illness, Claim.province_code == province),
        count(*same_illness),
        count(Claim.province_code == province, *since),
        count(*since),
    )


def _score_around(session: Session, claim: Claim, now: datetime) -> int:
    """Score a claim and re-score the open claims linked to it by a contact, a file or an image
    (they gained a link too), from their neighbours only: the cost does not grow with the plan."""
    session.flush()
    params = plan_params(session, claim.plan_id)
    since = _since(claim.reported_on, params)
    near = _load(
        session, Claim.id.in_(_neighbours(session, claim.plan_id, [claim.id], since, params))
    )
    row = near.row_of(claim.id)
    linked = [
        j
        for j, kinds in links_of(near.claims, near.evidence, row, params).items()
        if near.states[j] in _OPEN and kinds - {LinkKind.DOCTOR}
    ]
    if linked:  # their own neighbours too, over their own windows
        ids = [claim.id, *(near.ids[j] for j in linked)]
        earliest = min(date.fromordinal(int(near.claims.reported[j])) for j in [row, *linked])
        near = _load(
            session,
            Claim.id.in_(
                _neighbours(session, claim.plan_id, ids, _since(earliest, params), params)
            ),
        )
        row, linked = near.row_of(claim.id), [near.row_of(i) for i in ids[1:]]
    targets = [row, *linked]
    result = score_claims(
        near.claims,
        near.evidence,
        params,
        targets=np.asarray(targets, dtype=np.int64),
        counts=_counts(session, claim.plan_id, near, targets, params),
    )
    _persist(session, near, result, targets, now, params)
    fired = result.signals_of(row)
    audit.record(
        session,
        at=now,
        actor_account_id=None,
        action="risk_scored",
        subject_type="claim",
        subject_id=claim.id,
        ref=claim.ref,
        score=int(result.score[row]),
        signals=[str(s.code) for s in fired],
        rescored_linked=len(linked),
    )
    return int(result.score[row])


def on_claim_filed(session: Session, claim: Claim, now: datetime) -> None:
    """Hook for report_claim, inside its transaction."""
    _score_around(session, claim, now)


def on_evidence_added(session: Session, claim: Claim, now: datetime) -> None:
    """Hook for add_evidence, inside its transaction."""
    _score_around(session, claim, now)


# --- batch scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RescoreResult:
    plan_code: str
    scored: int
    flagged: int
    by_signal: dict[str, int]


def rescore_plan(ctx: ServiceContext, actor: Actor, plan_code: str) -> RescoreResult:
    """Score every open claim of a plan again with the plan's current thresholds and weights
    (after publishing a version that tunes them, or a data fix)."""
    require_role(actor.role, Role.OPERATOR, Role.REVIEWER)
    with ctx.transaction() as session:
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        params = plan_params(session, plan.id)
        oldest = session.scalar(
            select(func.min(Claim.reported_on)).where(
                Claim.plan_id == plan.id, Claim.state.in_(_OPEN)
            )
        )
        if oldest is None:
            return RescoreResult(plan.code, 0, 0, {})
        window = _window(session, plan.id, _since(oldest, params))
        first_day, _ = _report_days(session, plan.id)
        result = score_claims(
            window.claims,
            window.evidence,
            params,
            counts=window_counts(window.claims, params, first_day),
        )
        rows = [r for r, state in enumerate(window.states) if state in _OPEN]
        for start in range(0, len(rows), 1000):
            _persist(session, window, result, rows[start : start + 1000], now, params)
        picked = result.fired[rows] if rows else np.zeros((0, len(CODES)), dtype=bool)
        by_signal = {str(code): int(picked[:, i].sum()) for i, code in enumerate(CODES)}
        flagged = int((result.score[rows] >= params.medium_threshold).sum()) if rows else 0
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="risk_rescored",
            subject_type="plan",
            subject_id=plan.id,
            scored=len(rows),
            flagged=flagged,
        )
        return RescoreResult(plan.code, len(rows), flagged, by_signal)


# --- what a reviewer sees ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalView:
    code: str
    weight: int
    label_zh: str
    label_en: str
    explanation_zh: str
    explanation_en: str
    reason: str
    #: This viewer's feedback on it: True useful, False not useful, None not given.
    my_feedback: bool | None


@dataclass(frozen=True, slots=True)
class RiskView:
    claim_ref: str
    state: str
    decision_reason: str | None
    scored: bool
    score: int
    level: str
    mode: str
    computed_at: datetime | None
    signals: list[SignalView]
    fraud_record_id: int | None


def _claim(session: Session, ref: str, *, for_update: bool = False) -> Claim:
    query = select(Claim).where(Claim.ref == ref)
    claim = session.scalar(query.with_for_update() if for_update else query)
    if claim is None:
        raise NotFound("claim_not_found", f"there is no claim {ref}", "claim_ref")
    return claim


def claim_risk(ctx: ServiceContext, actor: Actor, ref: str) -> RiskView:
    """A claim's risk score with every fired signal explained (staff only)."""
    require_role(actor.role, *STAFF_ROLES)
    with ctx.reading() as session:
        claim = _claim(session, ref)
        risk = session.get(ClaimRisk, claim.id)
        rows = session.scalars(
            select(ClaimRiskSignal)
            .where(ClaimRiskSignal.claim_id == claim.id)
            .order_by(ClaimRiskSignal.weight.desc(), ClaimRiskSignal.code)
        ).all()
        mine = dict(
            session.execute(
                select(RiskSignalFeedback.code, RiskSignalFeedback.useful).where(
                    RiskSignalFeedback.claim_id == claim.id,
                    RiskSignalFeedback.reviewer_id == actor.account_id,
                )
            ).all()
        )
        record = session.scalar(
            select(FraudRecord.id).where(
                FraudRecord.claim_id == claim.id, FraudRecord.revoked_at.is_(None)
            )
        )
        signals = []
        for row in rows:
            signal = BY_CODE[SignalCode(row.code)]
            zh, en = explain(
                signal.code, float(row.details.get("first", 0)), float(row.details.get("second", 0))
            )
            signals.append(
                SignalView(
                    row.code,
                    row.weight,
                    signal.label_zh,
                    signal.label_en,
                    zh,
                    en,
                    signal.reason,
                    mine.get(row.code),
                )
            )
        if risk is None:
            params = plan_params(session, claim.plan_id)
            return RiskView(
                claim.ref,
                claim.state,
                claim.decision_reason,
                False,
                0,
                str(level_of(0, params)),
                str(investigation_mode(0, params)),
                None,
                signals,
                record,
            )
        return RiskView(
            claim.ref,
            claim.state,
            claim.decision_reason,
            True,
            risk.score,
            risk.level,
            risk.mode,
            risk.computed_at,
            signals,
            record,
        )


@dataclass(frozen=True, slots=True)
class GraphNode:
    ref: str
    state: str
    score: int | None
    center: bool


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    kinds: list[str]


@dataclass(frozen=True, slots=True)
class ClaimGraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]


def claim_graph(ctx: ServiceContext, actor: Actor, ref: str, limit: int = 30) -> ClaimGraph:
    """The claims linked to this one (shared contacts, payee, device, doctor, files or images),
    and the links among them: a ring shows as a dense cluster."""
    require_role(actor.role, *STAFF_ROLES)
    with ctx.reading() as session:
        claim = _claim(session, ref)
        params = plan_params(session, claim.plan_id)
        window = _window(session, claim.plan_id, _since(claim.reported_on, params))
        center = window.row_of(claim.id)
        first_hop = links_of(window.claims, window.evidence, center, params)
        members = [center, *sorted(first_hop)[:limit]]
        chosen = set(members)
        edges: dict[tuple[int, int], set[LinkKind]] = {}
        for i in members:
            links = (
                first_hop if i == center else links_of(window.claims, window.evidence, i, params)
            )
            for j, kinds in links.items():
                if j in chosen:
                    edges.setdefault((min(i, j), max(i, j)), set()).update(kinds)
        scores = dict(
            session.execute(
                select(ClaimRisk.claim_id, ClaimRisk.score).where(
                    ClaimRisk.claim_id.in_([window.ids[i] for i in members])
                )
            ).all()
        )
        return ClaimGraph(
            [
                GraphNode(window.refs[i], window.states[i], scores.get(window.ids[i]), i == center)
                for i in members
            ],
            [
                GraphEdge(window.refs[a], window.refs[b], sorted(str(k) for k in kinds))
                for (a, b), kinds in sorted(edges.items())
            ],
        )


# --- reviewers' feedback and the weight report -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedbackView:
    claim_ref: str
    code: str
    useful: bool


def record_feedback(
    ctx: ServiceContext, actor: Actor, ref: str, code: str, useful: bool, note: str = ""
) -> FeedbackView:
    """A reviewer says whether a signal helped on this case (changing their mind replaces it)."""
    require_role(actor.role, *FEEDBACK_ROLES)
    if code not in BY_CODE:
        raise DomainError("unknown_signal", f"there is no signal {code}", "signal")
    with ctx.transaction() as session:
        now = ctx.clock.now()
        claim = _claim(session, ref)
        fired = session.scalar(
            select(ClaimRiskSignal.id).where(
                ClaimRiskSignal.claim_id == claim.id, ClaimRiskSignal.code == code
            )
        )
        if fired is None:
            raise DomainError(
                "signal_not_fired", f"signal {code} did not fire on claim {ref}", "signal"
            )
        row = session.scalar(
            select(RiskSignalFeedback).where(
                RiskSignalFeedback.claim_id == claim.id,
                RiskSignalFeedback.code == code,
                RiskSignalFeedback.reviewer_id == actor.account_id,
            )
        )
        if row is None:
            session.add(
                RiskSignalFeedback(
                    claim_id=claim.id,
                    code=code,
                    reviewer_id=actor.account_id,
                    useful=useful,
                    note=note.strip() or None,
                    recorded_at=now,
                )
            )
        else:
            row.useful, row.note, row.recorded_at = useful, note.strip() or None, now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="risk_feedback",
            subject_type="claim",
            subject_id=claim.id,
            signal=code,
            useful=useful,
        )
        return FeedbackView(claim.ref, code, useful)


def weight_report(
    ctx: ServiceContext, actor: Actor, plan_code: str | None = None
) -> list[WeightAdvice]:
    """Per signal: how often it fired, how useful reviewers found it, how often its cases were
    rejected, and the weight the feedback suggests (set-based counts)."""
    require_role(actor.role, Role.OPERATOR, Role.REVIEWER, Role.AUDITOR)
    with ctx.reading() as session:
        scope, params = select(Claim.id), DEFAULT_PARAMS
        if plan_code:
            plan_id = plan_by_code(session, plan_code).id
            scope, params = scope.where(Claim.plan_id == plan_id), plan_params(session, plan_id)
        fired = dict(
            session.execute(
                select(ClaimRiskSignal.code, func.count())
                .where(ClaimRiskSignal.claim_id.in_(scope))
                .group_by(ClaimRiskSignal.code)
            ).all()
        )
        feedback = {
            (code, bool(useful)): n
            for code, useful, n in session.execute(
                select(RiskSignalFeedback.code, RiskSignalFeedback.useful, func.count())
                .where(RiskSignalFeedback.claim_id.in_(scope))
                .group_by(RiskSignalFeedback.code, RiskSignalFeedback.useful)
            ).all()
        }
        outcomes = {
            code: (int(decided or 0), int(rejected or 0))
            for code, decided, rejected in session.execute(
                select(
                    ClaimRiskSignal.code, func.count(Claim.decided_at), func.sum(_rejected_case())
                )
                .join(Claim, Claim.id == ClaimRiskSignal.claim_id)
                .where(ClaimRiskSignal.claim_id.in_(scope))
                .group_by(ClaimRiskSignal.code)
            ).all()
        }
        records = [
            SignalRecord(
                s.code,
                weight_of(s.code, params),
                int(fired.get(str(s.code), 0)),
                int(feedback.get((str(s.code), True), 0)),
                int(feedback.get((str(s.code), False), 0)),
                *outcomes.get(str(s.code), (0, 0)),
            )
            for s in SIGNALS
        ]
        return advise_weights(records)


def _rejected_case() -> Any:
    return case((Claim.decision_reason.is_not(None), 1), else_=0)


# --- investigation routing and the operator's figures -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModeCost:
    mode: str
    cases: int
    cost_fen: int
    #: Rounded half up to the fen.
    cost_per_case_fen: int


@dataclass(frozen=True, slots=True)
class RiskOperations:
    plan_code: str
    modes: list[ModeCost]
    flagged: int
    flagged_decided: int
    flagged_rejected: int
    flagged_rejected_fraud: int
    unflagged_decided: int
    unflagged_rejected: int


def risk_operations(ctx: ServiceContext, actor: Actor, plan_code: str) -> RiskOperations:
    """What investigations cost per case (field vs desk) and how flagged cases ended."""
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        modes = []
        for mode, role in (
            (InvestigationMode.FIELD, Role.INVESTIGATOR),
            (InvestigationMode.DESK, Role.REVIEWER),
        ):
            cases, cost = session.execute(
                select(
                    func.count(func.distinct(InvestigationReport.claim_id)),
                    func.coalesce(func.sum(InvestigationReport.cost_fen), 0),
                )
                .join(Claim, Claim.id == InvestigationReport.claim_id)
                .join(Account, Account.id == InvestigationReport.investigator_id)
                .where(Claim.plan_id == plan.id, Account.role == str(role))
            ).one()
            modes.append(
                ModeCost(
                    str(mode),
                    int(cases),
                    int(cost),
                    (2 * int(cost) + int(cases)) // (2 * int(cases)) if cases else 0,
                )
            )
        flagged_expr = ClaimRisk.score >= plan_params(session, plan.id).medium_threshold
        rows = session.execute(
            select(
                flagged_expr,
                func.count(),
                func.count(Claim.decided_at),
                func.sum(_rejected_case()),
                func.sum(_fraud_case()),
            )
            .join(ClaimRisk, ClaimRisk.claim_id == Claim.id)
            .where(Claim.plan_id == plan.id)
            .group_by(flagged_expr)
        ).all()
        figures = {bool(f): (int(n), int(d), int(r or 0), int(x or 0)) for f, n, d, r, x in rows}
        flagged = figures.get(True, (0, 0, 0, 0))
        unflagged = figures.get(False, (0, 0, 0, 0))
        return RiskOperations(
            plan.code,
            modes,
            flagged[0],
            flagged[1],
            flagged[2],
            flagged[3],
            unflagged[1],
            unflagged[2],
        )


def _fraud_case() -> Any:
    return case((Claim.decision_reason == str(RejectionReason.FRAUD), 1), else_=0)


# --- proven fraud: the record, its effects, the appeal ------------------------------------------------


@dataclass(frozen=True, slots=True)
class FraudRecordView:
    id: int
    claim_ref: str | None
    reason: str
    recorded_at: datetime
    revoked_at: datetime | None
    appeal_state: str | None


def flag_fraud(ctx: ServiceContext, actor: Actor, ref: str, reason: str) -> FraudRecordView:
    """Record proven fraud for a claim a reviewer rejected for fraud. The member loses juror status
    and may not rejoin until an appeal succeeds; they are told, with the right to appeal."""
    require_role(actor.role, Role.OPERATOR)
    reason = reason.strip()
    if not 10 <= len(reason) <= 2000:
        raise DomainError("reason_required", "give the reason in 10 to 2,000 characters", "reason")
    with ctx.transaction() as session:
        now = ctx.clock.now()
        claim = _claim(session, ref, for_update=True)
        if claim.decision_reason != RejectionReason.FRAUD:
            raise DomainError(
                "fraud_not_proven",
                "only a claim rejected for fraud can found a fraud record",
                "claim_ref",
            )
        if session.scalar(
            select(FraudRecord.id).where(
                FraudRecord.claim_id == claim.id, FraudRecord.revoked_at.is_(None)
            )
        ):
            raise Conflict("already_flagged", "this claim already has a fraud record", "claim_ref")
        record = FraudRecord(
            person_id=claim.person_id,
            account_id=claim.claimant_account_id,
            claim_id=claim.id,
            reason=reason,
            recorded_by=actor.recorded_id,
            recorded_at=now,
        )
        session.add(record)
        session.flush()
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="fraud_flagged",
            subject_type="fraud_record",
            subject_id=record.id,
            claim=claim.ref,
            person_id=claim.person_id,
            account_id=claim.claimant_account_id,
        )
        notify(
            session,
            at=now,
            account_id=claim.claimant_account_id,
            kind="fraud_flagged",
            subject_type="fraud_record",
            subject_id=record.id,
            ref=claim.ref,
        )
        return FraudRecordView(
            record.id, claim.ref, record.reason, record.recorded_at, record.revoked_at, None
        )


def fraud_exclusion(session: Session | Connection, person_id: int | None, account_id: int) -> None:
    """Refuse a known person's rejoining while they have a standing fraud record. (The enrolling
    account's own record is checked with the join's first read; a person never seen before has
    none: no query on the busy path.)"""
    if person_id is None:
        return
    if session.scalar(
        select(FraudRecord.id)
        .where(
            FraudRecord.revoked_at.is_(None),
            (FraudRecord.person_id == person_id) | (FraudRecord.account_id == account_id),
        )
        .limit(1)
    ):
        raise excluded_for_fraud()


def excluded_for_fraud() -> Forbidden:
    return Forbidden(
        "excluded_for_fraud",
        "a proven fraud record excludes joining again; the record can be appealed",
        "id_number",
    )


def my_fraud_records(ctx: ServiceContext, actor: Actor) -> list[FraudRecordView]:
    with ctx.reading() as session:
        rows = session.execute(
            select(FraudRecord, Claim.ref, FraudAppeal.state)
            .outerjoin(Claim, Claim.id == FraudRecord.claim_id)
            .outerjoin(FraudAppeal, FraudAppeal.fraud_record_id == FraudRecord.id)
            .where(FraudRecord.account_id == actor.account_id)
            .order_by(FraudRecord.id)
        ).all()
        return [
            FraudRecordView(r.id, ref, r.reason, r.recorded_at, r.revoked_at, appeal)
            for r, ref, appeal in rows
        ]


@dataclass(frozen=True, slots=True)
class AppealView:
    id: int
    fraud_record_id: int
    state: str
    reason: str
    filed_at: datetime
    decision_note: str | None


def _appeal_view(appeal: FraudAppeal) -> AppealView:
    return AppealView(
        appeal.id,
        appeal.fraud_record_id,
        appeal.state,
        appeal.reason,
        appeal.filed_at,
        appeal.decision_note,
    )


def appeal_fraud_record(
    ctx: ServiceContext, actor: Actor, record_id: int, reason: str
) -> AppealView:
    """The member appeals once against a fraud record on their account."""
    reason = reason.strip()
    if not 10 <= len(reason) <= 2000:
        raise DomainError("reason_required", "give your reason in 10 to 2,000 characters", "reason")
    with ctx.transaction() as session:
        now = ctx.clock.now()
        record = session.get(FraudRecord, record_id)
        if record is None or record.account_id != actor.account_id:
            raise NotFound(
                "fraud_record_not_found", f"there is no fraud record {record_id}", "fraud_record_id"
            )
        if record.revoked_at is not None:
            raise Conflict("record_revoked", "this record is already revoked", "fraud_record_id")
        appeal = FraudAppeal(
            fraud_record_id=record.id,
            filed_by=actor.account_id,
            reason=reason,
            filed_at=now,
            state="pending",
        )
        session.add(appeal)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                "already_appealed", "this record has already been appealed", "fraud_record_id"
            ) from None
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="fraud_appealed",
            subject_type="fraud_record",
            subject_id=record.id,
            appeal_id=appeal.id,
        )
        return _appeal_view(appeal)


def pending_appeals(ctx: ServiceContext, actor: Actor) -> list[AppealView]:
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    with ctx.reading() as session:
        return [
            _appeal_view(a)
            for a in session.scalars(
                select(FraudAppeal).where(FraudAppeal.state == "pending").order_by(FraudAppeal.id)
            )
        ]


def decide_appeal(
    ctx: ServiceContext, actor: Actor, appeal_id: int, *, uphold: bool, note: str
) -> AppealView:
    """Another operator than the one who recorded the fraud decides; upheld, the record is revoked
    (juror status and the right to join come back with it)."""
    require_role(actor.role, Role.OPERATOR)
    if not note.strip():
        raise DomainError("note_required", "explain the decision on the appeal", "note")
    with ctx.transaction() as session:
        now = ctx.clock.now()
        appeal = session.get(FraudAppeal, appeal_id, with_for_update=True)
        if appeal is None:
            raise NotFound("appeal_not_found", f"there is no appeal {appeal_id}", "appeal_id")
        if appeal.state != "pending":
            raise Conflict("already_decided", "this appeal has been decided", "appeal_id")
        record = session.get(FraudRecord, appeal.fraud_record_id, with_for_update=True)
        assert record is not None
        if record.recorded_by == actor.account_id:
            raise Forbidden(
                "separated_duties", "whoever recorded the fraud cannot decide its appeal"
            )
        appeal.state = "upheld" if uphold else "dismissed"
        appeal.decided_by, appeal.decided_at, appeal.decision_note = (
            actor.recorded_id,
            now,
            note.strip(),
        )
        if uphold:
            record.revoked_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action=f"fraud_appeal_{appeal.state}",
            subject_type="fraud_record",
            subject_id=record.id,
            appeal_id=appeal.id,
        )
        if record.account_id is not None:
            notify(
                session,
                at=now,
                account_id=record.account_id,
                kind=f"fraud_appeal_{appeal.state}",
                subject_type="fraud_record",
                subject_id=record.id,
                note=note.strip(),
            )
        return _appeal_view(appeal)
