"""Which status each documented operation answered during a test, to hold it to its OpenAPI entry.

The recorder is the outermost middleware, so it also sees the middlewares' refusals (413, 422 for
NUL, 429) that no route answers: those are held to the documented path the request would have
reached."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class Answer:
    method: str
    path: str  # the route's template
    status: int


@dataclass
class AnsweredStatuses:
    answers: set[Answer] = field(default_factory=set)

    def undocumented(self, app: FastAPI) -> list[Answer]:
        """The answers whose status the operation's OpenAPI `responses` do not list."""
        paths = app.openapi()["paths"]
        missing = []
        for answer in sorted(self.answers, key=lambda a: (a.path, a.method, a.status)):
            operation = paths[answer.path].get(answer.method.lower())
            if operation is not None and str(answer.status) not in operation["responses"]:
                missing.append(answer)
        return missing


class RecordStatuses:
    def __init__(self, app: ASGIApp, fastapi: FastAPI, record: AnsweredStatuses) -> None:
        self.app = app
        self.fastapi = fastapi
        self.record = record
        self._paths: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                path = self._documented_path(scope)
                if path is not None:
                    self.record.answers.add(Answer(scope["method"], path, message["status"]))
            await send(message)

        await self.app(scope, receive, recording_send)

    def _documented_path(self, scope: Scope) -> str | None:
        """The OpenAPI path of the operation that answers `scope`, if it is documented."""
        if self._paths is None:
            self._paths = [
                (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"), path)
                for path in self.fastapi.openapi()["paths"]
            ]
        route = scope.get("route")
        template = getattr(route, "path", None)
        if isinstance(template, str):
            # The router matched: its template, without the convertors ({tile_path:path}).
            path = re.sub(r"\{([^}:]+):[^}]+\}", r"{\1}", template)
            return path if any(path == p for _, p in self._paths) else None
        # Refused before routing (413, 429, NUL): the documented path it would have reached,
        # a literal segment winning over a parameter.
        candidates = [p for pattern, p in self._paths if pattern.match(scope["path"])]
        return max(candidates, key=lambda p: len(re.sub(r"\{[^}]+\}", "", p)), default=None)
