"""The case file a juror reads before voting: the same for every juror of a round, built here so
the API (`GET /api/v1/juries/{id}/case-file`) and the web page (`/jury/cases/{id}`) show the same.

What is in it: why the claim was rejected (the reason code and the reviewer's note), what the
investigators found, what the claimant says in their dispute, a summary of the evidence (the kind
of each document, its date, who added it: never a label, a file or an image), the hospital's level
(not its name), earlier rounds, and the plan rules that apply. Free text passes through
`domain.redaction.redact` with the claimant's name, ID number and phone, so none of them reaches a
juror even if a reviewer or the member wrote them into a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Account,
    Claim,
    ClaimEventRow,
    Evidence,
    InvestigationReport,
    JuryCase,
    Membership,
    Person,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimEvent
from mutualaid.domain.plans import PlanRules
from mutualaid.domain.redaction import document_kind, hospital_level, redact
from mutualaid.services.personal_data import PersonalDataProtector


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    #: diagnosis_certificate, pathology_report, hospital_record, … or other (from the label's words)
    kind: str
    #: pdf, image or other (from the media type)
    form: str
    #: The date on the document when the uploader gave one, else None.
    document_on: date | None
    uploaded_on: date
    #: member or investigator
    added_by: str


@dataclass(frozen=True, slots=True)
class Finding:
    #: approve or reject (what the investigator recommended)
    recommendation: str
    findings: str
    filed_on: date


@dataclass(frozen=True, slots=True)
class EarlierRound:
    round: int
    outcome: str | None
    approve_votes: int | None
    reject_votes: int | None


@dataclass(frozen=True, slots=True)
class RulesApplied:
    illness_code: str
    illness_zh: str
    illness_en: str
    #: Is the illness in the plan's list at all?
    illness_listed: bool
    tier: str | None
    #: The aid the plan pays for this age, tier and cause (None: no band covers it).
    payout_fen: int | None
    waiting_days: int
    accidents_covered_while_waiting: bool
    #: Days from joining to the first diagnosis, and whether that is after the waiting period.
    days_since_joining: int
    after_waiting_period: bool
    #: The jury: how many votes make a round valid, the share approval must exceed (%).
    jury_mode: str
    min_votes: int
    approve_above_percent: float
    panel_size: int
    max_rounds: int


@dataclass(frozen=True, slots=True)
class JuryCaseFile:
    round: int
    #: The reviewer's reason code (RejectionReason) and note, redacted.
    rejection_reason: str | None
    reviewer_note: str | None
    rejected_on: date | None
    investigations: list[Finding]
    #: The claimant's words when disputing, redacted.
    dispute: str | None
    disputed_on: date | None
    evidence: list[EvidenceItem]
    #: tertiary, secondary, county, primary or unknown (never the hospital's name).
    hospital_level: str
    accident: bool
    diagnosed_on: date
    reported_on: date
    earlier_rounds: list[EarlierRound]
    rules: RulesApplied


def _media_form(media_type: str) -> str:
    if media_type == "application/pdf":
        return "pdf"
    return "image" if media_type.startswith("image/") else "other"


def build_case_file(
    session: Session,
    protector: PersonalDataProtector,
    case: JuryCase,
    claim: Claim,
    rules: PlanRules,
) -> JuryCaseFile:
    """The file for `case` (a round of `claim`): the same for every reader, names taken out."""
    person = session.get_one(Person, claim.person_id)
    membership = session.get_one(Membership, claim.membership_id)
    claimant = session.get_one(Account, claim.claimant_account_id)
    known = [
        protector.decrypt(person.name_ciphertext),
        protector.decrypt(person.identity_ciphertext),
        claimant.phone,
        claimant.display_name or "",
        claim.hospital,
        claim.doctor or "",
    ]
    zone = rules.zone

    def clean(text: str | None) -> str | None:
        return redact(text, known) if text and text.strip() else None

    events = session.execute(
        select(ClaimEventRow.event, ClaimEventRow.at, ClaimEventRow.public_note)
        .where(
            ClaimEventRow.claim_id == claim.id,
            ClaimEventRow.event.in_([str(ClaimEvent.REJECT), str(ClaimEvent.DISPUTE)]),
        )
        .order_by(ClaimEventRow.id)
    ).all()
    rejected = [e for e in events if e.event == ClaimEvent.REJECT]
    disputed = [e for e in events if e.event == ClaimEvent.DISPUTE]
    reports = session.execute(
        select(
            InvestigationReport.recommendation,
            InvestigationReport.findings,
            InvestigationReport.filed_at,
        )
        .where(InvestigationReport.claim_id == claim.id)
        .order_by(InvestigationReport.id)
    ).all()
    documents = session.execute(
        select(
            Evidence.label,
            Evidence.media_type,
            Evidence.document_on,
            Evidence.uploaded_at,
            Evidence.purpose,
        )
        .where(Evidence.claim_id == claim.id)
        .order_by(Evidence.id)
    ).all()
    earlier = session.execute(
        select(JuryCase.round, JuryCase.outcome, JuryCase.approve_votes, JuryCase.reject_votes)
        .where(
            JuryCase.claim_id == claim.id,
            JuryCase.round < case.round,
            JuryCase.status == "closed",
        )
        .order_by(JuryCase.round)
    ).all()
    illness = rules.illness(claim.illness_code)
    days = (claim.diagnosed_on - membership.joined_on).days
    jury = rules.jury
    return JuryCaseFile(
        round=case.round,
        rejection_reason=claim.decision_reason,
        reviewer_note=clean(claim.decision_note),
        rejected_on=local_date(rejected[-1].at, zone) if rejected else None,
        investigations=[
            Finding(r.recommendation, clean(r.findings) or "", local_date(r.filed_at, zone))
            for r in reports
        ],
        dispute=clean(disputed[-1].public_note) if disputed else None,
        disputed_on=local_date(disputed[-1].at, zone) if disputed else None,
        evidence=[
            EvidenceItem(
                document_kind(d.label),
                _media_form(d.media_type),
                d.document_on,
                local_date(d.uploaded_at, zone),
                "member" if d.purpose == "claim" else "investigator",
            )
            for d in documents
        ],
        hospital_level=hospital_level(claim.hospital),
        accident=claim.accident,
        diagnosed_on=claim.diagnosed_on,
        reported_on=claim.reported_on,
        earlier_rounds=[
            EarlierRound(r.round, r.outcome, r.approve_votes, r.reject_votes) for r in earlier
        ],
        rules=RulesApplied(
            illness_code=claim.illness_code,
            illness_zh=illness.name_zh if illness else claim.illness_code,
            illness_en=illness.name_en if illness else claim.illness_code,
            illness_listed=illness is not None,
            tier=str(illness.tier) if illness else None,
            payout_fen=rules.payout_fen(claim.age_at_diagnosis, illness.tier, claim.accident)
            if illness
            else None,
            waiting_days=rules.waiting_period.days,
            accidents_covered_while_waiting=rules.waiting_period.accidents_covered,
            days_since_joining=days,
            after_waiting_period=claim.diagnosed_on >= membership.covered_from_on,
            jury_mode=jury.mode,
            min_votes=jury.min_votes,
            approve_above_percent=jury.approve_above_bp / 100,
            panel_size=jury.panel_size,
            max_rounds=jury.max_rounds,
        ),
    )
