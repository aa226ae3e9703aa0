"""Languages of the web app: gettext catalogs (zh_CN, en), and money, dates and times per locale.

Catalogs are the .po files under ``mutualaid/locales/<locale>/LC_MESSAGES/messages.po``, read with
Babel when first needed (no compile step, so a fresh ``pip install -e .`` works). To add strings:

    pybabel extract -F babel.cfg -o /tmp/messages.pot src/mutualaid
    pybabel update -i /tmp/messages.pot -d src/mutualaid/locales --ignore-obsolete

then translate the new ``msgstr`` lines of ``zh_CN``; ``tests/web`` fails while one is missing.

Services speak English (their messages are for logs and the API). The web app shows a refusal in
the reader's language: fixed messages through the catalog, messages with values through the
patterns in `_PATTERNS`, and plan texts (health questions, illnesses) from the plan's own zh/en.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from mutualaid.domain.money import format_yuan
from mutualaid.domain.plans import PlanRules

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


# Messages from services with values in them: an English pattern, and the msgid that says it with
# named placeholders (translated in the catalog). The English msgid reproduces the original.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (
            r"^an identity number has 18 characters, this one has (?P<n>\d+)$",
            N_("an identity number has 18 characters, this one has {n}"),
        ),
        (r"^(?P<code>\d+) is not a province code$", N_("{code} is not a province code")),
        (
            r"^the code is wrong \((?P<left>\d+) tries left\)$",
            N_("the code is wrong ({left} tries left)"),
        ),
        (
            r"^(?P<digits>\d+) in the identity number is not a date$",
            N_("{digits} in the identity number is not a date"),
        ),
        (
            r"^a member must be at least (?P<days>\d+) days old \(can join from (?P<on>[\d-]+)\)$",
            N_("a member must be at least {days} days old (can join from {on})"),
        ),
        (
            r"^this plan accepts members from (?P<age>\d+) years old$",
            N_("this plan accepts members from {age} years old"),
        ),
        (
            r"^this plan accepts members up to (?P<age>\d+) years old$",
            N_("this plan accepts members up to {age} years old"),
        ),
        (
            r"^the credit check score is below the plan's minimum of (?P<score>\d+)$",
            N_("the credit check score is below the plan's minimum of {score}"),
        ),
        (
            r"^(?P<code>\S+) is not an illness this plan covers$",
            N_("{code} is not an illness this plan covers"),
        ),
        (
            r"^the illness was diagnosed in the waiting period \(until (?P<on>[\d-]+)\) and was not "
            r"caused by an accident$",
            N_(
                "the illness was diagnosed in the waiting period (until {on}) and was not caused by "
                "an accident"
            ),
        ),
        (
            r"^a claim must be reported within (?P<days>\d+) days of the first diagnosis "
            r"\(by (?P<on>[\d-]+)\)$",
            N_("a claim must be reported within {days} days of the first diagnosis (by {on})"),
        ),
        (
            r"^a (?P<state>\w+) membership cannot (?P<event>[\w ]+)$",
            N_("this membership cannot do that now (it is {state})"),
        ),
        (
            r"^a membership that is (?P<state>\w+) cannot (?P<event>[\w ]+)$",
            N_("this membership cannot do that now (it is {state})"),
        ),
        (
            r"^a claim that is (?P<state>[\w ]+) cannot (?P<event>[\w ]+)$",
            N_("this claim cannot do that now (it is {state})"),
        ),
        (r"^there is no claim (?P<ref>\S+)$", N_("there is no claim {ref}")),
        (r"^there is no membership (?P<id>\d+)$", N_("there is no membership {id}")),
        (r"^there is no plan '(?P<code>[^']+)'$", N_("there is no plan {code}")),
        (
            r"^too many failed logins: wait (?P<minutes>\d+) minutes and try again$",
            N_("too many failed logins: wait {minutes} minutes and try again"),
        ),
        (
            r"^too many registrations for this phone or from here: wait (?P<minutes>\d+) minutes "
            r"and try again$",
            N_(
                "too many registrations for this phone or from here: wait {minutes} minutes and try again"
            ),
        ),
        (
            r"^account (?P<id>\d+) is not an investigator or reviewer$",
            N_("account {id} is not an investigator or reviewer"),
        ),
        (
            r"^this needs the role (?P<roles>[\w, ]+); you are (?P<role>\w+)$",
            N_("your role ({role}) may not do this"),
        ),
        # Evidence files.
        (
            r"^the file is larger than the (?P<limit>[\w ]+) limit$",
            N_("the file is larger than the {limit} limit"),
        ),
        (
            r"^.* is not accepted; send .*$",
            N_("this type of file is not accepted: send a photo (JPEG, PNG, WEBP, HEIC) or a PDF"),
        ),
        (
            r"^the file is not a .*$",
            N_("this type of file is not accepted: send a photo (JPEG, PNG, WEBP, HEIC) or a PDF"),
        ),
        (
            r"^the file is .+ but was sent as .+$",
            N_("the file's content does not match its type: send the photo or PDF itself"),
        ),
        (r"^resume from byte (?P<n>\d+)$", N_("resume from byte {n}")),
        (
            r"^(?P<received>\d+) of (?P<size>\d+) bytes have arrived$",
            N_("{received} of {size} bytes have arrived"),
        ),
        (r"^claim \S+ has no evidence \d+$", N_("there is no such document")),
        # Periods and collection.
        (
            r"^the period of (?P<on>[\d-]+) locks at .* it cannot be closed before$",
            N_("the period of {on} cannot be closed before its publicity day begins"),
        ),
        (
            r"^period (?P<ref>\S+) is already closed; periods close in order$",
            N_("period {ref} is already closed; periods close in order"),
        ),
        (
            r"^close period (?P<ref>\S+) first(: its surplus carries into this one)?$",
            N_("close period {ref} first"),
        ),
        (r"^collect period (?P<ref>\S+) first$", N_("collect period {ref} first")),
        (r"^period (?P<ref>\S+) is still being closed$", N_("period {ref} is still being closed")),
        (r"^period (?P<ref>\S+) is not committed yet$", N_("period {ref} is not committed yet")),
        (r"^there is no period (?P<ref>\S+)$", N_("there is no period {ref}")),
        (
            r"^(?P<on>[\d-]+) is not a publicity day of this plan.*$",
            N_("{on} is not a publicity day of this plan"),
        ),
        (r"^line (?P<n>\d+): .*$", N_("line {n} of the results file is not valid")),
        (
            r"^membership \d+ was not charged in (?P<ref>\S+)$",
            N_("this membership was not charged in {ref}"),
        ),
        # Timeline notes the services write for the member.
        (
            r"^approved subject to publicity from (?P<on>[\d-]+)$",
            N_("approved subject to publicity from {on}"),
        ),
        (
            r"^published for objections until (?P<at>[\d-]+ [\d:]+ UTC)$",
            N_("published for objections until {at}"),
        ),
        (
            r"^(?P<note>.+) — you may dispute this decision and ask for a member jury$",
            N_("{note} — you may dispute this decision and ask for a member jury"),
        ),
        (
            r"^jury: (?P<approve>\d+) approve, (?P<reject>\d+) reject, (?P<recused>\d+) recused$",
            N_("jury: {approve} approve, {reject} reject, {recused} recused"),
        ),
        (
            r"^too few jurors voted in (?P<rounds>\d+) rounds; staff will decide$",
            N_("too few jurors voted in {rounds} rounds; staff will decide"),
        ),
    )
)

#: Fixed messages the services raise, marked here so they are extracted into the catalogs.
KNOWN_MESSAGES = (
    N_("the identity number's check digit does not match (a digit was mistyped)"),
    N_("an identity number is 17 digits followed by a digit or X"),
    N_("the birth date is after today"),
    N_("a name has 1 to 50 characters"),
    N_("this plan no longer accepts members"),
    N_("this person already has a membership in this plan"),
    N_(
        "this person cannot be enrolled from this account; if the ID number is yours, "
        "ask the plan operator"
    ),
    N_("this account has already enrolled its holder; choose a relation"),
    N_("a phone number is 6 to 15 digits"),
    N_("a password needs at least 8 characters"),
    N_("an account with this phone number exists"),
    N_("the phone number or password is wrong"),
    N_("name the hospital (1 to 200 characters)"),
    N_("the diagnosis date is after today"),
    N_("this member has already received a severe illness payout"),
    N_("the person was not a member on the diagnosis date"),
    N_("the membership is suspended for an unpaid share: pay it to restore cover"),
    N_("this member already has an open claim in this plan"),
    N_("say which documents are needed"),
    N_("only the member who reported the claim may answer"),
    N_("only the investigator assigned to this claim may do this"),
    N_("recommend approve or reject"),
    N_("describe what the investigation found"),
    N_("a cost cannot be negative"),
    N_("a rejection needs a reason code"),
    N_("tell the member in words why the claim is rejected"),
    N_("the investigator of a claim cannot also decide it: ask another reviewer"),
    N_("only the member who reported the claim may withdraw it"),
    N_("give your reason in 10 to 2,000 characters"),
    N_("objections are taken only while a case is in publicity"),
    N_("only covered members of this plan may object"),
    N_("you have already objected to this case"),
    N_("explain the decision on the objection"),
    N_("this objection has been reviewed"),
    N_("work queues are for staff"),
    N_("say why you dispute the decision"),
    N_("vote approve or reject, or recuse yourself"),
    N_("this vote is not open"),
    N_("only the drawn panel votes on this case"),
    N_("you are not an eligible juror for this plan"),
    N_("answer the questions on the case file first"),
    N_("you have already voted on this case"),
    N_("log in again: the token is unknown or expired"),
    N_("only staff may list members"),
    N_("this is for staff"),
    N_("dashboards are for staff"),
    N_("objections are reviewed by reviewers and operators"),
    N_("the log has not published a checkpoint yet"),
    N_("an amount in yuan, at most two decimals"),
    N_("a reviewer is checking your claim"),
    N_("the two passwords differ"),
    N_("tick the box to confirm"),
    N_("choose who is ill"),
    N_("give the date of the first diagnosis"),
    N_("a plan file is at most 1 MB"),
    N_("paste the plan file or choose it"),
    N_("the plan file is not UTF-8 text"),
    N_("say why the case goes to a member jury"),
    N_("choose approve or reject"),
    N_("choose uphold or dismiss"),
    N_("choose an investigator"),
    N_("there is no such page"),
    N_("something went wrong on our side; nothing was changed"),
    N_("this form has expired: go back, reload the page and try again"),
    N_("a request with this key is still running"),
    N_("investigation recommends: approve"),
    N_("investigation recommends: reject"),
    N_("no field investigation"),
    N_("investigation recommends approve"),
    N_("investigation recommends reject"),
    N_("the file is empty"),
    N_("a label has at most 100 characters"),
    N_("this deployment has no evidence store"),
    N_("only the member who reported the claim may add evidence"),
    N_("documents can be added only before the decision"),
    N_("this file is already attached"),
    N_("only reviewers, investigators and operators open evidence"),
    N_("choose a photo or a PDF of the document"),
    N_("send the file in smaller pieces"),
    N_("there is no such upload"),
    N_("the file is larger than announced"),
    N_("resume from the start"),
    N_("choose the provider's results file"),
    N_("the results file is not UTF-8 text"),
    N_("this period's collection is already complete"),
    N_("a post-paid plan needs a payment provider"),
    N_("the file is larger than the 20 MB limit"),
    N_("an investigator will check the documents and may contact you"),
    N_("the investigation is complete; an independent reviewer will decide"),
    N_("publicity passed: your aid will be paid after the next collection"),
    N_("an objection was upheld: the case is being reviewed again"),
    N_("the case was referred to a member jury"),
)

# Refusal messages that quote a plan text: shown with the plan's own words in the reader's language.
_QUESTION_REFUSALS = {
    "health_declaration": N_("the plan cannot accept a member who answers yes to: {question}"),
    "health_answer_missing": N_("please answer: {question}"),
}


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
        return (
            f"{format_date(local.date(), 'long', locale=self.code)} "
            f"{format_time(local, 'HH:mm', locale=self.code)} ({suffix})"
        )

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
        self, code: str, message: str, field: str | None, rules: PlanRules | None = None
    ) -> str:
        """A service's refusal in the reader's language."""
        if code in _QUESTION_REFUSALS and field and field.startswith("health_answers."):
            question_code = field.split(".", 1)[1]
            question = (
                next((q for q in rules.health_questions if q.code == question_code), None)
                if rules
                else None
            )
            if question is not None:
                return self.gettext(
                    _QUESTION_REFUSALS[code], question=self.pick(question.text_zh, question.text_en)
                )
        translated: str = self.translations.gettext(message)
        if translated != message:
            return translated
        for pattern, template in _PATTERNS:
            match = pattern.match(message)
            if match:
                values = {k: self._value(k, v) for k, v in match.groupdict().items()}
                return self.gettext(template, **values)
        return message

    def _value(self, name: str, value: str) -> str:
        if name == "on":
            try:
                return self.date(date.fromisoformat(value))
            except ValueError:
                return value
        if name == "state":
            return self.gettext(STATE_NAMES.get(value.replace(" ", "_"), value))
        return value

    def problems(self, error: Any, rules: PlanRules | None = None) -> list[Problem]:
        """Every refusal carried by a DomainError (enrollment lists all of them), translated."""
        listed: list[Mapping[str, Any]] = list(error.details.get("refusals", ())) or [
            {"code": error.code, "message": error.message, "field": error.field}
        ]
        return [
            Problem(
                str(item["code"]),
                self.explain(str(item["code"]), str(item["message"]), item.get("field"), rules),
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


def named(lang: Lang, names: Mapping[str, str]) -> Callable[[str | None], str]:
    def lookup(code: str | None) -> str:
        if code is None:
            return ""
        return lang.gettext(names[code]) if code in names else code

    return lookup
