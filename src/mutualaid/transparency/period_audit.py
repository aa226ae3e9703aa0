"""Recomputing a closed period from the transparency log alone (issue 14, `mutualaid verify period`).

An auditor holds the log's leaves (entry bundles) and the plan files they name. From them alone:

* the **plan version in force**: the newest `plan_version` leaf of the plan effective on or before
  publicity day; its file must hash to the leaf's `rules_sha256`;
* the **sharing members**: `membership_event` leaves (and the `membership_events` batches of the
  bulk paths, one event per listed id) replayed up to the period's lock instant
  (`lock_at` of its `period_commitment` leaf). A membership shares when it joined before the
  lock and had not ended before it (an `age_out` takes effect at 00:00 of the birthday, so one
  at the lock itself already counts); it is excluded, not charged, when its last
  suspend/reinstate before the lock was a suspension;
* the **cases**: `claim_decision` leaves approving a shared case of the plan, decided in
  [the previous period's lock, this lock);
* the **figures**: `domain.apportionment.apportion` (the code the close runs), each member's
  charges so far this year folded over the year's earlier periods of the log, the surplus
  carried from the previous period's commitment;

and compares them, figure by figure, with the period's `period_commitment` leaf.

What the log cannot give, and so is not checked: under a non-uniform (age-banded) sharing rule the
share and the totals depend on the members' ages, which are never on the log (only the member
count, the cases, the aid, the fee and the surplus carried in are recomputed); a member who left and
rejoined in the same year is two unrelated memberships on the log, so if the annual cap binds for
such a member the totals may differ; a sponsored promotion period is named by no leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from mutualaid.domain.apportionment import (
    CapExcess,
    Cohort,
    PeriodFigures,
    apportion,
    capped_charge,
    period_ref,
)
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import PlanRules, parse_plan_toml
from mutualaid.transparency.errors import LeafError
from mutualaid.transparency.leaves import Leaf, decode_leaf, membership_ids, membership_ref

#: Events after which a membership no longer shares (from their instant on).
ENDING_EVENTS = frozenset({"leave", "remove", "severe_payout", "cover_ended", "waiting_illness"})
AGE_OUT = "age_out"
#: Ends a membership at its exit age like `age_out`, into another plan (issue 19).
MOVE_OUT = "move_out"

#: The figures compared, in the order reported: (name, needs the members' ages).
FIGURES: tuple[tuple[str, bool], ...] = (
    ("member_count", False),
    ("case_count", False),
    ("aid_fen", False),
    ("fee_fen", False),
    ("surplus_in_fen", False),
    ("share_fen", True),
    ("total_charged_fen", True),
    ("sponsor_fen", True),
    ("prorated_fen", True),
    ("surplus_out_fen", True),
)


class AuditError(Exception):
    """The log does not hold what a recomputation needs (no such period, no plan file, …)."""


@dataclass(frozen=True, slots=True)
class Difference:
    figure: str
    recomputed: int
    committed: int | None


@dataclass(frozen=True, slots=True)
class PeriodAudit:
    plan_ref: str
    period_ref: str
    lock_at: int
    plan_version: int
    rules_sha256: str
    sharing_rule: str
    #: Recomputed from the log, per figure name.
    recomputed: Mapping[str, int]
    #: As the period_commitment leaf states them (None: the leaf does not state it).
    committed: Mapping[str, int | None]
    #: Figures not checked, with why.
    unchecked: Mapping[str, str]
    #: The memberships counted, excluded (suspended at the lock) and the cases, for the report.
    members: int
    excluded: int
    cases: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def differences(self) -> list[Difference]:
        return [
            Difference(name, value, self.committed.get(name))
            for name, value in self.recomputed.items()
            if self.committed.get(name) != value
        ]

    @property
    def agrees(self) -> bool:
        return not self.differences


@dataclass(slots=True)
class _Membership:
    joined_at: int | None = None
    ended_at: int | None = None
    end_event: str | None = None
    #: (instant, suspended?) in log order.
    suspensions: list[tuple[int, bool]] = field(default_factory=list)

    def shares(self, lock_at: int) -> bool:
        if self.joined_at is None or self.joined_at >= lock_at:
            return False
        if self.ended_at is None:
            return True
        if self.end_event in (AGE_OUT, MOVE_OUT):
            return self.ended_at > lock_at
        return self.ended_at >= lock_at

    def suspended(self, lock_at: int) -> bool:
        state = False
        for at, suspended in sorted(self.suspensions, key=lambda s: s[0]):
            if at >= lock_at:
                break
            state = suspended
        return state


@dataclass(frozen=True, slots=True)
class _Commitment:
    period_ref: str
    publicity_on: date
    fields: Mapping[str, int | str]

    @property
    def lock_at(self) -> int:
        value = self.fields.get("lock_at")
        if not isinstance(value, int):
            raise AuditError(f"the commitment of {self.period_ref} does not state its lock_at")
        return value

    def figure(self, name: str) -> int | None:
        value = self.fields.get(name)
        return value if isinstance(value, int) else None


def decode_leaves(entries: Iterable[bytes]) -> list[Leaf]:
    """Every leaf, decoded in log order; a leaf that is not canonical stops the audit."""
    leaves = []
    for index, data in enumerate(entries):
        try:
            leaves.append(decode_leaf(data))
        except LeafError as error:
            raise AuditError(f"leaf {index} of the log is not a valid leaf: {error}") from None
    return leaves


def audit_period(
    leaves: Sequence[Leaf],
    plan_files: Mapping[str, bytes],
    plan_code: str,
    publicity_on: date,
) -> PeriodAudit:
    """Recompute the period of `plan_code` whose publicity day is `publicity_on` from the log's
    `leaves` (in log order) and the plan files named by their SHA-256."""
    ours = [leaf for leaf in leaves if leaf.fields.get("plan_ref") == plan_code]
    commitments = _commitments(ours, plan_code)
    wanted = period_ref(plan_code, publicity_on)
    current = next((c for c in commitments if c.period_ref == wanted), None)
    if current is None:
        raise AuditError(f"the log holds no period_commitment leaf for {wanted}")
    lock_at = current.lock_at
    earlier = [c for c in commitments if c.publicity_on < publicity_on]
    previous = earlier[-1] if earlier else None
    version, sha256, rules = _rules_in_force(ours, plan_files, plan_code, publicity_on)

    memberships = _replay(ours)
    sharing = [ref for ref, m in memberships.items() if m.shares(lock_at)]
    excluded = {ref for ref in sharing if memberships[ref].suspended(lock_at)}
    charged = [ref for ref in sharing if ref not in excluded]

    since = previous.lock_at if previous is not None else None
    cases = [
        leaf
        for leaf in ours
        if leaf.type == "claim_decision"
        and leaf.fields.get("decision") == "approved"
        and leaf.fields.get("funding", "shared") == "shared"
        and _int(leaf, "decided_at") < lock_at
        and (since is None or _int(leaf, "decided_at") >= since)
    ]
    aid = sum(_int(leaf, "aid_fen") for leaf in cases)
    surplus_in = (previous.figure("surplus_out_fen") or 0) if previous is not None else 0
    prorated = current.figure("prorated_fen") or 0
    notes: list[str] = []
    year = [c for c in earlier if c.publicity_on.year == publicity_on.year]
    ytd = _year_to_date(charged, memberships, year, ours, plan_files, plan_code)
    by_ytd: dict[int, int] = {}
    for ref in charged:
        by_ytd[ytd.get(ref, 0)] = by_ytd.get(ytd.get(ref, 0), 0) + 1
    figures = apportion(
        aid_fen=aid,
        case_count=len(cases),
        fee_bp=rules.fees.management_fee_bp,
        surplus_in_fen=surplus_in,
        cohorts=[Cohort(f"ytd-{v}", n, v) for v, n in sorted(by_ytd.items())] or [Cohort("all", 0)],
        per_case_cap_fen=rules.caps.per_case_fen,
        annual_cap_fen=rules.caps.annual_fen,
        cap_excess=CapExcess.PRORATE if prorated else CapExcess.SPONSOR,
    )
    banded = rules.sharing_rule != "uniform"
    recomputed: dict[str, int] = {}
    unchecked: dict[str, str] = {}
    for name, needs_ages in FIGURES:
        if needs_ages and banded:
            unchecked[name] = (
                f"the plan's sharing rule is {rules.sharing_rule!r} (by age band): the share and "
                "the totals depend on the members' ages, which are never on the log"
            )
            continue
        recomputed[name] = _figure(figures, name)
    return PeriodAudit(
        plan_ref=plan_code,
        period_ref=wanted,
        lock_at=lock_at,
        plan_version=version,
        rules_sha256=sha256,
        sharing_rule=rules.sharing_rule,
        recomputed=recomputed,
        committed={name: current.figure(name) for name, _ in FIGURES},
        unchecked=unchecked,
        members=len(sharing),
        excluded=len(excluded),
        cases=tuple(str(leaf.fields["claim_ref"]) for leaf in cases),
        notes=tuple(notes),
    )


def _figure(figures: PeriodFigures, name: str) -> int:
    value = getattr(figures, name)
    assert isinstance(value, int)
    return value


def _int(leaf: Leaf, name: str) -> int:
    value = leaf.fields.get(name)
    if not isinstance(value, int):
        raise AuditError(f"a {leaf.type} leaf has no integer {name!r}")
    return value


def _commitments(leaves: Sequence[Leaf], plan_code: str) -> list[_Commitment]:
    found: dict[str, _Commitment] = {}
    prefix = f"{plan_code}/"
    for leaf in leaves:
        if leaf.type != "period_commitment":
            continue
        ref = str(leaf.fields["period_ref"])
        if not ref.startswith(prefix):
            continue
        try:
            publicity_on = date.fromisoformat(ref.removeprefix(prefix))
        except ValueError:
            continue
        if ref in found:
            raise AuditError(f"the log holds two period_commitment leaves for {ref}")
        found[ref] = _Commitment(ref, publicity_on, leaf.fields)
    return sorted(found.values(), key=lambda c: c.publicity_on)


def _rules_in_force(
    leaves: Sequence[Leaf], plan_files: Mapping[str, bytes], plan_code: str, on: date
) -> tuple[int, str, PlanRules]:
    versions = [
        leaf
        for leaf in leaves
        if leaf.type == "plan_version" and str(leaf.fields["effective_on"]) <= on.isoformat()
    ]
    if not versions:
        raise AuditError(f"the log holds no plan_version leaf of {plan_code} in force on {on}")
    leaf = max(versions, key=lambda v: _int(v, "version"))
    sha256 = str(leaf.fields["rules_sha256"])
    data = plan_files.get(sha256)
    if data is None:
        raise AuditError(f"plan file {sha256} (version {leaf.fields['version']}) is missing")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise AuditError(f"plan file {sha256} does not hash to its name")
    try:
        rules = parse_plan_toml(data.decode("utf-8"))
    except (UnicodeDecodeError, DomainError) as error:
        raise AuditError(f"plan file {sha256} cannot be read: {error}") from None
    return _int(leaf, "version"), sha256, rules


def _membership_events(leaves: Sequence[Leaf]) -> Iterable[tuple[str, object, int]]:
    """(membership ref, event, instant) of every membership event, in log order: a
    `membership_event` leaf gives one, a `membership_events` batch one per listed id."""
    for leaf in leaves:
        if leaf.type == "membership_event":
            yield (
                str(leaf.fields["membership_ref"]),
                leaf.fields["event"],
                _int(leaf, "occurred_at"),
            )
        elif leaf.type == "membership_events":
            event, at = leaf.fields["event"], _int(leaf, "occurred_at")
            for membership_id in membership_ids(str(leaf.fields["membership_ids"])):
                yield membership_ref(membership_id), event, at


def _replay(leaves: Sequence[Leaf]) -> dict[str, _Membership]:
    memberships: dict[str, _Membership] = {}
    for ref, event, at in _membership_events(leaves):
        m = memberships.setdefault(ref, _Membership())
        if event in ("join", "move_in"):
            if m.joined_at is not None:
                raise AuditError(f"membership {ref} joins twice on the log")
            m.joined_at = at
        elif event in ENDING_EVENTS or event in (AGE_OUT, MOVE_OUT):
            if m.ended_at is None or at < m.ended_at:
                m.ended_at, m.end_event = at, str(event)
        elif event == "suspend":
            m.suspensions.append((at, True))
        elif event == "reinstate":
            m.suspensions.append((at, False))
    return memberships


def _year_to_date(
    charged: Sequence[str],
    memberships: Mapping[str, _Membership],
    year: Sequence[_Commitment],
    leaves: Sequence[Leaf],
    plan_files: Mapping[str, bytes],
    plan_code: str,
) -> dict[str, int]:
    """Each charged member's charges so far this calendar year: the fold over the year's earlier
    periods in which the log shows them sharing and not suspended (`apportionment.year_to_date`
    for one member)."""
    ytd: dict[str, int] = {}
    for commitment in year:
        share = commitment.figure("share_fen")
        if share is None:
            raise AuditError(f"the commitment of {commitment.period_ref} has no share_fen")
        _, _, rules = _rules_in_force(leaves, plan_files, plan_code, commitment.publicity_on)
        lock = commitment.lock_at
        for ref in charged:
            m = memberships[ref]
            if m.shares(lock) and not m.suspended(lock):
                ytd[ref] = ytd.get(ref, 0) + capped_charge(
                    share, rules.caps.annual_fen, ytd.get(ref, 0)
                )
    return ytd


def instant_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
