"""Finding one's way: help for every command group, and the version."""

from __future__ import annotations

import pytest
import typer
from tests.cli.cli import mutualaid

from mutualaid import __version__
from mutualaid.cli.app import app

GROUPS = {
    "db": ["upgrade", "current"],
    "plans": ["check", "publish", "list", "show"],
    "members": ["import", "list", "advance"],
    "accounts": ["create"],
}


def test_the_root_help_lists_every_command_and_group() -> None:
    result = mutualaid("--help")

    assert result.exit_code == 0, result.output
    assert "Usage: mutualaid" in result.stdout
    for name in ["serve", "demo", *GROUPS, "claims", "jobs", "log", "witness", "verify"]:
        assert f" {name} " in result.stdout, name


@pytest.mark.parametrize(("group", "commands"), GROUPS.items())
def test_each_groups_help_lists_its_commands(group: str, commands: list[str]) -> None:
    result = mutualaid(group, "--help")

    assert result.exit_code == 0, result.output
    for command in commands:
        assert f" {command} " in result.stdout, command


@pytest.mark.parametrize("group", ["claims", "jobs", "log", "witness", "verify"])
def test_the_other_groups_help_lists_their_commands(group: str) -> None:
    registered = typer.main.get_group(app).commands[group]
    names = list(registered.commands)  # type: ignore[attr-defined]
    assert names

    result = mutualaid(group, "--help")

    assert result.exit_code == 0, result.output
    for name in names:
        assert f" {name} " in result.stdout, name


def test_version_prints_the_package_version() -> None:
    result = mutualaid("--version")

    assert result.exit_code == 0
    assert result.stdout.strip() == f"mutualaid {__version__}"
