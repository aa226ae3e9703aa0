"""Where a server's CPU goes per request: a profiled one-worker uvicorn, and its profile split.

    python benchmarks/cpu_profile.py OUT.prof APP --port N [--factory] [--app-dir DIR]
        [--access-log] [--no-proxy-headers]

serves APP in this process (one worker) under cProfile with a per-thread CPU clock in every
thread (the event loop's and the thread pool's, where sync endpoints and the rate limiter run),
from SIGUSR1 (send it after a warm-up) until the server stops (SIGTERM or SIGINT), when it writes
the merged profile to OUT.prof.

`split(OUT.prof)` groups the profile's own time (tottime) into the parts of a request (uvicorn and
the event loop, our middleware, FastAPI's dependency resolution, body validation, the service, the
driver, the response…); a built-in function's time goes to the part of the Python code that called
it. Waiting (a socket, a lock, the database) costs no CPU and so counts nowhere. The profiler's
own overhead inflates call-heavy code; `split` gives fractions, meant to be scaled by the CPU a
process spends per request without the profiler (bench_joins.cpu_seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import signal
import sys
import threading
import time
from collections import defaultdict
from typing import Any

#: (part, substrings of a code file's path), first match wins.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "middleware: request id, log line, metrics",
        (
            "mutualaid/api/request_log.py",
            "mutualaid/metrics.py",
            "structlog/",
            "prometheus_client/",
        ),
    ),
    ("middleware: security headers", ("mutualaid/api/headers.py",)),
    ("middleware: body limit", ("mutualaid/api/limits.py",)),
    ("middleware: NUL check", ("mutualaid/api/nul.py",)),
    (
        "middleware: rate limit",
        ("mutualaid/api/rate_limiting.py", "mutualaid/services/accounts/rate_limits.py"),
    ),
    ("middleware: read-your-writes", ("mutualaid/api/read_your_writes.py", "mutualaid/db/replica")),
    (
        "thread pool hop (anyio, threading)",
        ("anyio/", "threading.py", "queue.py", "concurrent/", "starlette/concurrency.py"),
    ),
    (
        "FastAPI dependencies and body parsing",
        ("fastapi/dependencies/", "fastapi/security/", "fastapi/_compat", "fastapi/params"),
    ),
    (
        "response serialisation",
        ("fastapi/encoders.py", "starlette/responses.py", "mutualaid/api/responses.py"),
    ),
    (
        "uvicorn, HTTP parsing, event loop",
        ("uvicorn/", "httptools", "asyncio/", "uvloop", "selectors.py", "socket.py"),
    ),
    (
        "Starlette/FastAPI routing and middleware plumbing",
        ("starlette/", "fastapi/", "contextlib.py", "contextvars"),
    ),
    ("SQLAlchemy (statement cache, pool, rows)", ("sqlalchemy/",)),
    ("psycopg driver (adapt, send, receive)", ("psycopg",)),
    ("logging (stdlib)", ("logging/",)),
    (
        "the endpoint and service code",
        ("mutualaid/", "bench_joins.py", "datetime", "json/", "hashlib", "pydantic/"),
    ),
)
#: Built-ins named here are parts of their own, whoever calls them.
BUILTIN_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request body: JSON + model validation", ("validate_json", "validate_python")),
    ("response serialisation", ("dump_json", "to_json", "dump_python", "to_jsonable_python")),
)
OTHER = "other"


def part_of(filename: str, function: str) -> str | None:
    """The part a function belongs to; None for a built-in not named in BUILTIN_PARTS."""
    if filename == "~":
        for part, names in BUILTIN_PARTS:
            if any(name in function for name in names):
                return part
        return None
    path = filename.replace("\\", "/")
    for part, needles in PARTS:
        if any(needle in path for needle in needles):
            return part
    return OTHER


def split(path: str) -> tuple[dict[str, float], float]:
    """CPU seconds per part (own time, built-ins given to their callers) and the total."""
    stats: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    parts: dict[str, float] = defaultdict(float)

    def caller_part(function: Any, depth: int = 0) -> str:
        filename, _, name = function
        part = part_of(filename, name)
        if part is not None or depth > 3:
            return part or OTHER
        callers = stats.get(function, (0, 0, 0, 0, {}))[4]
        if not callers:
            return OTHER
        # The caller that spent most time calling it.
        best = max(
            callers.items(), key=lambda item: item[1][2] if isinstance(item[1], tuple) else 0
        )
        return caller_part(best[0], depth + 1)

    for function, (_, _, own, _, callers) in stats.items():
        filename, _, name = function
        part = part_of(filename, name)
        if part is not None:
            parts[part] += own
            continue
        # A built-in: its time goes to its callers' parts, in proportion to their calls' time.
        shares = {
            caller: (timing[2] if isinstance(timing, tuple) else 0.0)
            for caller, timing in callers.items()
        }
        whole = sum(shares.values())
        if not whole:
            parts[OTHER] += own
            continue
        for caller, share in shares.items():
            parts[caller_part(caller)] += own * share / whole
    return dict(parts), sum(parts.values())


def top_functions(path: str, count: int = 25) -> list[str]:
    """The functions with the most own time, one line each (seconds, calls, where)."""
    stats: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    ordered = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:count]
    return [
        f"{own:8.3f} s {calls:>9} calls  {filename.split('site-packages/')[-1]}:{line} {name}"
        for (filename, line, name), (_, calls, own, _, _) in ordered
    ]


def _exit(*_: Any) -> None:
    raise SystemExit(0)


def serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="serve an app under cProfile (one worker)")
    parser.add_argument("out")
    parser.add_argument("app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--app-dir", default="")
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--no-proxy-headers", action="store_true")
    args = parser.parse_args(argv)
    if args.app_dir:
        sys.path.insert(0, args.app_dir)
    import uvicorn

    profilers: list[cProfile.Profile] = []
    started = threading.Event()

    def profile_this_thread() -> None:
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()  # replaces any profile function, for the calling thread only

    def waiting(*_: Any) -> None:
        # Every thread's profile function until SIGUSR1 (warm-up is slower for it); then, at
        # the thread's next event, its own profiler takes over.
        if started.is_set():
            profile_this_thread()

    def start(*_: Any) -> None:
        # SIGUSR1, once the server is warm: start-up (imports, routes built on first use) is
        # not a request's cost.
        if not started.is_set():
            started.set()
            profile_this_thread()  # the main thread (the event loop's)

    threading.setprofile(waiting)
    # uvicorn shuts down gracefully, then raises the signal again under the handler it found:
    # this one, so that the profile is still written.
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
    signal.signal(signal.SIGUSR1, start)
    try:
        uvicorn.run(
            args.app,
            factory=args.factory,
            host="127.0.0.1",
            port=args.port,
            workers=1,
            access_log=args.access_log,
            log_level="warning",
            proxy_headers=not args.no_proxy_headers,
        )
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        if profilers:
            profilers[0].disable()
            merged = pstats.Stats(profilers[0])
            for profiler in profilers[1:]:
                with contextlib.suppress(TypeError):  # a thread that never ran any code
                    merged.add(profiler)
            merged.dump_stats(args.out)


if __name__ == "__main__":
    serve(sys.argv[1:])
