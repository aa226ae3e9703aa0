"""Risk pages: the risk panel of the case file (score, explained signals, feedback, routing, the
fraud record), the linked-claims graph (server-rendered SVG), and the operator's risk desk
(investigation cost per case, how flagged cases ended, the weight report, fraud appeals)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fastapi.responses import HTMLResponse, Response

from mutualaid.adapters import Int64
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import DomainError
from mutualaid.domain.risk import RiskLevel, level_of
from mutualaid.services.claims.routing import route_investigation
from mutualaid.services.plans.plans import list_plans
from mutualaid.services.risk.figures import risk_operations, weight_report
from mutualaid.services.risk.fraud_records import decide_appeal, flag_fraud, pending_appeals
from mutualaid.services.risk.reviews import (
    FEEDBACK_ROLES,
    ClaimGraph,
    claim_graph,
    claim_risk,
    record_feedback,
)
from mutualaid.web.pages import chosen_plan, page_router, redirect, render, render_form, templates
from mutualaid.web.sessions import Page, PageState
from mutualaid.web.staff import DECIDERS, DESK, STAFF, _step

router = page_router()


def risk_panel(page: PageState, ref: str) -> dict[str, Any]:
    """What the case file's risk panel shows (called from the template)."""
    actor = page.need(*STAFF)
    return {
        "risk": claim_risk(page.ctx, actor, ref),
        "can_feedback": actor.role in FEEDBACK_ROLES,
        "can_route": actor.role in DECIDERS,
        "is_operator": actor.role is Role.OPERATOR,
    }


templates.env.globals["risk_panel"] = risk_panel


@router.post("/staff/claims/{ref}/risk/feedback")
def feedback(ref: str, page: Page) -> Response:
    actor = page.need(*FEEDBACK_ROLES)
    return _step(
        page,
        ref,
        lambda: record_feedback(
            page.ctx,
            actor,
            ref,
            page.text("signal"),
            page.text("useful") == "yes",
            page.text("note"),
        ),
    )


@router.post("/staff/claims/{ref}/risk/route")
def route(ref: str, page: Page) -> Response:
    actor = page.need(*DECIDERS)
    return _step(
        page,
        ref,
        lambda: route_investigation(
            page.ctx, actor, ref, idempotency_key=page.text("form_key") or None
        ),
    )


@router.post("/staff/claims/{ref}/fraud-record")
def flag(ref: str, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    return _step(page, ref, lambda: flag_fraud(page.ctx, actor, ref, page.text("reason")))


# --- the linked-claims graph --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlacedNode:
    ref: str
    state: str
    score: int | None
    center: bool
    x: float
    y: float
    colour: str


@dataclass(frozen=True, slots=True)
class PlacedEdge:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    source: str
    target: str


SIZE = 560


_COLOURS = {RiskLevel.HIGH: "#c0392b", RiskLevel.MEDIUM: "#e67e22", RiskLevel.LOW: "#27ae60"}


def _colour(score: int | None) -> str:
    return "#9aa5b1" if score is None else _COLOURS[level_of(score)]


def layout(graph: ClaimGraph) -> tuple[list[PlacedNode], list[PlacedEdge]]:
    """The claim in the middle, the linked claims on a circle around it."""
    middle, radius = SIZE / 2, SIZE / 2 - 70
    others = [n for n in graph.nodes if not n.center]
    placed = {}
    for node in graph.nodes:
        if node.center:
            x, y = middle, middle
        else:
            angle = 2 * math.pi * others.index(node) / max(len(others), 1) - math.pi / 2
            x, y = middle + radius * math.cos(angle), middle + radius * math.sin(angle)
        placed[node.ref] = PlacedNode(
            node.ref,
            node.state,
            node.score,
            node.center,
            round(x, 1),
            round(y, 1),
            _colour(node.score),
        )
    edges = [
        PlacedEdge(
            placed[e.source].x,
            placed[e.source].y,
            placed[e.target].x,
            placed[e.target].y,
            ", ".join(e.kinds),
            e.source,
            e.target,
        )
        for e in graph.edges
    ]
    return list(placed.values()), edges


@router.get("/staff/claims/{ref}/risk/graph")
def graph(ref: str, page: Page) -> HTMLResponse:
    actor = page.need(*STAFF)
    nodes, edges = layout(claim_graph(page.ctx, actor, ref))
    return render(page, "staff/risk_graph.html", ref=ref, nodes=nodes, edges=edges, size=SIZE)


# --- the operator's risk desk --------------------------------------------------------------------


def _desk_context(page: PageState) -> dict[str, Any]:
    actor = page.need(*DESK)
    plans = list_plans(page.ctx)
    code = chosen_plan(page, plans)
    return {
        "plans": plans,
        "plan_code": code,
        "figures": risk_operations(page.ctx, actor, code) if code else None,
        "weights": weight_report(page.ctx, actor, code or None),
        "appeals": pending_appeals(page.ctx, actor),
        "is_operator": actor.role is Role.OPERATOR,
    }


@router.get("/staff/risk")
def desk(page: Page) -> HTMLResponse:
    return render(page, "staff/risk.html", **_desk_context(page))


@router.post("/staff/fraud-appeals/{appeal_id}/decision")
def appeal_decision(appeal_id: Int64, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    try:
        decide_appeal(
            page.ctx,
            actor,
            appeal_id,
            uphold=page.text("outcome") == "uphold",
            note=page.text("note"),
        )
    except DomainError as error:
        return render_form(page, "staff/risk.html", error, **_desk_context(page))
    return redirect("/staff/risk", ok="done")
