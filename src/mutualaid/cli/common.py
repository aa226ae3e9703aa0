"""What every command shares: settings, the service context, and how errors are shown."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from mutualaid.domain.errors import DomainError
from mutualaid.services.context import ServiceContext, build_context
from mutualaid.settings import InsecureSettings, Settings

P = ParamSpec("P")
R = TypeVar("R")

# soft_wrap: long lines (paths, keys) stay whole when output goes to a pipe or a file.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_REFUSED = 2
EXIT_NOT_FOUND = 3


def load_settings() -> Settings:
    try:
        return Settings()
    except (InsecureSettings, ValidationError) as error:
        message = str(error)
        if isinstance(error, ValidationError):
            message = "; ".join(
                f"MUTUALAID_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
        err_console.print(f"[red]error:[/red] {message}")
        raise typer.Exit(EXIT_REFUSED) from None


_open_contexts: list[ServiceContext] = []


def context() -> ServiceContext:
    """The service context for this command; its connections close when the command ends."""
    ctx = build_context(load_settings())
    _open_contexts.append(ctx)
    return ctx


def _close_contexts() -> None:
    while _open_contexts:
        _open_contexts.pop().engine.dispose()


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a refusal into one clear line on stderr and a non-zero exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DomainError as error:
            where = f" ({error.field})" if error.field else ""
            err_console.print(f"[red]error:[/red] {error.code}{where}: {error.message}")
            for problem in error.details.get("problems", [])[1:]:
                err_console.print(f"  also {problem['field']}: {problem['message']}")
            raise typer.Exit(EXIT_NOT_FOUND if error.status == 404 else EXIT_REFUSED) from None
        except OSError as error:
            err_console.print(
                f"[red]error:[/red] {error.strerror or error}: {error.filename or ''}"
            )
            raise typer.Exit(EXIT_REFUSED) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if os.environ.get("MUTUALAID_DEBUG"):
                raise
            err_console.print(
                f"[red]internal error:[/red] {type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}"
            )
            err_console.print(
                "nothing was half-written (each step is one transaction); "
                "set MUTUALAID_DEBUG=1 for the full traceback"
            )
            raise typer.Exit(1) from None
        finally:
            _close_contexts()

    return wrapper


def print_json(data: object) -> None:
    console.print_json(data=data, default=str)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
