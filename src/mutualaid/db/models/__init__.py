"""Tables. Money columns are BigInteger fen named *_fen; instants are aware UTC *_at; dates *_on.

One module per noun; this package imports them all, so ``Base.metadata`` is complete (Alembic
reads it) and ``from mutualaid.db.models import X`` keeps working.
"""

from mutualaid.db.models.accounts import (
    Account,
    AccountInvitation,
    ApiToken,
    AuditEvent,
    IdempotencyKey,
    Notification,
    PhoneCode,
    RateCounter,
    StaffSecondFactor,
)
from mutualaid.db.models.base import NAMING, Base, Id, UtcDateTime
from mutualaid.db.models.claims import (
    OPEN_CLAIM_STATES_SQL,
    Claim,
    ClaimEventRow,
    Evidence,
    InvestigationReport,
    Objection,
)
from mutualaid.db.models.juries import JurorCertification, JuryCase, JurySeat, JuryVote
from mutualaid.db.models.ledger import (
    CollectionFailure,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PrepaidBalance,
)
from mutualaid.db.models.members import (
    ACTIVE_STATES_SQL,
    AgeOutMove,
    Membership,
    MembershipRefund,
    Person,
)
from mutualaid.db.models.payments import (
    PaymentAgreement,
    PayoutRelease,
    ProviderNotification,
    ProviderPayment,
)
from mutualaid.db.models.periods import (
    Period,
    PeriodBand,
    PeriodBandGroup,
    PeriodChargeException,
    PeriodChargeTree,
    PeriodCohort,
)
from mutualaid.db.models.plans import (
    Plan,
    PlanSponsorship,
    PlanVersion,
    PlanWindDown,
    PrepaidRefund,
    SponsoredScheme,
)
from mutualaid.db.models.risk import (
    ClaimRisk,
    ClaimRiskSignal,
    FraudAppeal,
    FraudRecord,
    RiskSignalFeedback,
)
from mutualaid.db.models.scheduling import SITE_SCOPE, ScheduledRun
from mutualaid.db.models.transparency import (
    LogCheckpoint,
    LogEntry,
    LogState,
    LogTile,
    LogWitnessState,
)

__all__ = [
    "ACTIVE_STATES_SQL",
    "NAMING",
    "OPEN_CLAIM_STATES_SQL",
    "SITE_SCOPE",
    "Account",
    "AccountInvitation",
    "AgeOutMove",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Claim",
    "ClaimEventRow",
    "ClaimRisk",
    "ClaimRiskSignal",
    "CollectionFailure",
    "Evidence",
    "FraudAppeal",
    "FraudRecord",
    "Id",
    "IdempotencyKey",
    "InvestigationReport",
    "JurorCertification",
    "JuryCase",
    "JurySeat",
    "JuryVote",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "LogCheckpoint",
    "LogEntry",
    "LogState",
    "LogTile",
    "LogWitnessState",
    "Membership",
    "MembershipRefund",
    "Notification",
    "Objection",
    "PaymentAgreement",
    "PayoutRelease",
    "Period",
    "PeriodBand",
    "PeriodBandGroup",
    "PeriodChargeException",
    "PeriodChargeTree",
    "PeriodCohort",
    "Person",
    "PhoneCode",
    "Plan",
    "PlanSponsorship",
    "PlanVersion",
    "PlanWindDown",
    "PrepaidBalance",
    "PrepaidRefund",
    "ProviderNotification",
    "ProviderPayment",
    "RateCounter",
    "RiskSignalFeedback",
    "ScheduledRun",
    "SponsoredScheme",
    "StaffSecondFactor",
    "UtcDateTime",
]
