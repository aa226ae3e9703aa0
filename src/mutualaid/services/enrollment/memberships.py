"""Joining a plan, leaving it, and the daily job that applies what time alone changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import Executable, bindparam, func, insert, literal, literal_column, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Account,
    ApiToken,
    AuditEvent,
    Base,
    FraudRecord,
    IdempotencyKey,
    Membership,
    Person,
    Plan,
    PlanVersion,
)
from mutualaid.db.queries.memberships import family_memberships
from mutualaid.db.queries.plans import (
    PlanHead,
    current_rules,
    known_rules,
    plan_by_code,
    plan_with_rules,
    rules_of,
)
from mutualaid.domain.accounts import STAFF_ROLES, Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.identities import mask_name, parse_resident_id
from mutualaid.domain.memberships import (
    ACTIVE_STATES,
    END_REASONS,
    CoverageDates,
    MembershipEvent,
    MembershipState,
    Relation,
    coverage_dates,
    enrollment_refusals,
    refuse_if_any,
    state_on,
    transition,
)
from mutualaid.domain.plans import PlanRules
from mutualaid.domain.schemes import join_refusal
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor, BearerToken, authenticate
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import KeyRow, act_once, run_idempotent
from mutualaid.services.risk import fraud_records

_ACTIVE = [str(s) for s in ACTIVE_STATES]
# Built once: a statement with bound parameters skips SQLAlchemy's per-call coercion and caching.
_INSERT_PERSON = insert(Person).returning(Person.id)
_INSERT_MEMBERSHIP = insert(Membership).returning(Membership.id)


@dataclass(frozen=True, slots=True)
class EnrollmentRequest:
    full_name: str
    id_number: str
    relation: Relation = Relation.SELF
    health_answers: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MembershipView:
    id: int
    plan_code: str
    person_id: int
    name_masked: str
    relation: Relation
    state: MembershipState
    joined_on: date
    waiting_ends_on: date
    covered_from_on: date
    ages_out_on: date
    end_reason: str | None = None


def _view(m: Membership, person: Person, plan_code: str, today: date) -> MembershipView:
    dates = CoverageDates(m.joined_on, m.waiting_ends_on, m.covered_from_on, m.ages_out_on)
    return MembershipView(
        id=m.id,
        plan_code=plan_code,
        person_id=person.id,
        name_masked=person.name_masked,
        relation=Relation(person.relation),
        state=state_on(dates, MembershipState(m.state), today),
        joined_on=m.joined_on,
        waiting_ends_on=m.waiting_ends_on,
        covered_from_on=m.covered_from_on,
        ages_out_on=m.ages_out_on,
        end_reason=m.end_reason,
    )


def _already_member() -> Conflict:
    return Conflict(
        "already_member", "this person already has a membership in this plan", "id_number"
    )


def _person_facts(account: Any) -> tuple[Any, ...]:
    """Who this identity already is, whether the account has enrolled its holder, and whether it
    has a standing fraud record: scalar subqueries, so they ride along with another read."""
    by_identity = Person.identity_hash == bindparam("identity_hash")
    return (
        select(Person.id).where(by_identity).scalar_subquery().label("known_person_id"),
        select(Person.account_id).where(by_identity).scalar_subquery().label("known_account_id"),
        select(Person.id)
        .where(Person.account_id == account, Person.relation == Relation.SELF)
        .exists()
        .label("holder_exists"),
        # Issue 9: an account with a standing proven-fraud record enrolls no one.
        select(FraudRecord.id)
        .where(FraudRecord.account_id == account, FraudRecord.revoked_at.is_(None))
        .exists()
        .label("account_flagged"),
    )


_PERSON_FACTS = select(*_person_facts(bindparam("account_id")))


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


def _record_probe(ctx: ServiceContext, refused: IdentityUnavailable) -> None:
    """A staff-visible audit row (the person's id, never the ID number): many of these from one
    account is someone testing ID numbers."""
    with ctx.transaction() as session:
        audit.record(
            session,
            at=ctx.clock.now(),
            actor_account_id=refused.account_id,
            action="identity_probe",
            subject_type="person",
            subject_id=refused.person_id,
        )


def _known_person(facts: Any, actor: Actor, relation: Relation) -> int | None:
    """The person being enrolled if already registered by this account (None: a new person)."""
    if facts.known_person_id is not None:
        if facts.known_account_id != actor.account_id:
            raise IdentityUnavailable(actor.account_id, int(facts.known_person_id))
        return int(facts.known_person_id)
    if facts.holder_exists and relation is Relation.SELF:
        raise Conflict(
            "self_already_registered",
            "this account has already enrolled its holder; choose a relation",
            "relation",
        )
    return None


@dataclass(frozen=True, slots=True)
class _Joining:
    """One enrollment, checked and ready to write."""

    person_id: int | None
    new_person: dict[str, Any] | None
    membership: dict[str, Any]
    audit_row: dict[str, Any]
    view: MembershipView

    def view_of(self, membership_id: int, person_id: int) -> MembershipView:
        return replace(self.view, id=membership_id, person_id=person_id)


def _binds(model: type[Base], prefix: str, columns: Iterable[str]) -> dict[str, Any]:
    table = model.__table__
    return {name: bindparam(prefix + name, type_=table.c[name].type) for name in columns}


def _prefixed(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in values.items()}


_PERSON_COLUMNS = (
    "id",
    "account_id",
    "relation",
    "identity_hash",
    "identity_ciphertext",
    "name_ciphertext",
    "name_masked",
    "birth_on",
    "sex",
    "province_code",
    "created_at",
)
_MEMBERSHIP_COLUMNS = (
    "id",
    "plan_id",
    "plan_version",
    "person_id",
    "payer_account_id",
    "state",
    "joined_at",
    "joined_on",
    "waiting_ends_on",
    "covered_from_on",
    "ages_out_on",
)
_AUDIT_COLUMNS = (
    "occurred_at",
    "actor_account_id",
    "action",
    "subject_type",
    "subject_id",
    "details",
)
_KEY_COLUMNS = ("account_id", "key", "operation", "request_sha256", "created_at", "response")


def _one_statement_join(new_person: bool, with_key: bool) -> Executable:
    """PostgreSQL: WITH (INSERT person), (INSERT membership), (INSERT key) INSERT audit — the
    ids come from the sequences beforehand, so no part waits for another's RETURNING."""
    parts = []
    if new_person:
        parts.append(insert(Person).values(_binds(Person, "p_", _PERSON_COLUMNS)).cte("new_person"))
    parts.append(
        insert(Membership)
        .values(_binds(Membership, "m_", _MEMBERSHIP_COLUMNS))
        .cte("new_membership")
    )
    if with_key:
        parts.append(
            insert(IdempotencyKey).values(_binds(IdempotencyKey, "k_", _KEY_COLUMNS)).cte("answer")
        )
    return insert(AuditEvent).values(_binds(AuditEvent, "a_", _AUDIT_COLUMNS)).add_cte(*parts)


_ONE_STATEMENT_JOINS = {
    (person, key): _one_statement_join(person, key)
    for person in (False, True)
    for key in (False, True)
}


def _plan_and_new_ids(account: Any, *caller: Any) -> Executable:
    """PostgreSQL: the plan, its rules' hash, two new ids, the person facts (and the caller)."""
    return (
        select(
            Plan.id,
            Plan.code,
            Plan.status,
            Plan.current_version,
            PlanVersion.rules_sha256,
            # The sequences of the two BIGSERIAL ids, named as PostgreSQL names them.
            func.nextval(literal_column("'persons_id_seq'::regclass")).label("new_person_id"),
            func.nextval(literal_column("'memberships_id_seq'::regclass")).label(
                "new_membership_id"
            ),
            *_person_facts(account),
            *caller,
        )
        .join(
            PlanVersion,
            (PlanVersion.plan_id == Plan.id) & (PlanVersion.version == Plan.current_version),
        )
        .where(Plan.code == bindparam("code"))
    )


_CALLER = (
    select(ApiToken.account_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.expires_at > bindparam("now"))
    .scalar_subquery()
)
_PLAN_AND_NEW_IDS = _plan_and_new_ids(bindparam("account_id"))
#: The same read for a caller known only by a bearer token: the token is checked in it too.
_PLAN_AND_NEW_IDS_BY_TOKEN = _plan_and_new_ids(
    _CALLER,
    _CALLER.label("caller_id"),
    select(Account.role).where(Account.id == _CALLER).scalar_subquery().label("caller_role"),
)


def enroll_member(
    ctx: ServiceContext,
    caller: Actor | BearerToken,
    plan_code: str,
    request: EnrollmentRequest,
    *,
    idempotency_key: str | None = None,
) -> MembershipView:
    """Enroll a person (the caller themself or a family member) in a plan; the caller pays for
    them. Someone else's person is refused with one answer and recorded for staff."""
    try:
        return _enroll_member(ctx, caller, plan_code, request, idempotency_key=idempotency_key)
    except IdentityUnavailable as refused:
        _record_probe(ctx, refused)
        raise


def _enroll_member(
    ctx: ServiceContext,
    caller: Actor | BearerToken,
    plan_code: str,
    request: EnrollmentRequest,
    *,
    idempotency_key: str | None = None,
) -> MembershipView:
    """Enroll a person (the caller themself or a family member) in a plan; the caller pays for
    them. An API caller may come as its bearer token: on PostgreSQL the token is then checked in
    the join's first read (an unknown or expired token is still refused before anything else)."""
    postgres = ctx.engine.dialect.name == "postgresql"
    if isinstance(caller, BearerToken) and (not postgres or ctx.credit_check is not None):
        caller = authenticate(ctx, caller.token)  # never consult a credit check for a stranger
    try:
        resident = parse_resident_id(request.id_number)
        full_name = request.full_name.strip()
        if not full_name or len(full_name) > 50:
            raise DomainError("invalid_name", "a name has 1 to 50 characters", "full_name")
    except DomainError:
        if isinstance(caller, BearerToken):
            authenticate(ctx, caller.token)  # 401 before 400, as for every other endpoint
        raise
    identity_hash = ctx.protector.identity_hash(resident.number)
    credit_score = (
        ctx.credit_check.score(identity_hash, resident.birth_on) if ctx.credit_check else None
    )

    request_fingerprint = {
        "id": identity_hash,
        "name": full_name,
        "relation": str(request.relation),
        "answers": dict(request.health_answers),
    }

    def plan_joining(
        connection: Connection, actor: Actor, plan: PlanHead, rules: PlanRules, facts: Any
    ) -> _Joining:
        """Every check, and the rows to write; nothing written yet."""
        now = ctx.clock.now()
        refused = join_refusal(plan.status)  # plan_winding_down or plan_closed (issue 8)
        if refused:
            raise DomainError(*refused)
        today = local_date(now, rules.zone)
        refuse_if_any(
            enrollment_refusals(rules, resident, request.health_answers, today, credit_score)
        )
        if facts.account_flagged:
            raise fraud_records.excluded_for_fraud()
        person_id = _known_person(facts, actor, request.relation)
        fraud_records.fraud_exclusion(
            connection, person_id, actor.account_id
        )  # issue 9: no rejoining
        name_masked = mask_name(full_name)
        new_person = None
        if person_id is None:
            new_person = {
                "account_id": actor.account_id,
                "relation": request.relation,
                "identity_hash": identity_hash,
                "identity_ciphertext": ctx.protector.encrypt(resident.number),
                "name_ciphertext": ctx.protector.encrypt(full_name),
                "name_masked": name_masked,
                "birth_on": resident.birth_on,
                "sex": resident.sex,
                "province_code": resident.province_code,
                "created_at": now,
            }
        else:
            name_masked = (
                connection.scalar(select(Person.name_masked).where(Person.id == person_id))
                or name_masked
            )
        dates = coverage_dates(rules, today, resident.birth_on)
        membership = {
            "plan_id": plan.id,
            "plan_version": plan.current_version,
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
            subject_id=None,
            plan=plan.code,
            relation=str(request.relation),
            plan_version=plan.current_version,
        )
        return _Joining(
            person_id,
            new_person,
            membership,
            audit_row,
            MembershipView(
                id=0,
                plan_code=plan.code,
                person_id=person_id or 0,
                name_masked=name_masked,
                relation=request.relation,
                state=MembershipState.WAITING,
                joined_on=dates.joined_on,
                waiting_ends_on=dates.waiting_ends_on,
                covered_from_on=dates.covered_from_on,
                ages_out_on=dates.ages_out_on,
            ),
        )

    def write_join(
        connection: Connection, actor: Actor, head: Any, key_row: KeyRow | None
    ) -> MembershipView:
        plan = PlanHead(head.id, head.code, head.status, head.current_version)
        rules = known_rules(connection, head.rules_sha256, plan.id, plan.current_version)
        joining = plan_joining(connection, actor, plan, rules, head)
        view = joining.view_of(head.new_membership_id, joining.person_id or head.new_person_id)
        values = _prefixed("m_", joining.membership | {"id": view.id, "person_id": view.person_id})
        values |= _prefixed("a_", joining.audit_row | {"subject_id": view.id})
        if joining.new_person is not None:
            values |= _prefixed("p_", joining.new_person | {"id": view.person_id})
        if key_row is not None:
            values |= _prefixed("k_", key_row.values(view))
        statement = _ONE_STATEMENT_JOINS[joining.new_person is not None, key_row is not None]
        try:
            connection.execute(statement, values)
        except IntegrityError:
            raise _already_member() from None
        return view

    if postgres:
        # The busiest write of a launch (3.3M joins in 3 days): ONE read (the caller's token,
        # the plan, its rules' hash, two new ids, whether the person is known), then ONE
        # statement that writes the person, the membership, the audit row and the idempotency
        # key together. It is atomic by itself, so all runs in autocommit: no BEGIN/COMMIT.
        with ctx.autocommit() as connection:
            params: dict[str, Any] = {"code": plan_code, "identity_hash": identity_hash}
            if isinstance(caller, BearerToken):
                head = connection.execute(
                    _PLAN_AND_NEW_IDS_BY_TOKEN,
                    params | {"token_hash": caller.token_hash, "now": ctx.clock.now()},
                ).first()
                if head is None or head.caller_id is None:
                    actor = authenticate(ctx, caller.token)  # refuses the unknown or expired
                else:
                    actor = Actor(int(head.caller_id), Role(head.caller_role))
            else:
                actor = caller
                head = connection.execute(
                    _PLAN_AND_NEW_IDS, params | {"account_id": actor.account_id}
                ).first()
            if head is None:
                raise NotFound("plan_not_found", f"there is no plan {plan_code!r}", "plan_code")
            return act_once(
                ctx,
                account_id=actor.account_id,
                key=idempotency_key,
                operation=f"enroll:{plan_code}",
                request=request_fingerprint,
                result_type=MembershipView,
                attempt=lambda key_row: write_join(connection, actor, head, key_row),
            )

    assert isinstance(caller, Actor)  # a token was looked up above
    actor = caller

    def enroll(session: Session) -> MembershipView:
        plan, rules = plan_with_rules(session, plan_code)
        connection = session.connection()
        facts = connection.execute(
            _PERSON_FACTS, {"identity_hash": identity_hash, "account_id": actor.account_id}
        ).one()
        joining = plan_joining(connection, actor, plan, rules, facts)
        try:
            person_id = (
                joining.person_id
                or connection.execute(_INSERT_PERSON, joining.new_person).scalar_one()
            )
            # The partial unique index refuses a second active membership, even from a
            # concurrent request.
            membership_id = connection.execute(
                _INSERT_MEMBERSHIP, joining.membership | {"person_id": person_id}
            ).scalar_one()
        except IntegrityError:
            raise _already_member() from None
        connection.execute(audit.INSERT, joining.audit_row | {"subject_id": membership_id})
        return joining.view_of(membership_id, person_id)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation=f"enroll:{plan_code}",
        request=request_fingerprint,
        result_type=MembershipView,
        action=enroll,
    )


