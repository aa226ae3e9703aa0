"""Scoring claims: when filed and when evidence arrives (the hooks the claim services call), and a
plan's open claims in one batch; every signal is stored with its explanation's numbers.

Nothing here rejects a claim: a score orders and routes work; people decide. The link data and
image hashes a claim carries are computed here too, for the claim and evidence services.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import ColumnElement, delete, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    ClaimRisk,
    ClaimRiskSignal,
    Evidence,
    Membership,
    Plan,
    PlanVersion,
)
from mutualaid.db.queries.plans import known_rules, plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.claims import OPEN_STATES
from mutualaid.domain.errors import NotFound
from mutualaid.domain.plans import params_of
from mutualaid.domain.risk import CODES, ClaimLinks, RiskParams, investigation_mode, level_of
from mutualaid.domain.risk_scores import (
    NO_DATE,
    ClaimColumns,
    EvidenceColumns,
    LinkKind,
    RiskResult,
    WindowCounts,
    age_band,
    age_band_bounds,
    band_probes,
    factorize,
    hamming,
    links_of,
    score_claims,
    window_counts,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.personal_data import PersonalDataProtector

_OPEN = [str(s) for s in OPEN_STATES]

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


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


def plan_window(session: Session, plan_id: int, since: date) -> _Window:
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


def window_start(reported_on: date, params: RiskParams) -> date:
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
    since = window_start(claim.reported_on, params)
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
                _neighbours(session, claim.plan_id, ids, window_start(earliest, params), params)
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
    work: UnitOfWork[RescoreResult] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
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
        window = plan_window(session, plan.id, window_start(oldest, params))
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
        uow.commit(RescoreResult(plan.code, len(rows), flagged, by_signal))
    return uow.result


def claim_by_ref(session: Session, ref: str, *, for_update: bool = False) -> Claim:
    """The claim with this reference, or NotFound."""
    query = select(Claim).where(Claim.ref == ref)
    claim = session.scalar(query.with_for_update() if for_update else query)
    if claim is None:
        raise NotFound(
            "claim_not_found",
            f"there is no claim {ref}",
            "claim_ref",
            details={"ref": ref},
        )
    return claim
