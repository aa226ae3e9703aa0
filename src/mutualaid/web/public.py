"""Public pages: the plans and their rules in plain words, notices, statistics, the transparency
log and proof verification. No login, and nothing personal: cases are anonymised by the services
(masked name, age, province) and no evidence file is ever linked from here."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi.responses import HTMLResponse, Response

from mutualaid.domain.accounts import Role
from mutualaid.domain.apportionment import PeriodState, reached
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import next_publicity_day, publicity_window
from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.services.claims.notices import notice_days, notice_of
from mutualaid.services.claims.publicity import cases_in_publicity, objection_refusals
from mutualaid.services.periods.notice import period_notice
from mutualaid.services.periods.proofs import published_trust
from mutualaid.services.periods.views import PeriodView, list_periods
from mutualaid.services.plans.highlights import plan_highlights
from mutualaid.services.plans.plan_statistics import plan_statistics
from mutualaid.services.plans.plans import list_plans, plan_rules
from mutualaid.services.transparency.checkpoints import latest_checkpoint, proof_bundle
from mutualaid.transparency.charge_proofs import (
    LINKS,
    ChargeProof,
    ChargeProofError,
    parse_charge_proof,
    verify_charge_proof,
)
from mutualaid.transparency.errors import KeyFormatError, LeafError, VerificationError
from mutualaid.transparency.leaves import decode_leaf
from mutualaid.transparency.notes import parse_verifier_key
from mutualaid.transparency.verification import Check, TrustPolicy, verify_subject_bundle
from mutualaid.web.pages import DEFAULT_ZONE, page_router, render, render_form
from mutualaid.web.sessions import Page, PageState

router = page_router()


@router.get("/")
def home(page: Page) -> HTMLResponse:
    plans = list_plans(page.ctx)
    return render(
        page,
        "public/home.html",
        plans=plans,
        highlights={p.plan.code: plan_highlights(page.ctx, p.plan.code) for p in plans},
    )


@router.get("/plans/{code}")
def plan(code: str, page: Page) -> HTMLResponse:
    view, rules = plan_rules(page.ctx, code)
    return render(
        page,
        "public/plan.html",
        plan=view,
        rules=rules,
        zone=rules.zone,
        h=plan_highlights(page.ctx, code),
    )


@router.get("/notices")
def all_notices(page: Page) -> HTMLResponse:
    plans = list_plans(page.ctx)
    current = [
        (
            summary,
            plan_rules(page.ctx, summary.plan.code)[1],
            cases_in_publicity(page.ctx, summary.plan.code),
        )
        for summary in plans
    ]
    return render(
        page,
        "public/notices_all.html",
        current=current,
        objectable=_objectable(page, [c.ref for _, _, cases in current for c in cases]),
    )


def _objectable(page: PageState, refs: list[str]) -> dict[str, str]:
    """Per case, why the reader may not object ("" where they may): only members are asked."""
    if page.actor is None or page.actor.role is not Role.MEMBER:
        return {}
    return objection_refusals(page.ctx, page.actor, refs)


@router.get("/plans/{code}/notices")
def notices(code: str, page: Page) -> HTMLResponse:
    view, rules = plan_rules(page.ctx, code)
    current = cases_in_publicity(page.ctx, code)
    days = notice_days(page.ctx, code)
    return render(
        page,
        "public/notices.html",
        plan=view,
        rules=rules,
        zone=rules.zone,
        current=current,
        current_aid=sum(c.payout_fen for c in current),
        days=days,
        # A day's cases are shared in the period of the first publicity day after their
        # publicity ends (unless an objection holds one).
        shared_in={
            d.published_on: next_publicity_day(
                rules, local_date(publicity_window(rules, d.published_on).closes_at, rules.zone)
            )
            for d in days
        },
        periods=closed_periods(page, code),
        objectable=_objectable(page, [c.ref for c in current]),
    )


def closed_periods(page: PageState, code: str) -> list[PeriodView]:
    return [
        p
        for p in list_periods(page.ctx, code, limit=48)
        if reached(PeriodState(p.state), PeriodState.COMPUTED)
    ]


@router.get("/plans/{code}/periods/{publicity_on}")
def period(code: str, publicity_on: date, page: Page) -> HTMLResponse:
    """A closed period's notice: its cases (anonymised), the figures, and the arithmetic."""
    view, rules = plan_rules(page.ctx, code)
    return render(
        page,
        "public/period.html",
        plan=view,
        rules=rules,
        zone=rules.zone,
        notice=period_notice(page.ctx, code, publicity_on),
    )


@router.get("/plans/{code}/notices/{published_on}")
def notice(code: str, published_on: date, page: Page) -> HTMLResponse:
    view, rules = plan_rules(page.ctx, code)
    return render(
        page,
        "public/notice.html",
        plan=view,
        rules=rules,
        zone=rules.zone,
        notice=notice_of(page.ctx, code, published_on),
    )


@router.get("/plans/{code}/statistics")
def statistics(code: str, page: Page) -> HTMLResponse:
    view, rules = plan_rules(page.ctx, code)
    shares = [
        {
            "label": page.lang.date(p.publicity_on),
            "share_fen": p.share_fen or 0,
            "cases": p.case_count or 0,
            "members": p.member_count or 0,
        }
        for p in reversed(closed_periods(page, code))
    ]
    return render(
        page,
        "public/statistics.html",
        plan=view,
        rules=rules,
        stats=plan_statistics(page.ctx, code),
        shares=shares[-24:],
    )


@router.get("/transparency")
def transparency(page: Page) -> HTMLResponse:
    return render(page, "public/transparency.html", checkpoint=latest_checkpoint(page.ctx))