def _load_visible(
    session: Session, actor: Actor, membership_id: int
) -> tuple[Membership, Person, Plan]:
    row = session.execute(
        select(Membership, Person, Plan)
        .join(Person, Person.id == Membership.person_id)
        .join(Plan, Plan.id == Membership.plan_id)
        .where(Membership.id == membership_id)
    ).first()
    # A member sees only their own family's memberships; to anyone else they do not exist.
    if row is None or (
        actor.role not in STAFF_ROLES and row[0].payer_account_id != actor.account_id
    ):
        raise NotFound(
            "membership_not_found", f"there is no membership {membership_id}", "membership_id"
        )
    return row


def get_membership(ctx: ServiceContext, actor: Actor, membership_id: int) -> MembershipView:
    with ctx.reading() as session:
        membership, person, plan = _load_visible(session, actor, membership_id)
        rules = rules_of(session, plan.id, membership.plan_version)
        return _view(membership, person, plan.code, local_date(ctx.clock.now(), rules.zone))


def list_family_memberships(ctx: ServiceContext, actor: Actor) -> list[MembershipView]:
    with ctx.reading() as session:
        views = []
        for membership, person, plan in family_memberships(session, actor.account_id):
            rules = rules_of(session, plan.id, membership.plan_version)
            views.append(
                _view(membership, person, plan.code, local_date(ctx.clock.now(), rules.zone))
            )
        return views


