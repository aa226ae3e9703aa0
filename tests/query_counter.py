"""Counting the SQL statements a piece of code sends, to pin the hot paths against N+1 regressions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from mutualaid.services.context import autocommit_engine


class QueryCounter:
    """Counts the statements executed on `engine` inside a `with` block: the act step of a test,
    after its arrange step."""

    def __init__(self, engine: Engine) -> None:
        # On PostgreSQL the hottest paths (joins, votes, token checks) run on the context's second,
        # autocommit pool: count both.
        self.engines = [engine]
        if engine.dialect.name == "postgresql":
            self.engines.append(autocommit_engine(engine))
        self.statements: list[str] = []

    def _record(self, *args: Any) -> None:
        # before_cursor_execute(conn, cursor, statement, parameters, context, executemany)
        self.statements.append(args[2])

    def __enter__(self) -> QueryCounter:
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._record)

    @property
    def count(self) -> int:
        return len(self.statements)
