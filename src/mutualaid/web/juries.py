"""Juror pages: the certification quiz, open cases (anonymised file, case quiz, vote or recuse),
and my votes. No running tally is ever shown: counts appear only once a vote has closed."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse, Response

from mutualaid.adapters import Int64
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import DomainError
from mutualaid.services.enrollment.member_data import family_coverage
from mutualaid.services.juries.certification import certification_quiz, certify_juror
from mutualaid.services.juries.juries import open_votes_for
from mutualaid.services.juries.juror_records import certified_at, votes_cast_by
from mutualaid.services.juries.votes import cast_vote, juror_case_file
from mutualaid.services.plans.plans import list_plans, plan_rules
from mutualaid.web.pages import page_router, redirect, render, render_form
from mutualaid.web.sessions import Page, PageState

router = page_router()


@router.get("/jury")
def jury_home(page: Page) -> HTMLResponse:
    actor = page.need(Role.MEMBER)
    plan_codes = sorted({c.plan_code for c in family_coverage(page.ctx, actor) if c.active})
    open_votes = [vote for code in plan_codes for vote in open_votes_for(page.ctx, actor, code)]
    return render(
        page,
        "juries/home.html",
        certified_at=certified_at(page.ctx, actor),
        open_votes=open_votes,
        votes=votes_cast_by(page.ctx, actor),
    )


@router.get("/jury/certification")
def certification_form(page: Page) -> HTMLResponse:
    page.need(Role.MEMBER)
    return render(page, "juries/certification.html", quiz=certification_quiz(), wrong=[])


@router.post("/jury/certification")
def certification(page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    quiz = certification_quiz()
    result = certify_juror(page.ctx, actor, {q["code"]: page.text(q["code"]) for q in quiz})
    if not result.passed:
        return render(
            page,
            "juries/certification.html",
            status_code=422,
            quiz=quiz,
            wrong=result.wrong,
            values=page.values(),
        )
    return redirect("/jury", ok="certified")


def _case_context(page: PageState, jury_case_id: int) -> dict[str, Any]:
    actor = page.need(Role.MEMBER)
    case_file = juror_case_file(page.ctx, actor, jury_case_id)
    # The quiz offers illness codes: name them in the reader's language (from every plan's catalogue).
    names: dict[str, str] = {}
    for summary in list_plans(page.ctx):
        for illness in plan_rules(page.ctx, summary.plan.code)[1].illnesses:
            names.setdefault(illness.code, page.lang.pick(illness.name_zh, illness.name_en))
    return {"file": case_file, "illness_names": names}


@router.get("/jury/cases/{jury_case_id}")
def case(jury_case_id: Int64, page: Page) -> HTMLResponse:
    return render(page, "juries/case.html", **_case_context(page, jury_case_id))


@router.post("/jury/cases/{jury_case_id}/vote")
def vote(jury_case_id: Int64, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    choice = page.text("choice")
    answers = {
        key.removeprefix("quiz."): value
        for key, value in page.values().items()
        if key.startswith("quiz.")
    }
    try:
        cast_vote(page.ctx, actor, jury_case_id, choice, answers)
    except DomainError as error:
        return render_form(page, "juries/case.html", error, **_case_context(page, jury_case_id))
    return redirect("/jury", ok="recused" if choice == "recuse" else "voted")