#: A charge proof file is a few kB (one block of at most 1024 charges); refuse anything huge.
CHARGE_PROOF_MAX_BYTES = 1 << 20


@router.get("/verify/charge")
def verify_charge_form(page: Page) -> HTMLResponse:
    """Upload a member's charge proof file to have each of its links checked."""
    return render(page, "public/verify_charge.html", checks=None)


@router.post("/verify/charge")
def verify_charge(page: Page) -> HTMLResponse:
    """Check an uploaded charge proof, link by link, with the keys given in the form or (when
    none are given) the keys the operator published, and say which."""
    upload = page.file("proof_file")
    data = upload.file.read(CHARGE_PROOF_MAX_BYTES + 1) if upload is not None else b""
    try:
        if not data:
            raise DomainError(
                "file_required",
                "choose a charge proof file",
                "proof_file",
                details={"variant": "charge_proof"},
            )
        if len(data) > CHARGE_PROOF_MAX_BYTES:
            raise DomainError(
                "file_too_large",
                "a charge proof file is at most 1 MB",
                "proof_file",
                details={"max_bytes": CHARGE_PROOF_MAX_BYTES},
            )
        trust, own_keys = _charge_trust(page)
    except DomainError as error:
        return render_form(page, "public/verify_charge.html", error, checks=None)
    checks: tuple[Check, ...] = ()
    unreadable: str | None = None
    proof: ChargeProof | None = None
    try:
        proof = parse_charge_proof(data)
        checks = verify_charge_proof(proof, trust).checks
    except ChargeProofError as error:
        checks = error.checks
    except VerificationError as error:
        unreadable = error.message
    return render(
        page,
        "public/verify_charge.html",
        proof=proof,
        checks=checks,
        unchecked=LINKS[len(checks) :] if proof is not None else (),
        ok=proof is not None and len(checks) == len(LINKS) and all(c.passed for c in checks),
        unreadable=unreadable,
        own_keys=own_keys,
        trust=trust,
    )


def _charge_trust(page: PageState) -> tuple[TrustPolicy, bool]:
    """The keys from the form (a log key, witness keys one per line, a quorum), else the
    published ones."""
    log_key = page.text("log_key").strip()
    if not log_key:
        return published_trust(page.ctx), False
    try:
        log = parse_verifier_key(log_key)
        witnesses = tuple(
            parse_verifier_key(line.strip())
            for line in page.raw("witness_keys").splitlines()
            if line.strip()
        )
    except KeyFormatError as error:
        raise DomainError("invalid_key", error.message, "log_key") from None
    quorum_text = page.text("quorum").strip()
    quorum = int(quorum_text) if quorum_text.isdigit() else len(witnesses)
    if quorum > len(witnesses):
        raise DomainError(
            "invalid_quorum", "the quorum is larger than the number of witness keys", "quorum"
        )
    return TrustPolicy(log.name, log, witnesses, quorum), True


@router.get("/verify/{subject_type}/{subject_ref:path}/bundle.json")
def verify_bundle_file(subject_type: str, subject_ref: str, page: Page) -> Response:
    if subject_type not in ("claim", "period"):
        raise NotFound("no_such_subject", "there is no such page")
    bundle = proof_bundle(page.ctx, subject_type, subject_ref)
    return Response(
        bundle.to_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{bundle_file_name(subject_type, subject_ref)}"'
        },
    )


@router.get("/verify/{subject_type}/{subject_ref:path}")
def verify(subject_type: str, subject_ref: str, page: Page) -> HTMLResponse:
    """A subject's proof, checked here with the keys the bundle names, and how to check it
    independently with `mutualaid verify bundle`."""
    if subject_type not in ("claim", "period"):
        raise NotFound("no_such_subject", "there is no such page")
    try:
        bundle = proof_bundle(page.ctx, subject_type, subject_ref)
    except DomainError as error:
        return render(
            page,
            "public/verify.html",
            status_code=error.status,
            subject_type=subject_type,
            subject_ref=subject_ref,
            bundle=None,
            unavailable=page.lang.explain_error(error),
        )
    report = verify_subject_bundle(bundle)
    leaves: list[tuple[int, str, list[tuple[str, str, bool]]]] = []
    for entry in bundle.entries:
        try:
            leaf = decode_leaf(entry.leaf_data)
        except LeafError:  # shown as undecodable; the checks above still ran
            leaves.append((entry.leaf_index, "?", []))
            continue
        leaves.append(
            (
                entry.leaf_index,
                leaf.type,
                [_leaf_field(page, key, value) for key, value in leaf.fields.items()],
            )
        )
    return render(
        page,
        "public/verify.html",
        subject_type=subject_type,
        subject_ref=subject_ref,
        bundle=bundle,
        report=report,
        leaves=leaves,
        unavailable=None,
        file_name=bundle_file_name(subject_type, subject_ref),
    )


def _leaf_field(page: PageState, key: str, value: object) -> tuple[str, str, bool]:
    """A leaf field for people: instants as local times, fen as money, counts as numbers; the rest
    as recorded (the third item says so: it is shown as code, to compare with the file)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if key.endswith("_fen"):
            return key, page.lang.money(value), False
        if key == "at" or key.endswith("_at"):
            return key, page.lang.datetime(datetime.fromtimestamp(value, UTC), DEFAULT_ZONE), False
        return key, page.lang.number(value), False
    return key, str(value), True


def bundle_file_name(subject_type: str, subject_ref: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in subject_ref)
    return f"proof-{subject_type}-{safe}.json"
