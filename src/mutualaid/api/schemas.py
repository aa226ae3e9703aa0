"""Pydantic models of the JSON the API answers where a route builds a dict rather than returning a
service's dataclass, and of the error body every refusal carries (api/errors.py).

The routes that return a service dataclass document it as is (api/openapi.py `ok`); these models
only give a shape to what had none, and they list every key the route sends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mutualaid.services.plans.plans import PlanView


class Problem(BaseModel):
    field: str | None = Field(description="Dotted path of the input, e.g. `health_answers.q1`")
    message: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable, machine-readable: switch on it", examples=["not_found"])
    message: str = Field(description="For people; may change")
    field: str | None = Field(description="The input that caused it, when one did")
    details: dict[str, Any] | None = Field(
        default=None, description="More about some refusals, e.g. `retry_after_s` with a 429"
    )
    problems: list[Problem] | None = Field(
        default=None, description="With `invalid_request` (422): every field that was refused"
    )


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: `{"error": {"code", "message", "field"}}`."""

    error: ErrorDetail


class PlanDetail(BaseModel):
    plan: PlanView
    rules: dict[str, Any] = Field(description="The current rules, as in the plan file")


class QuizQuestion(BaseModel):
    code: str
    text_zh: str
    text_en: str
    choices: list[str]


class NotificationItem(BaseModel):
    id: int
    kind: str
    subject_type: str
    subject_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    read: bool


class NotificationsPage(BaseModel):
    unread: int
    items: list[NotificationItem] = Field(description="Newest first")


class LedgerBalances(BaseModel):
    balances: dict[str, int] = Field(description="Ledger account -> balance in fen")
    total_fen: int = Field(description="0 over all accounts: every transaction sums to zero")


class SignalOut(BaseModel):
    code: str
    weight: int
    label_zh: str
    label_en: str
    reason: str


class MemberRecord(BaseModel):
    """`mutualaid-member-data/v1` with the statements, balances, refunds and proofs."""

    model_config = ConfigDict(extra="allow")

    format: str
    exported_at: str
    account: dict[str, Any]
    persons: list[dict[str, Any]]
    statements: list[dict[str, Any]]
    prepaid_balances: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    proofs: dict[str, list[dict[str, Any]]]
