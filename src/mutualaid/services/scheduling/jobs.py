"""What each job kind of the schedule (domain/schedule.py) calls: one public use case each.

Every use case here is idempotent and resumable (a close or a collection continues where it
stopped), so running a job again, or after another worker died in the middle of it, is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

import httpx

from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import FundingModel, PaymentRules, PlanRules
from mutualaid.domain.schedule import MonthDays, job_kind, publicity_day_of
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.accounts.rate_limits import prune_rate_counters
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.providers import PaymentProvider
from mutualaid.services.collections.retries import retry_failed_payments
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import advance_memberships
from mutualaid.services.juries.closing import close_due_juries
from mutualaid.services.juries.panels import seat_waiting_panels
from mutualaid.services.notifications import Outbound, dispatch_notifications
from mutualaid.services.payments.providers import alipay_client
from mutualaid.services.periods.close import close_period
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.services.transparency.log import integrate_all

#: Called with a step name where a long job may be interrupted (the close's and the collection's
#: hooks): the worker renews its lease there, and crash tests stop the process there.
StepHook = Callable[[str], None]


@dataclass
class JobEnvironment:
    """What the jobs need beyond the service context: the outside world they talk to."""

    #: Who debits post-paid members of plans on the simulated provider (None: the worker skips
    #: their collection). A plan whose `[payments]` names alipay collects through Alipay (the
    #: settings), one naming file through the collection file (skipped here).
    provider: PaymentProvider | None = None
    #: Where notifications go (None: the channels of the context's settings).
    outbound: Outbound | None = None
    #: The log's signing key and witnesses, read when the checkpoint job first runs (None: the job
    #: only integrates queued leaves).
    log_config: Callable[[], LogConfig] | None = None
    #: The HTTP client that reaches the witnesses (None: a fresh one per checkpoint).
    http: httpx.Client | None = None


@dataclass(frozen=True, slots=True)
class JobDone:
    #: One line of what the run did, for `worker --list` (no personal data: counts and refs).
    outcome: str
    #: True when the job had nothing it could do here (e.g. no payment provider).
    skipped: bool = False


def _plan_rules(ctx: ServiceContext, plan_code: str) -> PlanRules:
    with ctx.reading() as session:
        return current_rules(session, plan_by_code(session, plan_code))


def _period_on(ctx: ServiceContext, job: str, plan_code: str, due_at: datetime) -> date:
    trigger = job_kind(job).trigger
    assert isinstance(trigger, MonthDays)
    rules = _plan_rules(ctx, plan_code)
    return publicity_day_of(rules, local_date(due_at, rules.zone), trigger)


def _needs_missing_provider(ctx: ServiceContext, env: JobEnvironment, plan_code: str) -> bool:
    rules = _plan_rules(ctx, plan_code)
    if rules.funding_model is FundingModel.PREPAID:
        return False
    named = (rules.payments or PaymentRules()).provider
    return named == "file" or (named == "simulated" and env.provider is None)


@contextmanager
def _provider(
    ctx: ServiceContext, env: JobEnvironment, plan_code: str
) -> Iterator[PaymentProvider | None]:
    """The plan's provider: Alipay when its plan file says so (configured by the settings),
    otherwise the worker's own (the simulated one, or none)."""
    rules = _plan_rules(ctx, plan_code)
    if (rules.payments or PaymentRules()).provider != "alipay":
        yield env.provider
        return
    with alipay_client(ctx) as client:
        yield client


def _coverage(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    result = advance_memberships(ctx, scope)
    return JobDone(f"{result.now_covered} now covered, {result.aged_out} aged out")


def _period_close(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    on = _period_on(ctx, "period_close", scope, due_at)
    period = close_period(ctx, SYSTEM_ACTOR, scope, on, hook=hook)
    return JobDone(f"{period.ref} {period.state}, {period.member_count} members sharing")


def _collection(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    on = _period_on(ctx, "collection", scope, due_at)
    if _needs_missing_provider(ctx, env, scope):
        return JobDone(
            f"period of {on}: no payment provider (collect it with the collection file)", True
        )
    with _provider(ctx, env, scope) as provider:
        run = collect_period(ctx, SYSTEM_ACTOR, scope, on, provider, hook=hook)
    return JobDone(
        f"{run.period_ref} {run.state}: {run.payers_asked} payers asked, "
        f"{run.collected_fen} fen collected, {run.failed_fen} fen failed"
    )


def _retries(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    if _needs_missing_provider(ctx, env, scope):
        return JobDone("no payment provider (retry through the collection file)", True)
    with _provider(ctx, env, scope) as provider:
        run = retry_failed_payments(ctx, SYSTEM_ACTOR, scope, provider)
    return JobDone(
        f"{run.paid_late} paid late, {run.still_failing} still failing, {run.removed} removed"
    )


def _publicity(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    run = run_publicity(ctx, scope, SYSTEM_ACTOR)
    return JobDone(
        f"{run.published} published, {run.approved} approved, "
        f"{run.held_by_objections} held by objections"
    )


def _juries(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    panels = seat_waiting_panels(ctx)
    closed = close_due_juries(ctx, SYSTEM_ACTOR)
    return JobDone(
        f"{panels.seated} panels drawn ({panels.waiting} waiting); {closed.closed} votes closed"
    )


class CheckpointNotPublished(DomainError):
    def __init__(self, cosigners: int, quorum: int) -> None:
        super().__init__(
            "witness_quorum_not_met",
            f"{cosigners} of the {quorum} witnesses needed cosigned; the checkpoint is kept "
            "unpublished and tried again",
        )


def _log_checkpoint(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    if env.log_config is None:
        result = integrate_all(ctx)
        return JobDone(f"{result.integrated} leaves integrated; no signing key: no checkpoint")
    config = env.log_config()
    published = publish_checkpoint(ctx, config, http=env.http)
    checkpoint = published.checkpoint
    if not checkpoint.published:
        raise CheckpointNotPublished(checkpoint.cosigners, config.quorum)
    return JobDone(
        f"checkpoint size {checkpoint.size}, {checkpoint.cosigners} cosigners; "
        f"{published.integrated} leaves integrated"
    )


def _notifications(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    result = dispatch_notifications(ctx, env.outbound)
    return JobDone(
        f"{result.sent} sent, {result.skipped} opted out, {result.failed} to retry, "
        f"{result.dead} dead letters"
    )


def _prune_rate_limits(
    ctx: ServiceContext, env: JobEnvironment, scope: str, due_at: datetime, hook: StepHook
) -> JobDone:
    return JobDone(f"{prune_rate_counters(ctx)} expired counters deleted")


Job = Callable[[ServiceContext, JobEnvironment, str, datetime, StepHook], JobDone]

#: Job kind → the use case it runs (the names of domain/schedule.py's JOBS).
RUNNERS: dict[str, Job] = {
    "coverage": _coverage,
    "period_close": _period_close,
    "collection": _collection,
    "retries": _retries,
    "publicity": _publicity,
    "juries": _juries,
    "log_checkpoint": _log_checkpoint,
    "notifications": _notifications,
    "prune_rate_limits": _prune_rate_limits,
}


def run_job(
    ctx: ServiceContext,
    env: JobEnvironment,
    job: str,
    scope: str,
    due_at: datetime,
    hook: StepHook,
) -> JobDone:
    """Run one job kind for one scope (a plan's code, or "" for the site) and due instant."""
    return RUNNERS[job](ctx, env, scope, due_at, hook)
