"""Languages of the web app: gettext catalogs (zh_CN, en), and money, dates and times per locale.

Catalogs are the .po files under ``mutualaid/locales/<locale>/LC_MESSAGES/messages.po``, read with
Babel when first needed (no compile step, so a fresh ``pip install -e .`` works). To add strings:

    pybabel extract -F babel.cfg -o /tmp/messages.pot src/mutualaid
    pybabel update -i /tmp/messages.pot -d src/mutualaid/locales --ignore-obsolete

then translate the new ``msgstr`` lines of ``zh_CN``; ``tests/web`` fails while one is missing.

Services speak English (their messages are for logs and the API). The web app shows a refusal in
the reader's language by its error code: ``locales/errors.toml`` holds one text per code (or per
``details["variant"]``) and locale, with ``{placeholders}`` filled from the error's details; plan
texts (health questions, illnesses) come from the plan's own zh/en.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from mutualaid.domain import claims
from mutualaid.domain.money import format_yuan
from mutualaid.domain.plans import PlanRules
from mutualaid.domain.risk import BY_CODE, SignalCode

LOCALES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LOCALE_NAMES = {"zh_CN": "中文", "en": "English"}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locales"


def N_(message: str) -> str:  # the gettext convention: mark a string for extraction
    return message


@cache
def catalog(locale: str) -> Translations:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        parsed = read_po(handle, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, parsed)
    compiled.seek(0)
    return Translations(compiled)


def pick_locale(*candidates: str | None) -> str:
    for candidate in candidates:
        if not candidate:
            continue
        normalised = candidate.replace("-", "_")
        if normalised in LOCALES:
            return normalised
        if normalised.lower().startswith("zh"):
            return "zh_CN"
        if normalised.lower().startswith("en"):
            return "en"
    return DEFAULT_LOCALE


#: Texts the web app shows for a refusal, per error code and locale (see the file's header).
ERROR_TEXTS_FILE = LOCALE_DIR / "errors.toml"


@cache
def error_texts() -> dict[str, dict[str, str]]:
    with ERROR_TEXTS_FILE.open("rb") as handle:
        parsed: dict[str, dict[str, str]] = tomllib.load(handle)
    return parsed


def error_text_key(code: str, details: Mapping[str, Any]) -> str:
    """The entry of `errors.toml` that says `code`: its variant's when the error names one."""
    variant = details.get("variant")
    if variant and f"{code}.{variant}" in error_texts():
        return f"{code}.{variant}"
    return code


#: Notes services write on a claim's timeline with values (domain/claims.py NOTE_*), by their
#: format: the key is the service's format, the value its msgid (the same text, for extraction).
TIMELINE_NOTES: dict[str, str] = {
    claims.NOTE_APPROVED: N_("approved subject to publicity from {on}"),
    claims.NOTE_PUBLISHED: N_("published for objections until {at}"),
    claims.NOTE_DISPUTABLE: N_("{note} — you may dispute this decision and ask for a member jury"),
    claims.NOTE_JURY_TALLY: N_("jury: {approve} approve, {reject} reject, {recused} recused"),
    claims.NOTE_JURY_TOO_FEW: N_("too few jurors voted in {rounds} rounds; staff will decide"),
    claims.NOTE_PAID: N_("{amount} paid"),
    claims.NOTE_WAITING_ILLNESS: N_(
        "diagnosed in the waiting period (until {on}) and not caused by an accident: no payout; "
        "the membership has ended and the shares paid are refunded"
    ),
}

#: Fixed notes services write on a timeline or a case file, for the catalogs.
FIXED_NOTES = (
    N_("a reviewer is checking your claim"),
    N_("an investigator will check the documents and may contact you"),
    N_("the investigation is complete; an independent reviewer will decide"),
    N_("publicity passed: your aid will be paid after the next collection"),
    N_("an objection was upheld: the case is being reviewed again"),
    N_("the case was referred to a member jury"),
    N_("no field investigation"),
    N_("investigation recommends: approve"),
    N_("investigation recommends: reject"),
    N_("investigation recommends approve"),
    N_("investigation recommends reject"),
)


