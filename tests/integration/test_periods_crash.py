"""A close or a collection killed in the middle (SIGKILL, no clean-up) and run again charges
nobody twice: the figures, the ledger, the log and the provider's debits come out as in one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    approved_claim,
    members,
    proven_charge,
    publish_demo_plans,
    use_rules,
)

from mutualaid.clock import FixedClock
from mutualaid.db.models import LedgerTransaction, LogEntry, Period, PeriodChargeTree
from mutualaid.domain.apportionment import PeriodState
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.periods.close import close_period

ROOT = Path(__file__).resolve().parents[2]

#: Runs one step in a fresh process, which kills itself with SIGKILL at the named point.
SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from datetime import date, datetime
    from pathlib import Path
    from mutualaid.clock import FixedClock
    from mutualaid.db.engines import make_engine, make_sessionmaker
    from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
    from mutualaid.services.context import ServiceContext
    from mutualaid.services.personal_data import PersonalDataProtector

    url, action, point, instant = sys.argv[1:5]
    engine = make_engine(url)
    ctx = ServiceContext(engine=engine, sessions=make_sessionmaker(engine),
                         protector=PersonalDataProtector("x" * 40),
                         clock=FixedClock(datetime.fromisoformat(instant)))
    seen = []

    def hook(name):
        seen.append(name)
        if name == point and (point != "chunk_debited" or seen.count(name) == 2):
            os.kill(os.getpid(), signal.SIGKILL)

    if action == "close":
        from mutualaid.services.periods.close import close_period
        close_period(ctx, SYSTEM_ACTOR, "xhb-main", date(2026, 3, 7), hook=hook)
    else:
        from mutualaid.services.collections.debits import collect_period
        from mutualaid.services.collections.providers import SimulatedProvider
        provider = SimulatedProvider(journal=Path(sys.argv[5]), failing={int(sys.argv[6])})
        collect_period(ctx, SYSTEM_ACTOR, "xhb-main", date(2026, 3, 7), provider, chunk=2,
                       hook=hook)
    print("finished without being killed")
""")


def run_and_kill(url: str, action: str, point: str, instant: str, *extra: str) -> None:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, action, point, instant, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


@pytest.fixture
def url(ctx: ServiceContext) -> str:
    return ctx.engine.url.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


@pytest.mark.parametrize("point", ["computing", "tree", "computed"])
def test_a_close_killed_midway_and_run_again_charges_once(
    ctx: ServiceContext, clock: FixedClock, url: str, point: str
) -> None:
    use_rules(ctx)
    people = members(ctx, clock, 6)
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    clock.set(LOCK_MARCH_7 + timedelta(hours=9))
    run_and_kill(url, "close", point, clock.now().isoformat())
    with ctx.reading() as session:
        killed_in = session.scalars(select(Period.state)).one()
    assert killed_in == ("locked" if point == "computing" else "computed")

    period = close_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
    assert period.state is PeriodState.COMMITTED
    # 1000 + 80 fee over 6 members = 180 each, exactly.
    assert (period.member_count, period.share_fen, period.total_charged_fen) == (6, 180, 1080)
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
        assert session.scalar(select(func.count()).select_from(PeriodChargeTree)) == 1
        assert (
            session.scalar(
                select(func.count())
                .select_from(LogEntry)
                .where(LogEntry.leaf_type == "period_commitment")
            )
            == 1
        )
        assert balances(session, f"plan:{MAIN_PLAN}:members") == {
            f"plan:{MAIN_PLAN}:members": -1080
        }
    proven_charge(ctx, people[4][0], people[4][1].id, MARCH_7)
    assert close_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7) == period


def test_a_collection_killed_after_debiting_and_run_again_debits_each_payer_once(
    ctx: ServiceContext, clock: FixedClock, url: str, tmp_path: Path
) -> None:
    use_rules(ctx)
    people = members(ctx, clock, 7)
    approved_claim(ctx, people[0][1].id, 700, LOCK_MARCH_7 - timedelta(days=1))
    clock.set(LOCK_MARCH_7 + timedelta(hours=9))
    period = close_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
    journal = tmp_path / "provider.journal"
    failing = people[5][0].account_id
    clock.set(clock.now() + timedelta(days=7))
    # Killed in the second chunk after the provider took the money, before anything was recorded.
    run_and_kill(
        url, "collect", "chunk_debited", clock.now().isoformat(), str(journal), str(failing)
    )
    debited_before = SimulatedProvider(journal=journal).debits
    assert len(debited_before) == 4

    provider = SimulatedProvider(journal=journal, failing={failing})
    run = collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, provider, chunk=2)
    assert run.state is PeriodState.COLLECTED
    payers = [key.split(":")[1] for key in provider.debits]
    assert sorted(payers) == sorted(str(a.account_id) for a, _ in people if a.account_id != failing)
    assert sum(amount for _, amount in provider.debits.values()) == (
        period.total_charged_fen or 0
    ) - (period.share_fen or 0)
    with ctx.reading() as session:
        assert balances(session, f"plan:{MAIN_PLAN}:members") == {
            f"plan:{MAIN_PLAN}:members": -(period.share_fen or 0)
        }
        assert unbalanced_transactions(session) == []
    assert date(2026, 3, 14) == period.debit_on


def test_two_workers_closing_the_same_period_at_once_charge_once(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    use_rules(ctx)
    people = members(ctx, clock, 4)
    approved_claim(ctx, people[0][1].id, 400, LOCK_MARCH_7 - timedelta(days=1))
    clock.set(LOCK_MARCH_7 + timedelta(hours=9))
    with ThreadPoolExecutor(2) as pool:
        views = list(
            pool.map(lambda _: close_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7), range(2))
        )
    assert views[0] == views[1] and views[0].state is PeriodState.COMMITTED
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Period)) == 1
        assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
        assert (
            session.scalar(
                select(func.count())
                .select_from(LogEntry)
                .where(LogEntry.leaf_type == "period_commitment")
            )
            == 1
        )
