"""Structured logs: readable in a terminal, JSON lines in production."""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured: a test
    runner (or a daemon) may swap and close the stream it had then, and a cached logger would
    then raise on write ("I/O operation on closed file") inside the request it logs."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    # Tracebacks never show local variables (they held passwords and identity numbers), and a
    # plain traceback renders in microseconds where rich's, with locals, took seconds.
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    exceptions: list[structlog.types.Processor] = (
        [ExceptionRenderer(ExceptionDictTransformer(show_locals=False))] if json else []
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *exceptions,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
