"""Every refusal the code can raise is told in Chinese and English by its code (locales/errors.toml).

The codes are collected from the source: the first argument of every error class (DomainError and
its subclasses, found by their bases), of `Refusal`, of every function that forwards a `code`
parameter into one, and the first element of the refusal tuples the domain returns
(`("code", "message", "field"[, details])`). A text may only name values every site of its code
gives in `details` (or `field`), so a site that stops giving one fails here, not on a page.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mutualaid.domain.errors import DomainError
from mutualaid.web.i18n import Lang, error_text_key, error_texts

SRC = Path(__file__).resolve().parents[2] / "src" / "mutualaid"
CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: Values explain() derives from others, or takes from the plan (the health question's text).
DERIVED = {"minutes": "retry_after_s"}
#: Sites that build a code from a name, with the codes they can build; a new one fails the test.
BUILT_CODES = {
    ("domain/risk.py", "f'invalid_{name}'"): {
        "invalid_contact_phone",
        "invalid_payee_account",
        "invalid_address",
        "invalid_device_id",
        "invalid_doctor",
    },
}
#: Half-width punctuation in Chinese prose (a comma or colon inside a number is fine).
HALF_WIDTH = re.compile(r"(?<!\d)[,:]|[,:](?!\d)|[;()?!]")


@dataclass(frozen=True)
class Site:
    code: str
    variant: str | None
    #: The names the site gives (details keys and "field"); None when they cannot be read.
    gives: frozenset[str] | None
    where: str


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_message(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
        return node.value
    return None


def _details(node: ast.expr | None) -> tuple[frozenset[str] | None, str | None]:
    """The keys a details argument gives, and its variant (None, None when not a literal)."""
    if node is None:
        return frozenset(), None
    if not isinstance(node, ast.Dict):
        return None, None
    keys = {str(k.value) for k in node.keys if isinstance(k, ast.Constant)}
    variant = next(
        (
            str(v.value)
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and k.value == "variant" and isinstance(v, ast.Constant)
        ),
        None,
    )
    return frozenset(keys), variant


def _trees() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(SRC)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(SRC.rglob("*.py"))
    }


def _error_classes(trees: dict[str, ast.Module]) -> set[str]:
    classes: list[type] = [DomainError, *DomainError.__subclasses__()]
    names = {cls.__name__ for cls in classes} | {"Refusal"}
    grown = True
    while grown:
        grown = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ClassDef)
                    and node.name not in names
                    and any(_name(base) in names for base in node.bases)
                ):
                    names.add(node.name)
                    grown = True
    return names


def _forwarders(trees: dict[str, ast.Module], errors: set[str]) -> dict[str, int]:
    """Functions with a `code` parameter that build an error from it: the parameter's position."""
    found: dict[str, int] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or node.name in errors:
                continue
            params = [a.arg for a in node.args.posonlyargs + node.args.args]
            if "code" not in params:
                continue
            used = {_name(n) for n in ast.walk(node) if isinstance(n, ast.Name | ast.Attribute)}
            if used & errors:
                offset = 1 if params[0] in ("self", "cls") else 0
                found[node.name] = params.index("code") - offset
    return found


def collect_sites() -> tuple[list[Site], list[str]]:
    """Every place a code is given, and the places that build one this test cannot read."""
    trees = _trees()
    errors = _error_classes(trees)
    forwarders = _forwarders(trees, errors)
    sites: list[Site] = []
    unreadable: list[str] = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            where = f"{path}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                callee = _name(node.func)
                details_kw = next((k.value for k in node.keywords if k.arg == "details"), None)
                if callee in errors and node.args:
                    first = node.args[0]
                    if callee == "Refusal" and len(node.args) > 3:
                        details_kw = node.args[3]
                    gives, variant = _details(details_kw)
                    if code := _literal(first):
                        gives = gives | {"field"} if gives is not None else None
                        sites.append(Site(code, variant, gives, where))
                    elif isinstance(first, ast.JoinedStr):
                        built = BUILT_CODES.get((path, ast.unparse(first)))
                        if built is None:
                            unreadable.append(f"{where} {ast.unparse(first)}")
                        for code in sorted(built or ()):
                            sites.append(Site(code, None, frozenset({"field"}), where))
                elif (
                    callee in forwarders
                    and len(node.args) > forwarders[callee]
                    and (code := _literal(node.args[forwarders[callee]]))
                ):
                    gives, variant = _details(details_kw)
                    gives = gives | {"field"} if gives is not None else None
                    sites.append(Site(code, variant, gives, where))
                if (
                    callee == "__init__"
                    and len(node.args) > 1
                    and (code := _literal(node.args[0]))
                    and _is_message(node.args[1])
                ):
                    sites.append(Site(code, None, frozenset({"field"}), where))
            elif isinstance(node, ast.Tuple) and 2 <= len(node.elts) <= 4:
                code = _literal(node.elts[0])
                if code is None or not _is_message(node.elts[1]):
                    continue
                rest = node.elts[2:]
                if rest and not (_literal(rest[0]) or isinstance(rest[0], ast.JoinedStr)):
                    continue  # not (code, message, field[, details])
                gives, variant = _details(rest[1] if len(rest) > 1 else None)
                gives = gives | {"field"} if gives is not None else None
                sites.append(Site(code, variant, gives, where))
    return sites, unreadable


