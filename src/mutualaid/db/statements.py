"""Hot statements compiled once to their SQL text and run with `exec_driver_sql`.

`connection.execute(statement)` computes the statement's cache key, finds its compiled form and
builds its parameters on every call: for the vote's one statement (a dozen joins and subqueries)
that was about 80 µs of client CPU in 170 (benchmarks/bench_votes.py --profile). A
`CompiledStatement` does that once per dialect; each call then binds the values (through the
columns' own bind processors, as `execute` would) and hands the text to the driver. SQLAlchemy
still wraps the driver's errors (an IntegrityError stays one) and handles lost connections.

Only for dialects with named parameters (PostgreSQL's psycopg); elsewhere, and for a statement whose
text is only final once its values are known (an expanding IN), it runs `execute` as before.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


class CompiledStatement:
    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[int, tuple[str, dict[str, Any], dict[str, Any]] | None] = {}

    def _compiled(
        self, connection: Connection
    ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        dialect = connection.dialect
        key = id(dialect)
        if key not in self._by_dialect:
            compiled = cast(ClauseElement, self.statement).compile(dialect=dialect)
            usable = (
                isinstance(compiled, SQLCompiler)
                and dialect.paramstyle == "pyformat"
                and not compiled.positional
                and not compiled.post_compile_params
                and not compiled.literal_execute_params
            )
            if usable:
                assert isinstance(compiled, SQLCompiler)
                # The values the statement carries itself (literals), by their bound names.
                constants = {
                    name: bind.effective_value
                    for name, bind in compiled.binds.items()
                    if not bind.required and name in compiled.bind_names.values()
                }
                processors = {
                    name: process
                    for name, process in compiled._bind_processors.items()
                    if callable(process)
                }
                if len(processors) == len(compiled._bind_processors):
                    self._by_dialect[key] = (str(compiled), constants, processors)
                else:  # a processor per element of a tuple: leave it to execute
                    self._by_dialect[key] = None
            else:
                self._by_dialect[key] = None
        return self._by_dialect[key]

    def run(self, connection: Connection, params: dict[str, Any]) -> CursorResult[Any]:
        """Execute with `params` (the statement's bind parameters by name)."""
        compiled = self._compiled(connection)
        if compiled is None:
            return connection.execute(self.statement, params)
        text, constants, processors = compiled
        values = constants | params
        for name, process in processors.items():
            if name in values:
                values[name] = process(values[name])
        return connection.exec_driver_sql(text, values)