def _note_pattern(note_format: str) -> re.Pattern[str]:
    """The notes one format writes (the format is the only source of the wording)."""
    parts = re.split(r"\{(\w+)\}", note_format)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>.+?)"
        for index, part in enumerate(parts)
    )
    return re.compile(f"^{pattern}$", re.DOTALL)


_NOTE_PATTERNS = tuple((_note_pattern(key), msgid) for key, msgid in TIMELINE_NOTES.items())


#: Refusals that quote a plan's health question: the question in the reader's language.
_QUESTION_REFUSALS = frozenset({"health_declaration", "health_answer_missing"})


@dataclass(frozen=True, slots=True)
class Problem:
    """A refusal to show next to the field it names."""

    code: str
    message: str
    field: str | None


@dataclass
class Lang:
    """The reader's language for one request: translations and formatting."""

    code: str
    translations: Translations = field(repr=False)

    @classmethod
    def of(cls, code: str) -> Lang:
        code = pick_locale(code)
        return cls(code, catalog(code))

    @property
    def html_lang(self) -> str:
        return "zh-CN" if self.code == "zh_CN" else "en"

    @property
    def is_zh(self) -> bool:
        return self.code == "zh_CN"

    def gettext(self, message: str, **values: Any) -> str:
        text: str = self.translations.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text: str = self.translations.ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def pick(self, zh: str, en: str) -> str:
        """A text the data carries in both languages (plan names, questions, illnesses)."""
        return zh if self.is_zh else en

    # --- formatting ------------------------------------------------------------------------

    def money(self, fen: int | None) -> str:
        if fen is None:
            return "—"
        return format_yuan(fen, symbol=True, grouping=True)

    def date(self, value: date | None) -> str:
        if value is None:
            return "—"
        return str(format_date(value, "long", locale=self.code))

    def datetime(self, value: datetime | None, zone: ZoneInfo) -> str:
        """An instant as the plan's local date and time, with the zone's UTC offset."""
        if value is None:
            return "—"
        local = value.astimezone(zone)
        offset = local.utcoffset()
        hours = int(offset.total_seconds() // 3600) if offset else 0
        suffix = f"UTC{hours:+d}" if hours else "UTC"
        day = format_date(local.date(), "long", locale=self.code)
        time = format_time(local, "HH:mm", locale=self.code)
        return f"{day} {time}（{suffix}）" if self.is_zh else f"{day} {time} ({suffix})"

    def zone_name(self, zone: ZoneInfo | str) -> str:
        """A time zone as people name it ("中国时间（UTC+8）"), not its IANA key."""
        zone = ZoneInfo(zone) if isinstance(zone, str) else zone
        name = str(get_timezone_name(zone, locale=self.code))
        offsets = {datetime(2026, month, 1, tzinfo=zone).utcoffset() for month in (1, 7)}
        if len(offsets) != 1:
            return name  # summer time: the offset changes through the year
        offset = offsets.pop()
        hours = int(offset.total_seconds() // 3600) if offset else 0
        suffix = f"UTC{hours:+d}" if hours else "UTC"
        return f"{name}（{suffix}）" if self.is_zh else f"{name} ({suffix})"

    def number(self, value: int) -> str:
        return f"{value:,}"

    def size(self, size_bytes: int) -> str:
        if size_bytes < 1024:
            return f"{size_bytes} B"
        if size_bytes < 1024 * 1024:
            return f"{size_bytes / 1024:.0f} KB"
        return f"{size_bytes / (1024 * 1024):.1f} MB"

    # --- refusals ----------------------------------------------------------------------------

    def explain(
        self,
        code: str,
        details: Mapping[str, Any] | None = None,
        field: str | None = None,
        rules: PlanRules | None = None,
        zone: ZoneInfo | None = None,
    ) -> str:
        """A refusal in the reader's language, by its code, with the values of its details."""
        details = details or {}
        values: dict[str, Any] = {"field": field or ""}
        for name, value in details.items():
            values[name] = self._value(name, value, zone or ZoneInfo("Asia/Shanghai"))
        if "retry_after_s" in details:
            values["minutes"] = max(1, math.ceil(int(details["retry_after_s"]) / 60))
        if code in _QUESTION_REFUSALS and field and field.startswith("health_answers."):
            question_code = field.split(".", 1)[1]
            question = (
                next((q for q in rules.health_questions if q.code == question_code), None)
                if rules
                else None
            )
            if question is not None:
                values["question"] = self.pick(question.text_zh, question.text_en)
        entry = error_texts().get(error_text_key(code, details))
        if entry is None:
            return self.gettext(N_("That did not work ({code})"), code=code)
        text = entry.get(self.code) or entry["en"]
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            # A site that gave fewer values than its text names (the tests forbid it).
            return self.gettext(N_("That did not work ({code})"), code=code)

    def note(self, text: str, zone: ZoneInfo | None = None) -> str:
        """A note a service wrote on a timeline, in the reader's language (a person's own words,
        such as a reviewer's reason, stay as they were written)."""
        translated: str = self.translations.gettext(text)
        if translated != text:
            return translated
        for pattern, msgid in _NOTE_PATTERNS:
            match = pattern.match(text)
            if match:
                values = {
                    name: self._note_value(name, value, zone or ZoneInfo("Asia/Shanghai"))
                    for name, value in match.groupdict().items()
                }
                return self.gettext(msgid, **values)
        return text

    def _note_value(self, name: str, value: str, zone: ZoneInfo) -> str:
        if name == "note":
            return self.note(value, zone)
        if name == "at":
            try:
                instant = datetime.strptime(value, claims.NOTE_INSTANT_FORMAT)
            except ValueError:
                return value
            return self.datetime(instant.replace(tzinfo=UTC), zone)
        if name == "on":
            try:
                return self.date(date.fromisoformat(value))
            except ValueError:
                return value
        return value

    def explain_error(
        self, error: Any, rules: PlanRules | None = None, zone: ZoneInfo | None = None
    ) -> str:
        return self.explain(error.code, error.details, error.field, rules, zone)

    def _value(self, name: str, value: Any, zone: ZoneInfo) -> Any:
        if isinstance(value, str) and (name == "on" or name.endswith("_on")):
            try:
                return self.date(date.fromisoformat(value))
            except ValueError:
                return value
        if isinstance(value, date) and not isinstance(value, datetime):
            return self.date(value)
        if name.endswith("_at"):
            instant = datetime.fromisoformat(value) if isinstance(value, str) else value
            return self.datetime(instant, zone) if isinstance(instant, datetime) else value
        if name.endswith("_fen") and isinstance(value, int):
            return self.money(value)
        if name.endswith("_bytes") and isinstance(value, int):
            return self.size(value)
        if name == "period" and isinstance(value, str) and "/" in value:
            # A period ref ("xhb-main/2026-03-21") is told by its day.
            try:
                return self.date(date.fromisoformat(value.rsplit("/", 1)[1]))
            except ValueError:
                return value
        if name == "state" and isinstance(value, str):
            return self.gettext(STATE_NAMES.get(value, value.replace("_", " ")))
        if name == "role" and isinstance(value, str):
            return self.gettext(ROLE_NAMES.get(value, value))
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
            return self.number(value)
        return value

    def problems(
        self, error: Any, rules: PlanRules | None = None, zone: ZoneInfo | None = None
    ) -> list[Problem]:
        """Every refusal carried by a DomainError (enrollment lists all of them), translated."""
        listed: list[Mapping[str, Any]] = list(error.details.get("refusals", ())) or [
            {"code": error.code, "field": error.field, "details": error.details}
        ]
        return [
            Problem(
                str(item["code"]),
                self.explain(
                    str(item["code"]), item.get("details") or {}, item.get("field"), rules, zone
                ),
                item.get("field"),
            )
            for item in listed
        ]


#: Names of states and codes shown to people (claim, membership, objection, jury).
STATE_NAMES: dict[str, str] = {
    "submitted": N_("submitted"),
    "in_review": N_("in review"),
    "investigating": N_("being investigated"),
    "awaiting_documents": N_("waiting for your documents"),
    "re_review": N_("independent re-review"),
    "approval_proposed": N_("approved, waiting for publicity"),
    "in_publicity": N_("in publicity"),
    "approved": N_("approved"),
    "paid": N_("paid"),
    "rejected": N_("rejected"),
    "jury_voting": N_("member jury voting"),
    "closed_rejected": N_("rejected (final)"),
    "withdrawn": N_("withdrawn"),
    "waiting": N_("waiting period"),
    "covered": N_("covered"),
    "suspended": N_("suspended"),
    "left": N_("left"),
    "ended": N_("ended"),
    "pending": N_("pending"),
    "upheld": N_("upheld"),
    "dismissed": N_("dismissed"),
    "open": N_("open"),
    "closed": N_("closed"),
    "awaiting_seed": N_("waiting for the panel draw"),
    "too_few_votes": N_("too few votes"),
}

RELATION_NAMES = {
    "self": N_("myself"),
    "spouse": N_("spouse"),
    "child": N_("child"),
    "parent": N_("parent"),
}

ROLE_NAMES = {
    "member": N_("member"),
    "reviewer": N_("reviewer"),
    "investigator": N_("investigator"),
    "operator": N_("operator"),
    "auditor": N_("auditor"),
}

REASON_NAMES = {
    "not_covered_illness": N_("the illness is not covered by the plan"),
    "pre_existing_condition": N_("the illness existed before joining"),
    "waiting_period": N_("diagnosed in the waiting period"),
    "insufficient_evidence": N_("the documents do not prove the claim"),
    "false_declaration": N_("the health declaration was not true"),
    "fraud": N_("fraud"),
    "criteria_not_met": N_("the illness does not meet the plan's definition"),
}

END_REASON_NAMES = {
    "left": N_("left the plan"),
    "removed_unpaid": N_("removed for an unpaid share"),
    "aged_out": N_("reached the exit age"),
    "severe_payout": N_("received a severe illness payout"),
    "waiting_illness": N_("an illness was diagnosed in the waiting period (shares refunded)"),
    "move_out": N_("moved into the elderly plan at the exit age"),
}

CHOICE_NAMES = {
    "approve": N_("approve"),
    "reject": N_("reject"),
    "recuse": N_("recuse myself"),
    "yes": N_("yes"),
    "no": N_("no"),
    "case_file": N_("the case file"),
    "rumours": N_("rumours"),
    "sympathy": N_("sympathy"),
    "vote": N_("vote"),
}

SEX_NAMES = {"M": N_("male"), "F": N_("female")}

#: Words shown for claim events in a timeline.
EVENT_NAMES = {
    "report": N_("reported"),
    "start_review": N_("review started"),
    "assign_investigation": N_("investigation assigned"),
    "request_documents": N_("documents requested"),
    "provide_documents": N_("documents provided"),
    "file_report": N_("investigation report filed"),
    "propose_approval": N_("approved subject to publicity"),
    "reject": N_("rejected"),
    "publish": N_("published for objections"),
    "uphold_objection": N_("objection upheld"),
    "close_publicity": N_("publicity passed"),
    "dispute": N_("disputed: sent to a member jury"),
    "refer_to_jury": N_("referred to a member jury"),
    "jury_approves": N_("the jury approved"),
    "jury_rejects": N_("the jury rejected"),
    "jury_inconclusive": N_("the jury did not reach enough votes"),
    "pay": N_("paid"),
    "withdraw": N_("withdrawn"),
}


PAYMENT_NAMES = {
    "paid": N_("paid"),
    "due": N_("to be collected"),
    "unpaid": N_("not paid yet"),
    "paid_late": N_("paid late"),
    "written_off": N_("written off"),
    "excluded": N_("not charged (suspended)"),
    "nothing_due": N_("nothing to pay"),
}

NOTIFICATION_NAMES = {
    "investigation_assigned": N_("a claim was assigned to you for investigation"),
    "documents_provided": N_("the member provided the requested documents"),
    "objection_upheld": N_("your objection was upheld"),
    "objection_dismissed": N_("your objection was dismissed"),
    "jury_vote_open": N_("a jury vote is open: you can take part"),
    "share_payment_failed": N_(
        "collecting your share failed: top up or pay before the retry days end"
    ),
    "membership_removed": N_("your membership was removed"),
    "membership_reinstated": N_("your membership was reinstated"),
    "prepaid_balance_low": N_("your prepaid balance is low: top it up"),
    "plan_wind_down_announced": N_("the plan announced its end: read what it means for you"),
    "plan_cover_ended": N_(
        "the plan's cover has ended; you can still claim for illness diagnosed before the end"
    ),
    "plan_below_minimum": N_("the plan is below its minimum membership"),
    "fraud_flagged": N_("a proven fraud record was made against your account; you can appeal"),
    "fraud_appeal_upheld": N_("your appeal was upheld: the fraud record is revoked"),
    "fraud_appeal_dismissed": N_("your appeal was dismissed: the fraud record stands"),
    "account_registered": N_("welcome: your account is ready; verify your phone number"),
    "membership_joined": N_("you joined a plan: the waiting period has started"),
    "claim_submitted": N_("your claim was received"),
}


#: A period's states (domain/apportionment.py PeriodState) and a plan's (domain/schemes.py).
PERIOD_STATE_NAMES = {
    "locked": N_("locked"),
    "computed": N_("computed"),
    "committed": N_("committed to the log"),
    "collecting": N_("collecting"),
    "collected": N_("collected"),
    "paid": N_("paid out"),
}
PLAN_STATUS_NAMES = {
    "open": N_("Open: taking new members"),
    "winding_down": N_("Winding down: no new members"),
    "run_off": N_("Run-off: cover has ended, earlier diagnoses may still claim"),
    "closed": N_("Closed"),
}
#: What an audit row is about (its subject_type).
SUBJECT_NAMES = {
    "account": N_("account"),
    "claim": N_("claim"),
    "evidence": N_("evidence file"),
    "fraud_record": N_("fraud record"),
    "jury_case": N_("jury case"),
    "ledger_transaction": N_("ledger transaction"),
    "login": N_("login"),
    "membership": N_("membership"),
    "period": N_("period"),
    "person": N_("person"),
    "plan": N_("plan"),
}

#: The lines of a period notice's "the numbers add up", by their name (services/periods/notice.py).
CHECK_EXPRESSIONS = {
    "aid": N_("Σ payouts of the shared cases = aid"),
    "charges": N_("Σ members × charge = total charged"),
    "members": N_("Σ members of every cohort = members"),
    "balance": N_("total + sponsor + prorated = aid + fee − surplus in + surplus out"),
    "share": N_("uncapped share = ⌈(aid + fee − surplus in) / members⌉"),
    "bands": N_("Σ band totals = aid + fee − surplus in"),
    "groups": N_(
        "Σ group members × min(band share, annual cap − charged so far) = Σ group members × charge"
    ),
}
_BAND_SHARE = re.compile(r"^share_(\d+)_(\d+)$")


def check_expression(lang: Lang, name: str, expression: str) -> str:
    """A notice's arithmetic line in the reader's language, by its name (the service's English
    expression when the name is new)."""
    if name in CHECK_EXPRESSIONS:
        return lang.gettext(CHECK_EXPRESSIONS[name])
    band = _BAND_SHARE.match(name)
    if band:
        return lang.gettext(
            N_("uncapped share {from_age}–{to_age} = ⌈band total / band members⌉"),
            from_age=band.group(1),
            to_age=band.group(2),
        )
    return expression


#: The steps of verifying a log proof (transparency/verification.py Check.kind): a name, and what a
#: passed step found.
VERIFY_CHECK_NAMES = {
    "leaf_inclusion": N_("Record {index} is in the log"),
    "consistency": N_("The log only grew since the older checkpoint"),
    "keys": N_("The keys can be read"),
    "origin": N_("The proof is of the expected log"),
    "checkpoint_signatures": N_("The checkpoint is signed and cosigned"),
}
VERIFY_CHECK_DETAILS = {
    "leaf_inclusion": N_("record {index} (hash {hash}) is in the log of {size} records"),
    "consistency": N_("the log of {new_size} records extends the log of {old_size} records"),
    "checkpoint_signatures": N_(
        "signed by the log key {key} and cosigned by {cosigners} of {witnesses} witnesses "
        "(at least {quorum} needed)"
    ),
}

#: The kinds of records in the transparency log (transparency/leaves.py LEAF_SCHEMAS).
LEAF_NAMES = {
    "evidence": N_("evidence file"),
    "claim_decision": N_("decision on a claim"),
    "jury_result": N_("jury result"),
    "period_commitment": N_("period's charges"),
    "plan_version": N_("plan version"),
    "claim_event": N_("claim event"),
    "objection": N_("objection"),
    "plan_event": N_("plan event"),
    "membership_event": N_("membership event"),
    "membership_events": N_("membership events"),
    "log_key": N_("new log signing key"),
}


#: The fields of log records (transparency/leaves.py LEAF_SCHEMAS), named for people.
LEAF_FIELD_NAMES = {
    "aid_fen": N_("aid"),
    "at": N_("time"),
    "case_count": N_("cases"),
    "charges_count": N_("charges"),
    "charges_leaves": N_("blocks of charges"),
    "charges_root": N_("root of the charges tree"),
    "claim_ref": N_("claim"),
    "closed_at": N_("closed"),
    "decided_at": N_("decided"),
    "decision": N_("decision"),
    "effective_on": N_("effective from"),
    "end_on": N_("end date"),
    "event": N_("event"),
    "evidence_root": N_("root of the evidence hashes"),
    "evidence_sha256": N_("evidence hash"),
    "fee_fen": N_("management fee"),
    "funding": N_("funding"),
    "illness_code": N_("illness code"),
    "jury_ref": N_("jury"),
    "lock_at": N_("locked"),
    "media_type": N_("file type"),
    "new_key": N_("new key"),
    "member_count": N_("members"),
    "membership_ids": N_("memberships"),
    "membership_ref": N_("membership"),
    "memberships_ended": N_("memberships ended"),
    "objection_ref": N_("objection"),
    "occurred_at": N_("time"),
    "old_key": N_("old key"),
    "outcome": N_("outcome"),
    "period_ref": N_("period"),
    "plan_ref": N_("plan"),
    "prorated_fen": N_("taken off in proportion"),
    "reason_code": N_("reason"),
    "refunded_fen": N_("refunded"),
    "refunds": N_("refunds"),
    "rule": N_("rule"),
    "rules_sha256": N_("hash of the rules"),
    "run_off_until_on": N_("run-off until"),
    "sha256": N_("file hash"),
    "share_fen": N_("share per member"),
    "signature": N_("signature"),
    "size": N_("size"),
    "sponsor_fen": N_("paid by the operator"),
    "stage": N_("stage"),
    "state": N_("state"),
    "submitted_at": N_("submitted"),
    "surplus_in_fen": N_("surplus from last period"),
    "surplus_out_fen": N_("surplus to next period"),
    "total_charged_fen": N_("total charged"),
    "version": N_("version"),
    "votes_against": N_("votes against"),
    "votes_for": N_("votes for"),
    "written_off_fen": N_("written off"),
}


def leaf_value(lang: Lang, value: str) -> str | None:
    """A recorded word (an event, a state, a reason) in the reader's language, if it has one."""
    for names in (EVENT_NAMES, STATE_NAMES, REASON_NAMES, CHOICE_NAMES):
        if value in names:
            return lang.gettext(names[value])
    return None


def verify_check(lang: Lang, check: Any) -> tuple[str, str]:
    """A verification step's name and finding in the reader's language. A failed step's finding
    is the verifier's own (technical) words."""
    kind = getattr(check, "kind", "")
    values = dict(getattr(check, "values", {}) or {})
    if kind not in VERIFY_CHECK_NAMES:
        return check.name, check.detail
    try:
        name = lang.gettext(VERIFY_CHECK_NAMES[kind], **{"index": "?", **values})
        detail = (
            lang.gettext(VERIFY_CHECK_DETAILS[kind], **values)
            if check.passed and kind in VERIFY_CHECK_DETAILS
            else check.detail
        )
    except (KeyError, IndexError):
        return check.name, check.detail
    return name, detail


#: File types by the names people know (format names, the same in every language).
MEDIA_NAMES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/heic": "HEIC",
    "image/heif": "HEIC",
    "application/pdf": "PDF",
}


def signal_label(lang: Lang, code: str) -> str:
    """A risk signal (or a link between claims named after one) by its label."""
    signal = BY_CODE.get(SignalCode(code)) if code in set(SignalCode) else None
    return lang.pick(signal.label_zh, signal.label_en) if signal else code


def named(lang: Lang, names: Mapping[str, str]) -> Callable[[str | None], str]:
    def lookup(code: str | None) -> str:
        if code is None:
            return ""
        return lang.gettext(names[code]) if code in names else code

    return lookup
