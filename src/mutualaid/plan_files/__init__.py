"""Plan files shipped with mutualaid: the demo plans (example rules, not advice)."""

from __future__ import annotations

from importlib.resources import files

DEMO_PLAN_FILES = ("xhb-main.toml", "xhb-elderly-cancer.toml")


def read_plan_file(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")
