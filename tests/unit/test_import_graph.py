"""The import graph of src/mutualaid has no cycles: between modules, and between packages.

Every import counts, function-local ones included (a local import only hides a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import mutualaid

ROOT = Path(mutualaid.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["mutualaid", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path for path in ROOT.rglob("*.py") if "migrations" not in path.parts
    }


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lives in: itself, or the nearest enclosing module."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved and resolved.startswith("mutualaid") and resolved != module:
                found.add(resolved)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = _imports(module, path, modules)
        # A package's __init__ is part of any import of its submodules; importing a submodule
        # of one's own package is not a cycle with that package's __init__.
        graph[module] = {edge for edge in edges if not module.startswith(edge + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph, as the list of nodes around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _collapse(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The graph between packages: each module named by its first `depth` dotted parts."""

    def group(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    packages: dict[str, set[str]] = {}
    for module, edges in graph.items():
        packages.setdefault(group(module), set()).update(
            group(edge) for edge in edges if group(edge) != group(module)
        )
    return packages


def test_no_cycle_between_modules() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_cycle_between_top_level_packages() -> None:
    """api, web, cli, services, domain, db ... import one another in one direction only."""
    cycle = _cycle(_collapse(_graph(), 2))
    assert cycle is None, "package cycle: " + " -> ".join(cycle or [])


def test_no_cycle_between_service_packages() -> None:
    services = {
        module: edges
        for module, edges in _collapse(_graph(), 3).items()
        if module.startswith("mutualaid.services.")
    }
    cycle = _cycle(services)
    assert cycle is None, "service package cycle: " + " -> ".join(cycle or [])


def test_the_walk_sees_local_imports() -> None:
    """The graph is not empty and includes imports made inside functions."""
    graph = _graph()
    assert "mutualaid.services.context" in graph["mutualaid.services.accounts.accounts"]


#: Packages whose modules import only at the top: a function-local import there would hide a
#: cycle from a reader (the walk above still sees it). Extend as packages are put in order.
TOP_LEVEL_IMPORTS_ONLY = (
    "mutualaid.services.collections",
    "mutualaid.services.ledger",
    "mutualaid.services.risk",
    "mutualaid.domain.ledger",
    "mutualaid.domain.risk",
    "mutualaid.domain.risk_scores",
    "mutualaid.db.queries.collections",
)


def _local_imports_of_our_modules(path: Path) -> list[str]:
    """`module:line` of each import of a mutualaid module made inside a function."""
    found = []
    for function in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if not node.level else ["mutualaid"]
            else:
                continue
            if any(name.split(".")[0] == "mutualaid" for name in names):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_packages_in_order_import_nothing_inside_functions() -> None:
    modules = _modules()
    local = [
        hit
        for module, path in sorted(modules.items())
        if any(module == p or module.startswith(p + ".") for p in TOP_LEVEL_IMPORTS_ONLY)
        for hit in _local_imports_of_our_modules(path)
    ]
    assert local == []
