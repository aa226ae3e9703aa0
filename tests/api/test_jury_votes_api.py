"""Votes over HTTP check the caller's token in the vote's own first read (issue 20): the tally and
every refusal are those of a vote cast through the service by a known account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.builders.juries import answers_for, jurors, rejected_claim, use_jury_rules
from tests.factories import publish_demo_plans, staff

from mutualaid.api import juries as api_juries
from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.db.models import JuryVote
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import issue_token
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.closing import close_due_juries
from mutualaid.services.juries.juries import jury_rounds
from mutualaid.services.juries.panels import dispute_rejection
from mutualaid.services.juries.votes import cast_vote

CHOICES = ["approve", "reject", "approve", "recuse", "approve", "reject", "approve"]


def test_votes_over_http_tally_exactly_as_votes_cast_through_the_service(
    client: TestClient, ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    use_jury_rules(ctx, min_votes=3, vote_hours=24)
    panel = jurors(ctx, clock, len(CHOICES))
    by_http, by_service = (
        dispute_rejection(ctx, *rejected_claim(ctx, clock), "the pathology report shows stage III")
        for _ in range(2)
    )
    for juror, choice in zip(panel, CHOICES, strict=True):
        headers = {"Authorization": f"Bearer {issue_token(ctx, juror.account_id).token}"}
        url = f"/api/v1/juries/{by_http.id}/votes"
        body = {"choice": choice, "quiz_answers": answers_for(ctx, juror, by_http.id)}
        first = client.post(url, headers=headers, json=body)
        assert first.status_code == 201, first.text
        cast_vote(ctx, juror, by_service.id, choice, answers_for(ctx, juror, by_service.id))
        again = client.post(url, headers=headers, json=body)
        assert again.status_code == 201 and again.json() == first.json()
        other = "reject" if choice == "approve" else "approve"
        changed = client.post(url, headers=headers, json=body | {"choice": other})
        assert changed.status_code == 409
        assert changed.json()["error"]["code"] == "already_voted"
    with ctx.reading() as session:
        ballots = {
            case_id: sorted(
                session.execute(
                    select(JuryVote.juror_account_id, JuryVote.choice).where(
                        JuryVote.jury_case_id == case_id
                    )
                ).all()
            )
            for case_id in (by_http.id, by_service.id)
        }
    assert ballots[by_http.id] == ballots[by_service.id]
    assert len(ballots[by_http.id]) == len(CHOICES)
    clock.advance(timedelta(hours=25))
    close_due_juries(ctx, staff(ctx, Role.OPERATOR))
    [http_round] = jury_rounds(ctx, by_http.claim_ref)
    [service_round] = jury_rounds(ctx, by_service.claim_ref)
    assert (http_round.approve_votes, http_round.reject_votes, http_round.recusals) == (4, 2, 1)
    assert (http_round.outcome, http_round.approve_votes, http_round.reject_votes) == (
        service_round.outcome,
        service_round.approve_votes,
        service_round.reject_votes,
    )


def test_a_bad_token_is_refused_before_the_case_is_looked_at(
    client: TestClient, ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    use_jury_rules(ctx, min_votes=3, vote_hours=24)
    [juror] = jurors(ctx, clock, 1)
    jury = dispute_rejection(ctx, *rejected_claim(ctx, clock), "the report shows stage III")
    body = {"choice": "approve", "quiz_answers": answers_for(ctx, juror, jury.id)}
    bad = {"Authorization": "Bearer made-up"}
    for case_id in (jury.id, jury.id + 1000):
        refused = client.post(f"/api/v1/juries/{case_id}/votes", headers=bad, json=body)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "invalid_token"
    headers = {"Authorization": f"Bearer {issue_token(ctx, juror.account_id).token}"}
    missing = client.post(f"/api/v1/juries/{jury.id + 1000}/votes", headers=headers, json=body)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "jury_not_found"
    clock.advance(timedelta(days=31))  # past the 30-day token lifetime
    expired = client.post(f"/api/v1/juries/{jury.id}/votes", headers=headers, json=body)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "invalid_token"
    with ctx.reading() as session:
        assert session.scalars(select(JuryVote.id)).all() == []


def test_the_vote_routed_first_answers_as_the_listed_route(
    ctx: ServiceContext, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app routes a vote first, through an unlisted copy of the route (juries.hot_router):
    every answer, refusals and their order included, is the listed route's, and the OpenAPI
    document is the one without the copy."""
    publish_demo_plans(ctx)
    use_jury_rules(ctx, min_votes=3, vote_hours=24)
    voters = jurors(ctx, clock, 2)
    jury = dispute_rejection(ctx, *rejected_claim(ctx, clock), "the report shows stage III")
    first = TestClient(create_app(ctx))
    monkeypatch.setattr(api_juries, "hot_router", APIRouter())
    listed = TestClient(create_app(ctx))
    assert first.app.openapi() == listed.app.openapi()  # type: ignore[attr-defined]

    url = f"/api/v1/juries/{jury.id}/votes"
    answers = answers_for(ctx, voters[0], jury.id)
    token = issue_token(ctx, voters[0].account_id).token
    auth = {"Authorization": f"Bearer {token}"}
    good = {"choice": "approve", "quiz_answers": answers}
    requests: list[tuple[str, str, dict[str, str], Any]] = [
        ("POST", url, {}, {"choice": "maybe"}),  # no token and a bad body: 401 first
        ("POST", url, {"Authorization": "Basic eDp5"}, good),
        ("POST", url, {"Authorization": "Bearer made-up"}, {"choice": "maybe"}),
        ("POST", url, {"Authorization": "Bearer made-up"}, good),
        ("POST", url, auth | {"Idempotency-Key": "k" * 201}, good),
        ("POST", url, auth | {"Idempotency-Key": "k" * 201}, {"choice": "maybe"}),
        ("POST", url, auth, {"choice": "maybe", "quiz_answers": answers}),
        ("POST", url, auth, None),
        ("POST", url, auth, {"choice": "approve", "quiz_answers": {"illness": "x"}}),
        ("POST", "/api/v1/juries/abc/votes", auth, good),
        ("POST", f"/api/v1/juries/{2**70}/votes", auth, good),
        ("POST", f"/api/v1/juries/{jury.id + 1000}/votes", auth, good),
        ("GET", url, auth, None),
        ("PUT", url, auth, good),
    ]
    for method, path, headers, body in requests:
        answered = [
            client.request(method, path, headers=headers, json=body) for client in (first, listed)
        ]
        shown = [(a.status_code, a.json(), a.headers.get("allow")) for a in answered]
        assert shown[0] == shown[1], (method, path, headers, body)
    # A vote, its retry and a change of mind: the same answers from either route.
    receipts = [
        [
            client.post(url, headers=auth, json=body)
            for body in (good, good, good | {"choice": "reject"})
        ]
        for client, auth in (
            (first, auth),
            (listed, {"Authorization": f"Bearer {issue_token(ctx, voters[1].account_id).token}"}),
        )
    ]
    assert [r.status_code for r in receipts[0]] == [201, 201, 409]
    assert [(r.status_code, r.json()) for r in receipts[0]] == [
        (r.status_code, r.json()) for r in receipts[1]
    ]