SITES, UNREADABLE = collect_sites()


def _key(site: Site) -> str:
    return f"{site.code}.{site.variant}" if site.variant else site.code


def test_the_collector_finds_the_codes_it_should() -> None:
    codes = {site.code for site in SITES}
    # One of each way a code is given: an error class, a subclass's __init__, a refusal tuple,
    # a Refusal, a forwarding function, a built name.
    assert {
        "invalid_id_number",
        "identity_unavailable",
        "waiting_period",
        "too_young",
        "invalid_hospital",
        "invalid_doctor",
        "not_certified",
    } <= codes
    assert len(codes) > 200
    assert not UNREADABLE, f"give these codes as literals or list them in BUILT_CODES: {UNREADABLE}"


def test_every_code_in_the_code_has_a_chinese_and_an_english_text() -> None:
    texts = error_texts()
    missing = sorted(
        {_key(s) for s in SITES if not texts.get(_key(s), {}).get("zh_CN")}
        | {_key(s) for s in SITES if not texts.get(_key(s), {}).get("en")}
    )
    assert not missing, f"add these to src/mutualaid/locales/errors.toml: {missing}"


def test_no_text_names_a_value_its_sites_do_not_give() -> None:
    texts = error_texts()
    problems = []
    for site in SITES:
        if site.gives is None or _key(site) not in texts:
            continue
        gives = set(site.gives) | {name for name, source in DERIVED.items() if source in site.gives}
        if site.code in ("health_answer_missing", "health_declaration"):
            gives.add("question")
        for locale, text in texts[_key(site)].items():
            named = set(PLACEHOLDER.findall(text)) - gives
            if named:
                problems.append(f"{site.where} {_key(site)} [{locale}] names {sorted(named)}")
    assert not problems, problems


def test_each_text_names_the_same_values_in_both_languages() -> None:
    for key, entry in error_texts().items():
        assert set(PLACEHOLDER.findall(entry["zh_CN"])) == set(PLACEHOLDER.findall(entry["en"])), (
            key
        )


def test_every_text_belongs_to_a_code_the_code_raises() -> None:
    used = {_key(site) for site in SITES} | {site.code for site in SITES}
    unused = sorted(set(error_texts()) - used)
    assert not unused, f"no site gives these codes (remove them or fix the site): {unused}"


def test_chinese_texts_use_full_width_punctuation() -> None:
    for key, entry in error_texts().items():
        text = re.sub(r"\{\w+\}", "", entry["zh_CN"])
        assert not HALF_WIDTH.search(text), f"{key}: {entry['zh_CN']}"


def test_a_refusal_is_told_by_its_code_with_its_values() -> None:
    from mutualaid.domain.identities import parse_resident_id

    with pytest.raises(DomainError) as caught:
        parse_resident_id("1101051949")
    zh, en = Lang.of("zh_CN"), Lang.of("en")
    assert zh.explain_error(caught.value) == "身份证号码应为18位，您输入了10位"
    assert en.explain_error(caught.value) == (
        "an identity number has 18 characters, this one has 10"
    )
    # A message reworded in the service changes nothing for the reader.
    reworded = DomainError(
        "invalid_id_number", "18 characters please", "id_number", details=caught.value.details
    )
    assert zh.explain_error(reworded) == "身份证号码应为18位，您输入了10位"


def test_dates_instants_roles_and_minutes_are_shown_for_the_reader() -> None:
    zh = Lang.of("zh_CN")
    lock = DomainError(
        "period_not_locked_yet",
        "…",
        "on",
        details={
            "publicity_on": "2026-12-07",
            "lock_at": datetime(2026, 12, 6, 16, 0, tzinfo=UTC).isoformat(),
        },
    )
    said = zh.explain_error(lock, zone=ZoneInfo("Asia/Shanghai"))
    assert said == "2026年12月7日这一期在2026年12月7日 00:00（UTC+8）锁定，在此之前不能结算"
    assert "UTC)" not in said and "16:00" not in said
    role = DomainError("forbidden", "…", details={"variant": "role", "role": "member"})
    assert zh.explain_error(role) == "您的角色（成员）无权进行此操作"
    throttled = DomainError("too_many_attempts", "…", details={"retry_after_s": 125})
    assert zh.explain_error(throttled) == "登录失败次数过多：请等待3分钟后再试"


def test_an_unknown_code_says_so_without_english_prose() -> None:
    said = Lang.of("zh_CN").explain("no_such_code_anywhere", {"x": 1})
    assert "no_such_code_anywhere" in said
    assert error_text_key("too_young", {"variant": "nonsense"}) == "too_young"


def test_a_period_is_told_by_its_day_not_its_reference() -> None:
    error = DomainError("period_not_committed", "…", details={"period": "xhb-main/2026-03-21"})
    assert Lang.of("zh_CN").explain_error(error) == "请先结算2026年3月21日这一期"
    assert Lang.of("en").explain_error(error) == "close the period of March 21, 2026 first"
