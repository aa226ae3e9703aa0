"""Joining a plan: the busiest write of a launch (3.3M joins in 3 days).

A join is one read and one write (db/queries/memberships.py), its `membership_event` leaf
(issue 14) included in the write. On PostgreSQL `ctx.autocommit()`
lets each stand alone: the write is one statement, atomic by itself, so no BEGIN or COMMIT is sent;
on SQLite the block is one transaction. The idempotency key's row is part of the write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mutualaid.db.queries.memberships import (
    JoiningFacts,
    JoiningRows,
    MembershipRow,
    PersonRow,
    insert_joining,
    joining_facts,
    person_name_masked,
)
from mutualaid.db.queries.plans import known_rules
from mutualaid.domain.accounts import Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.identities import ResidentId, check_full_name, mask_name, parse_resident_id
from mutualaid.domain.memberships import (
    MembershipState,
    Relation,
    coverage_dates,
    enrollment_refusals,
    refuse_if_any,
)
from mutualaid.domain.schemes import join_refusal
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor, BearerToken, actor_of_token, authenticate
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.debit_authorisations import (
    needs_debit_agreement,
    require_debit_agreement,
)
from mutualaid.services.enrollment.membership_leaves import membership_leaf
from mutualaid.services.enrollment.memberships import MembershipView
from mutualaid.services.idempotency import (
    KeyRow,
    Once,
    UnitOfWork,
    check_key,
    fingerprint,
    stored_answer,
)
from mutualaid.services.risk import fraud_records
from mutualaid.transparency.merkle import hash_leaf


@dataclass(frozen=True, slots=True)
class EnrollmentRequest:
    full_name: str
    id_number: str
    relation: Relation = Relation.SELF
    health_answers: Mapping[str, bool] = field(default_factory=dict)
    #: The sha256 of the plan rules the member read and agreed to (the plan's current version's
    #: `rules_sha256`); None: no consent given, and the join is refused (`consent_required`).
    rules_sha256: str | None = None


class IdentityUnavailable(Conflict):
    """Someone else's person: one answer whatever that person holds, so the refusal does not tell
    a stranger whether an ID number is a member's (security issue #13, finding 12)."""

    def __init__(self, account_id: int, person_id: int) -> None:
        super().__init__(
            "identity_unavailable",
            "this person cannot be enrolled from this account; if the ID number is yours, "
            "ask the plan operator",
            "id_number",
        )
        self.account_id = account_id
        self.person_id = person_id


@dataclass(frozen=True, slots=True)
class _Applicant:
    """The person to enroll, as the request describes them (its own rules checked)."""

    resident: ResidentId
    full_name: str
    identity_hash: str
    relation: Relation
    health_answers: Mapping[str, bool]
    credit_score: int | None
    #: The hash under every live key version, current first (a key rotation may be under way).
    identity_hashes: tuple[str, ...] = ()
    #: The rules hash the applicant consented to (None: no consent).
    rules_sha256: str | None = None

    def fingerprint(self) -> dict[str, object]:
        return {
            "id": self.identity_hash,
            "name": self.full_name,
            "relation": str(self.relation),
            "answers": dict(self.health_answers),
        }


def enroll_member(
    ctx: ServiceContext,
    caller: Actor | BearerToken,
    plan_code: str,
    request: EnrollmentRequest,
    *,
    idempotency_key: str | None = None,
) -> MembershipView:
    """Enroll a person (the caller themself or a family member) in a plan; the caller pays for
    them. An API caller may come as its bearer token, checked in the join's first read (an unknown
    or expired token is still refused before anything else). Someone else's person is refused
    with one answer and recorded for staff."""
    if isinstance(caller, BearerToken) and ctx.credit_check is not None:
        caller = authenticate(ctx, caller.token)  # never consult a credit check for a stranger
    applicant = _applicant(ctx, caller, request)
    once: Once[MembershipView] | None = None
    try:
        # Not a unit of work: the hot path's documented exception (module docstring). On
        # PostgreSQL the read and the one-statement write each commit alone; on SQLite the block
        # is one transaction. Either way a refusal or a lost race leaves nothing written.
        with ctx.autocommit() as connection:
            now = ctx.clock.now()
            facts = _read_facts(connection, caller, plan_code, applicant.identity_hashes, now)
            actor = (
                caller if isinstance(caller, Actor) else _caller_of(connection, caller, facts, now)
            )
            if facts is None:
                raise NotFound("plan_not_found", f"there is no plan {plan_code!r}", "plan_code")
            once = Once(
                actor.account_id,
                idempotency_key,
                f"enroll:{plan_code}",
                applicant.fingerprint(),
                MembershipView,
            )
            if idempotency_key is not None:
                check_key(idempotency_key)
            view, rows = _checked_joining(ctx, connection, actor, facts, applicant)
            try:
                insert_joining(connection, _with_key(ctx, rows, once, view))
            except IntegrityError:
                raise _already_member() from None
    except DomainError as refused:
        # A refusal after which the key has an answer: the retry of a join that succeeded.
        answer = stored_answer(ctx, once) if once is not None and once.key is not None else None
        if answer is not None:
            return answer
        if isinstance(refused, IdentityUnavailable):
            _record_probe(ctx, refused)
        raise
    return view