def change_membership(
    ctx: ServiceContext,
    actor: Actor,
    membership_id: int,
    event: MembershipEvent,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> MembershipView:
    """Apply one state-machine event (leave, suspend, reinstate, remove) to a membership."""
    if event is not MembershipEvent.LEAVE and actor.role is not Role.OPERATOR:
        raise Forbidden("forbidden", f"only an operator may {event}", "event")

    def change(session: Session) -> MembershipView:
        now = ctx.clock.now()
        membership, person, plan = _load_visible(session, actor, membership_id)
        rules = rules_of(session, plan.id, membership.plan_version)
        today = local_date(now, rules.zone)
        dates = CoverageDates(
            membership.joined_on,
            membership.waiting_ends_on,
            membership.covered_from_on,
            membership.ages_out_on,
        )
        current = state_on(dates, MembershipState(membership.state), today)
        new_state = transition(current, event)
        membership.state = new_state
        if new_state in (MembershipState.LEFT, MembershipState.ENDED):
            membership.ended_at = now
            membership.end_reason = END_REASONS[event]
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action=f"membership_{event}",
            subject_type="membership",
            subject_id=membership.id,
            from_state=str(current),
            to_state=str(new_state),
            reason=reason,
        )
        return _view(membership, person, plan.code, today)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation=f"membership:{membership_id}:{event}",
        request={"reason": reason},
        result_type=MembershipView,
        action=change,
    )


