"""Plan files shipped with mutualaid: the demo plans (example rules, not advice)."""

from __future__ import annotations

from importlib.resources import files

DEMO_PLAN_FILES = ("xhb-main.toml", "xhb-elderly-cancer.toml")
#: Xiang Hu Bao's four plans at its close (issue 19): the demo plans and two more examples, each
#: its own pool, written in the plan file format alone.
EXAMPLE_PLAN_FILES = (*DEMO_PLAN_FILES, "xhb-chronic-cancer.toml", "xhb-transit-accident.toml")


def read_plan_file(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")
