"""axe-core (tests/e2e/vendor/axe.min.js) over the pages the browser tests visit.

`AxeWatch` audits every page a test's browser contexts show. An init script puts axe in every
document and runs it once the document has loaded; the findings come back as a console message.
Before the browser leaves a document (a route on the context sees the main frame's next
navigation) the watch waits for that loaded document's findings, so a test that clicks on at once
loses none. (Running axe from that route instead cannot work: Playwright evaluates nothing in a
frame while its navigation is held.) `finish` (called by tests/e2e/conftest.py once the test body has run) fails the test that
visited a page with a violation, naming the page, the rule, the elements and what to do.
`violations(page)` runs axe on a page as it is now (after a click that changed it in place).

No rule is switched off: axe's default rule set (WCAG 2.x A and AA plus best practices) applies.
A context without JavaScript runs no init script: the watch keeps each document it was served and
audits that HTML at the end, loaded at its own address in a context with JavaScript.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    Route,
    ViewportSize,
)

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
MARK = "__axe__ "
WAIT_MS = 20_000

#: The violations as plain data (one entry per rule, with every element that breaks it).
SUMMARY = """(violations) => violations.map((v) => ({
  rule: v.id,
  impact: v.impact || '',
  help: v.help,
  nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary || ''})),
}))"""
#: Runs in every document after axe itself: audit the top document once it has loaded.
AUTO = f"""(() => {{
  if (window.top !== window) return;
  const summary = {SUMMARY};
  window.__axeAuto = new Promise((resolve) => window.addEventListener('load', () => {{
    setTimeout(async () => {{
      let found;
      try {{
        found = summary((await window.axe.run(document, {{resultTypes: ['violations']}})).violations);
      }} catch (error) {{
        found = [{{rule: 'axe-error', impact: 'error', help: String(error), nodes: []}}];
      }}
      console.log({json.dumps(MARK)} + JSON.stringify({{url: location.href, found}}));
      resolve();
    }}, 0);
  }}));
}})();"""
NOW = f"""async () => {{
  if (window.__axeAuto) await window.__axeAuto;
  const summary = {SUMMARY};
  return summary((await window.axe.run(document, {{resultTypes: ['violations']}})).violations);
}}"""


@cache
def init_script() -> str:
    return AXE.read_text(encoding="utf-8") + "\n" + AUTO


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule broken on one page, with the elements that break it."""

    page: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]
    summary: str

    def __str__(self) -> str:
        shown = ", ".join(self.targets[:5]) + (" …" if len(self.targets) > 5 else "")
        why = " ".join(self.summary.split())
        return f"{self.page}: [{self.rule}, {self.impact}] {self.help}: {shown}\n    {why}"


def _parse(url: str, found: list[dict[str, Any]]) -> list[Violation]:
    return [
        Violation(
            page=url,
            rule=item["rule"],
            impact=item["impact"],
            help=item["help"],
            targets=tuple(node["target"] for node in item["nodes"]),
            summary=item["nodes"][0]["summary"] if item["nodes"] else "",
        )
        for item in found
    ]


def violations(page: Page) -> list[Violation]:
    """What axe finds on `page` as it is now (a page of a context the watch set up)."""
    return _parse(page.url, page.evaluate(NOW))


def report(found: list[Violation]) -> str:
    lines = "\n".join(str(v) for v in found)
    return f"axe-core found {len(found)} accessibility violation(s):\n{lines}"


def _only(url: str) -> Callable[[str], bool]:
    return lambda address: address == url


def _serve(body: bytes) -> Callable[[Route], None]:
    def serve(route: Route) -> None:
        route.fulfill(body=body, content_type="text/html; charset=utf-8")

    return serve


@dataclass
class AxeWatch:
    """Audits every page of the contexts it watches; `finish` fails on what it found."""

    found: dict[tuple[str, str], Violation] = field(default_factory=dict)
    audited: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)
    #: Pages whose document has loaded and not yet reported.
    waiting: set[Page] = field(default_factory=set)
    #: The documents a context without JavaScript was served (address, HTML), to audit at the end.
    served: list[tuple[str, bytes, ViewportSize | None]] = field(default_factory=list)
    browser: Browser | None = None
    finished: bool = False

    def watch(self, context: BrowserContext, *, javascript: bool = True) -> BrowserContext:
        self.contexts.append(context)
        self.browser = context.browser
        if not javascript:  # no init script runs: keep the documents to audit them at the end
            context.on("response", self._keep_document)
            return context
        context.add_init_script(init_script())
        context.on("page", self._watch_page)
        context.route("**/*", self._before_request)
        close: Callable[..., None] = context.close

        def audited_close(**kwargs: Any) -> None:
            self._wait_for_all(context)
            if context in self.contexts:
                self.contexts.remove(context)
            close(**kwargs)

        context.close = audited_close  # type: ignore[method-assign]
        return context

    def record(self, found: list[Violation]) -> None:
        if self.finished:
            return
        for violation in found:
            path = violation.page.split("?")[0]
            for target in violation.targets or ("",):
                self.found.setdefault((path, f"{violation.rule} {target}"), violation)

    def _watch_page(self, page: Page) -> None:
        page.on("load", lambda: self.waiting.add(page))
        page.on("console", lambda message: self._on_console(page, message))
        page.on("close", lambda: self.waiting.discard(page))

    def _on_console(self, page: Page, message: ConsoleMessage) -> None:
        if not message.text.startswith(MARK):
            return
        self.waiting.discard(page)
        data = json.loads(message.text[len(MARK) :])
        self.audited.append(data["url"])
        self.record(_parse(data["url"], data["found"]))

    def _wait_for(self, page: Page) -> None:
        if page not in self.waiting or page.is_closed():
            return
        try:
            page.wait_for_event("console", lambda m: m.text.startswith(MARK), timeout=WAIT_MS)
        except Error:
            self.waiting.discard(page)  # no JavaScript, or the page went away: nothing to read

    def _before_request(self, route: Route, request: Request) -> None:
        if request.is_navigation_request():
            frame = request.frame
            if frame.parent_frame is None:
                self._wait_for(frame.page)
        route.fallback()

    def _keep_document(self, response: Response) -> None:
        request = response.request
        if not request.is_navigation_request() or request.frame.parent_frame is not None:
            return
        if response.status >= 300 or "text/html" not in response.headers.get("content-type", ""):
            return
        try:
            body = response.body()
        except Error:
            return  # the browser let go of the body (the page moved on): nothing to keep
        self.served.append((response.url, body, request.frame.page.viewport_size))

    def _audit_served(self) -> None:
        """Load each kept document at its own address in a context with JavaScript, to audit it."""
        if not self.served or self.browser is None:
            return
        helper = self.watch(self.browser.new_context())
        page = helper.new_page()
        for url, body, viewport in self.served:
            if viewport is not None:
                page.set_viewport_size(viewport)
            page.route(_only(url), _serve(body))
            page.goto(url)
            self.record(violations(page))
            page.unroute_all()
        self.served.clear()
        helper.close()

    def _wait_for_all(self, context: BrowserContext) -> None:
        for page in context.pages:
            self._wait_for(page)

    def finish(self) -> None:
        """Read the findings of the pages still open, then fail when any page broke a rule."""
        for context in list(self.contexts):
            self._wait_for_all(context)
        self._audit_served()
        self.finished = True
        unique = list(dict.fromkeys(self.found.values()))
        assert not unique, report(unique)