@dataclass(frozen=True, slots=True)
class AdvanceResult:
    plan_code: str
    on: date
    now_covered: int
    aged_out: int


def advance_memberships(ctx: ServiceContext, plan_code: str) -> AdvanceResult:
    """The daily job: waiting periods that are over become covered; birthdays at the exit age end.

    Set-based: two UPDATEs and one INSERT … SELECT of audit rows, whatever the member count.
    Coverage never depends on this job having run (state_on() derives it from the dates), so a
    missed day changes nothing but the stored state column.
    """
    with ctx.transaction() as session:
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        today = local_date(now, current_rules(session, plan).zone)
        ageing_out = (
            (Membership.plan_id == plan.id)
            & Membership.state.in_(_ACTIVE)
            & (Membership.ages_out_on <= today)
        )
        session.execute(
            insert(AuditEvent).from_select(
                [
                    "occurred_at",
                    "actor_account_id",
                    "action",
                    "subject_type",
                    "subject_id",
                    "details",
                ],
                select(
                    literal(now, AuditEvent.occurred_at.type),
                    literal(None).cast(Account.id.type),
                    literal("membership_age_out"),
                    literal("membership"),
                    Membership.id,
                    literal({"from_state": "active", "to_state": "ended"}, AuditEvent.details.type),
                ).where(ageing_out),
            )
        )
        aged_out_result = session.execute(
            update(Membership)
            .where(ageing_out)
            .values(state=MembershipState.ENDED, end_reason="aged_out", ended_at=now)
            .execution_options(synchronize_session=False)
        )
        now_covered_result = session.execute(
            update(Membership)
            .where(
                Membership.plan_id == plan.id,
                Membership.state == MembershipState.WAITING,
                Membership.covered_from_on <= today,
            )
            .values(state=MembershipState.COVERED)
            .execution_options(synchronize_session=False)
        )
        aged_out = int(getattr(aged_out_result, "rowcount", 0))
        now_covered = int(getattr(now_covered_result, "rowcount", 0))
        audit.record(
            session,
            at=now,
            actor_account_id=None,
            action="memberships_advanced",
            subject_type="plan",
            subject_id=plan.id,
            on=today.isoformat(),
            now_covered=now_covered,
            aged_out=aged_out,
        )
        return AdvanceResult(plan.code, today, now_covered, aged_out)