def _applicant(
    ctx: ServiceContext, caller: Actor | BearerToken, request: EnrollmentRequest
) -> _Applicant:
    """The request's own rules (ID number, name); a token is checked first: 401 before 400, as
    for every other endpoint."""
    try:
        resident = parse_resident_id(request.id_number)
        full_name = check_full_name(request.full_name)
    except DomainError:
        if isinstance(caller, BearerToken):
            authenticate(ctx, caller.token)
        raise
    identity_hashes = tuple(ctx.protector.identity_hashes(resident.number))
    identity_hash = identity_hashes[0]
    credit_score = (
        ctx.credit_check.score(identity_hash, resident.birth_on) if ctx.credit_check else None
    )
    return _Applicant(
        resident,
        full_name,
        identity_hash,
        request.relation,
        request.health_answers,
        credit_score,
        identity_hashes,
        request.rules_sha256,
    )


def _read_facts(
    connection: Connection,
    caller: Actor | BearerToken,
    plan_code: str,
    identity_hashes: Sequence[str],
    now: datetime,
) -> JoiningFacts | None:
    if isinstance(caller, BearerToken):
        return joining_facts(
            connection, plan_code, identity_hashes, token_hash=caller.token_hash, now=now
        )
    return joining_facts(connection, plan_code, identity_hashes, account_id=caller.account_id)


def _caller_of(
    connection: Connection, token: BearerToken, facts: JoiningFacts | None, now: datetime
) -> Actor:
    """The caller found by the join's read, or (no plan, or no such token) refused as by
    `authenticate`."""
    if facts is not None and facts.caller_id is not None and facts.caller_role is not None:
        return Actor(facts.caller_id, Role(facts.caller_role))
    return actor_of_token(connection, token, now)


