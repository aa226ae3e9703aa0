"""The recomputation of a period from log leaves alone (issue 14): the sharing rule at the lock,
exclusions, cases between the locks, and what an age-banded rule leaves unchecked."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from mutualaid.domain.apportionment import Cohort, apportion
from mutualaid.plan_files import read_plan_file
from mutualaid.transparency.leaves import Leaf, canonical_leaf, decode_leaf
from mutualaid.transparency.period_audit import AuditError, audit_period

PLAN = "xhb-main"
LOCK = int(datetime(2026, 3, 6, 16, tzinfo=UTC).timestamp())  # 00:00 on 7 March in Shanghai
DAY = 86_400


def plan_text(rule: str = "uniform") -> bytes:
    text = read_plan_file("xhb-main.toml").replace(
        'sharing_rule = "uniform"', f'sharing_rule = "{rule}"'
    )
    text = re.sub(r"^per_case_fen = [0-9_]+", "per_case_fen = 1_000_000_000", text, flags=re.M)
    if rule != "uniform":
        text += (
            "\n[[sharing_bands]]\nfrom_age = 0\nto_age = 39\nsevere_per_million = 240\n"
            "\n[[sharing_bands]]\nfrom_age = 40\nto_age = 59\nsevere_per_million = 480\n"
        )
    return text.encode()


def leaf(leaf_type: str, **fields: Any) -> Leaf:
    return decode_leaf(canonical_leaf(leaf_type, fields))


def event(membership: int, name: str, state: str, at: int) -> Leaf:
    return leaf(
        "membership_event",
        plan_ref=PLAN,
        membership_ref=f"m-{membership}",
        event=name,
        state=state,
        occurred_at=at,
    )


def log(rule: str = "uniform", *, members: int = 3, **overrides: int) -> tuple[list[Leaf], bytes]:
    """Six memberships: m-1..m-3 share; m-4 ends by age at the lock itself (does not share);
    m-5 left at the lock instant (still shares: it had not left before); m-6 is suspended at the
    lock (excluded). One shared case of 1,000 fen and one sponsored; a case after the lock."""
    data = plan_text(rule)
    sha = hashlib.sha256(data).hexdigest()
    leaves = [
        leaf("plan_version", plan_ref=PLAN, version=1, rules_sha256=sha, effective_on="2026-01-01"),
        *[event(i, "join", "waiting", LOCK - 100 * DAY) for i in range(1, 7)],
        event(4, "age_out", "ended", LOCK),
        event(5, "leave", "left", LOCK),
        event(6, "suspend", "suspended", LOCK - DAY),
        event(7, "join", "waiting", LOCK),  # joins at the lock: shares from the next period
    ]
    for ref, aid, funding, at in (
        ("c-1", 1_000, "shared", LOCK - 2 * DAY),
        ("c-2", 5_000, "sponsored", LOCK - 2 * DAY),
        ("c-3", 7_000, "shared", LOCK + 1),
    ):
        leaves.append(
            leaf(
                "claim_decision",
                claim_ref=ref,
                decision="approved",
                aid_fen=aid,
                decided_at=at,
                plan_ref=PLAN,
                funding=funding,
            )
        )
    figures = apportion(
        aid_fen=1_000,
        case_count=1,
        fee_bp=800,
        surplus_in_fen=0,
        cohorts=[Cohort("all", members + 1)],  # m-1..m-3 and m-5
        per_case_cap_fen=1_000_000_000,
        annual_cap_fen=18_800,
    )
    commitment = {
        "plan_ref": PLAN,
        "period_ref": f"{PLAN}/2026-03-07",
        "charges_root": "0" * 64,
        "charges_count": figures.member_count,
        "total_charged_fen": figures.total_charged_fen,
        "aid_fen": figures.aid_fen,
        "fee_fen": figures.fee_fen,
        "surplus_in_fen": figures.surplus_in_fen,
        "surplus_out_fen": figures.surplus_out_fen,
        "sponsor_fen": figures.sponsor_fen,
        "prorated_fen": figures.prorated_fen,
        "share_fen": figures.share_fen,
        "member_count": figures.member_count,
        "case_count": figures.case_count,
        "lock_at": LOCK,
    } | overrides
    leaves.append(leaf("period_commitment", **commitment))
    return leaves, data


def test_the_sharing_members_and_cases_at_the_lock_are_recomputed_to_the_fen() -> None:
    leaves, data = log()
    audit = audit_period(leaves, {hashlib.sha256(data).hexdigest(): data}, PLAN, date(2026, 3, 7))
    assert audit.agrees, audit.differences
    assert (audit.members, audit.excluded, audit.cases) == (5, 1, ("c-1",))
    assert audit.recomputed["member_count"] == 4
    assert audit.recomputed["fee_fen"] == 80 and audit.recomputed["share_fen"] == 270


def test_a_commitment_that_does_not_add_up_is_reported_per_figure() -> None:
    leaves, data = log(members=4)  # the commitment counts one member too many
    audit = audit_period(leaves, {hashlib.sha256(data).hexdigest(): data}, PLAN, date(2026, 3, 7))
    assert not audit.agrees
    assert {d.figure for d in audit.differences} >= {"member_count", "share_fen"}
    [count] = [d for d in audit.differences if d.figure == "member_count"]
    assert (count.recomputed, count.committed) == (4, 5)


def test_an_age_banded_rule_checks_only_what_does_not_depend_on_ages() -> None:
    leaves, data = log("proportional")
    audit = audit_period(leaves, {hashlib.sha256(data).hexdigest(): data}, PLAN, date(2026, 3, 7))
    assert set(audit.recomputed) == {
        "member_count",
        "case_count",
        "aid_fen",
        "fee_fen",
        "surplus_in_fen",
    }
    assert "ages" in audit.unchecked["share_fen"] and "proportional" in audit.unchecked["share_fen"]
    assert audit.agrees


def test_a_missing_or_altered_plan_file_stops_the_audit() -> None:
    leaves, data = log()
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(AuditError, match="is missing"):
        audit_period(leaves, {}, PLAN, date(2026, 3, 7))
    with pytest.raises(AuditError, match="does not hash to its name"):
        audit_period(leaves, {sha: data + b"\n"}, PLAN, date(2026, 3, 7))
    with pytest.raises(AuditError, match="no period_commitment leaf"):
        audit_period(leaves, {sha: data}, PLAN, date(2026, 3, 21))


def batched(leaves: list[Leaf], ids: str) -> list[Leaf]:
    """The log with m-4's age-out written as the daily job writes it: one `membership_events`
    batch (here also naming m-7, who joins at the lock and shares in neither case), and the
    waiting periods' ends as another batch (they change nobody's sharing)."""
    single = event(4, "age_out", "ended", LOCK)
    batch = leaf(
        "membership_events",
        plan_ref=PLAN,
        membership_ids=ids,
        event="age_out",
        state="ended",
        occurred_at=LOCK,
    )
    covered = leaf(
        "membership_events",
        plan_ref=PLAN,
        membership_ids="1,2,3,5,6",
        event="waiting_period_over",
        state="covered",
        occurred_at=LOCK - 10 * DAY,
    )
    return [covered if x == single else x for x in leaves] + [batch]


def test_a_batch_leaf_counts_as_the_event_of_each_membership_it_lists() -> None:
    leaves, data = log()
    files = {hashlib.sha256(data).hexdigest(): data}
    audit = audit_period(batched(leaves, "4,7"), files, PLAN, date(2026, 3, 7))
    assert audit.agrees, audit.differences
    assert (audit.members, audit.excluded) == (5, 1)


@pytest.mark.parametrize(
    ("ids", "recomputed"),
    [("7", 5), ("2,4,7", 3)],
    ids=["a membership taken out", "a sharing one put in"],
)
def test_altering_one_membership_in_a_batch_leaf_fails_the_audit(ids: str, recomputed: int) -> None:
    leaves, data = log()
    files = {hashlib.sha256(data).hexdigest(): data}
    audit = audit_period(batched(leaves, ids), files, PLAN, date(2026, 3, 7))
    assert not audit.agrees
    [count] = [d for d in audit.differences if d.figure == "member_count"]
    assert (count.recomputed, count.committed) == (recomputed, 4)