@dataclass(frozen=True, slots=True)
class MemberRow:
    membership_id: int
    name_masked: str
    relation: str
    sex: str
    province_code: str
    birth_year: int
    state: str
    joined_on: date


@dataclass(frozen=True, slots=True)
class MemberPage:
    items: list[MemberRow]
    total: int
    next_after_id: int | None


def list_plan_members(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    *,
    after_id: int = 0,
    limit: int = 50,
    state: MembershipState | None = None,
) -> MemberPage:
    """Operators page through a plan's members by keyset (fast at any depth), masked."""
    if actor.role not in (Role.OPERATOR, Role.AUDITOR, Role.REVIEWER):
        raise Forbidden("forbidden", "only staff may list members", "role")
    limit = max(1, min(limit, 500))
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        where = [Membership.plan_id == plan.id]
        if state is not None:
            where.append(Membership.state == state)
        total = session.scalar(select(func.count()).select_from(Membership).where(*where)) or 0
        rows = session.execute(
            select(
                Membership.id,
                Person.name_masked,
                Person.relation,
                Person.sex,
                Person.province_code,
                Person.birth_on,
                Membership.state,
                Membership.joined_on,
            )
            .join(Person, Person.id == Membership.person_id)
            .where(*where, Membership.id > after_id)
            .order_by(Membership.id)
            .limit(limit)
        ).all()
        items = [MemberRow(r[0], r[1], r[2], r[3], r[4], r[5].year, r[6], r[7]) for r in rows]
        return MemberPage(
            items=items,
            total=total,
            next_after_id=items[-1].membership_id if len(items) == limit else None,
        )