def _checked_joining(
    ctx: ServiceContext,
    connection: Connection,
    actor: Actor,
    facts: JoiningFacts,
    applicant: _Applicant,
) -> tuple[MembershipView, JoiningRows]:
    """Every rule of joining, then the view and rows to write; nothing written yet."""
    now = ctx.clock.now()
    plan = facts.plan
    rules = known_rules(connection, facts.rules_sha256, plan.id, plan.current_version)
    refused = join_refusal(plan.status)  # plan_winding_down or plan_closed (issue 8)
    if refused:
        raise DomainError(*refused)
    today = local_date(now, rules.zone)
    refuse_if_any(
        enrollment_refusals(
            rules, applicant.resident, applicant.health_answers, today, applicant.credit_score
        )
    )
    check_consent(applicant.rules_sha256, facts.rules_sha256, plan.current_version)
    if facts.account_flagged:
        raise fraud_records.excluded_for_fraud()
    if needs_debit_agreement(rules):
        require_debit_agreement(connection, actor.account_id, plan.code)
    known_id = _known_person(facts, actor, applicant.relation)
    fraud_records.fraud_exclusion(connection, known_id, actor.account_id)  # issue 9: no rejoining
    person_id = facts.new_person_id if known_id is None else known_id
    membership_id = facts.new_membership_id
    resident = applicant.resident
    name_masked = mask_name(applicant.full_name)
    person: PersonRow | None = None
    if known_id is None:
        person = {
            "id": person_id,
            "account_id": actor.account_id,
            "relation": applicant.relation,
            "identity_hash": applicant.identity_hash,
            "identity_ciphertext": ctx.protector.encrypt(resident.number),
            "name_ciphertext": ctx.protector.encrypt(applicant.full_name),
            "key_version": ctx.protector.current_version,
            "name_masked": name_masked,
            "birth_on": resident.birth_on,
            "sex": resident.sex,
            "province_code": resident.province_code,
            "created_at": now,
        }
    else:
        name_masked = person_name_masked(connection, known_id) or name_masked
    dates = coverage_dates(rules, today, resident.birth_on)
    membership: MembershipRow = {
        "id": membership_id,
        "plan_id": plan.id,
        "plan_version": plan.current_version,
        "rules_sha256": facts.rules_sha256,
        "person_id": person_id,
        "payer_account_id": actor.account_id,
        "state": MembershipState.WAITING,
        "joined_at": now,
        "joined_on": dates.joined_on,
        "waiting_ends_on": dates.waiting_ends_on,
        "covered_from_on": dates.covered_from_on,
        "ages_out_on": dates.ages_out_on,
    }
    audit_row = audit.audit_row(
        at=now,
        actor_account_id=actor.account_id,
        action="member_enrolled",
        subject_type="membership",
        subject_id=membership_id,
        plan=plan.code,
        relation=str(applicant.relation),
        plan_version=plan.current_version,
    )
    view = MembershipView(
        id=membership_id,
        plan_code=plan.code,
        person_id=person_id,
        name_masked=name_masked,
        relation=applicant.relation,
        state=MembershipState.WAITING,
        joined_on=dates.joined_on,
        waiting_ends_on=dates.waiting_ends_on,
        covered_from_on=dates.covered_from_on,
        ages_out_on=dates.ages_out_on,
    )
    pending = membership_leaf(plan.code, membership_id, "join", MembershipState.WAITING, now)
    leaf = {
        "leaf_type": pending.leaf_type,
        "leaf_data": pending.leaf_data,
        "leaf_hash": hash_leaf(pending.leaf_data),
        "subject_type": pending.subject_type,
        "subject_ref": pending.subject_ref,
        "queued_at": now,
    }
    notice = {
        "account_id": actor.account_id,
        "kind": "membership_joined",
        "subject_type": "membership",
        "subject_id": membership_id,
        "payload": {"plan": plan.code, "waiting_ends_on": dates.waiting_ends_on.isoformat()},
        "created_at": now,
        "attempts": 0,
    }
    return view, JoiningRows(person, membership, audit_row, None, leaf, notice)


def check_consent(given: str | None, current: str, version: int) -> None:
    """The member agreed to the plan's current rules: refused without consent, or when the rules
    they read are not the current ones (the details carry the current hash, to read and agree to)."""
    if not given:
        raise DomainError(
            "consent_required",
            "read the plan rules and agree to them: send their rules_sha256",
            "rules_sha256",
            details={"rules_sha256": current, "version": version},
        )
    if given.strip().lower() != current:
        raise Conflict(
            "rules_changed",
            "the plan rules changed since you read them: read the current rules and agree again",
            "rules_sha256",
            details={"rules_sha256": current, "version": version},
        )


def _with_key(
    ctx: ServiceContext, rows: JoiningRows, once: Once[MembershipView], view: MembershipView
) -> JoiningRows:
    """The rows with the idempotency key's row, whose answer is `view` (when there is a key)."""
    if once.key is None:
        return rows
    key = KeyRow(
        once.account_id,
        once.key,
        once.operation,
        fingerprint(once.request),
        ctx.clock.now(),
        MembershipView,
    )
    return JoiningRows(
        rows.person, rows.membership, rows.audit, key.values(view), rows.leaf, rows.notice
    )


def _known_person(facts: JoiningFacts, actor: Actor, relation: Relation) -> int | None:
    """The person being enrolled if already registered by this account (None: a new person)."""
    if facts.known_person_id is not None:
        if facts.known_account_id != actor.account_id:
            raise IdentityUnavailable(actor.account_id, facts.known_person_id)
        return facts.known_person_id
    if facts.holder_exists and relation is Relation.SELF:
        raise Conflict(
            "self_already_registered",
            "this account has already enrolled its holder; choose a relation",
            "relation",
        )
    return None


def _already_member() -> Conflict:
    return Conflict(
        "already_member", "this person already has a membership in this plan", "id_number"
    )


def _record_probe(ctx: ServiceContext, refused: IdentityUnavailable) -> None:
    """A staff-visible audit row (the person's id, never the ID number): many of these from one
    account is someone testing ID numbers."""
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        audit.record(
            uow.session,
            at=ctx.clock.now(),
            actor_account_id=refused.account_id,
            action="identity_probe",
            subject_type="person",
            subject_id=refused.person_id,
        )
        uow.commit(None)
