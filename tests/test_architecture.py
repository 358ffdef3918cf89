"""The package's shape: no import cycle between its modules, and no module over 500 lines.

The import graph is read from the source with `ast` (nothing is imported), so the test also sees imports made
inside functions, which hide a cycle from Python until the day the deferred import moves to the top of its file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "hf_vqvae"
PACKAGE = PACKAGE_DIR.name
MAX_LINES = 500


def module_name(path: Path) -> str:
    """`src/hf_vqvae/evaluation/stats.py` -> `hf_vqvae.evaluation.stats`; a package's `__init__.py` is the package."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of the package that `name` (at `path`) imports, anywhere in its file, absolute or relative."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from .x import y` in a.b.c resolves against a.b; in the package a.b's __init__, against a.b.
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # `from . import stats` imports the submodule; `from .stats import Stats` the module stats.
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in modules else source)
    return {target for target in targets if target in modules and target != name}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    names = set(modules)
    return {name: imported_modules(name, path, names) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as `[a, b, ..., a]`, or None if it is acyclic (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    return None


def test_the_import_graph_is_read_from_the_source():
    # The parser must see the edges it is meant to judge, relative imports and imports inside functions included;
    # otherwise an empty graph would pass the cycle test below.
    graph = import_graph()
    assert f"{PACKAGE}.quantizer" in graph[f"{PACKAGE}.modeling_vq_hierarchy"]  # from .quantizer import ...
    assert f"{PACKAGE}.configuration_vqvae" in graph[PACKAGE]  # a package __init__: from .configuration_vqvae ...
    cards = graph[f"{PACKAGE}.hub.cards"]
    assert f"{PACKAGE}.evaluation.model_index" in cards  # from ..evaluation.model_index import ...
    assert PACKAGE in cards  # `from .. import __version__`, inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_no_module_is_over_500_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE_DIR.parent)} has {lines} lines (at most {MAX_LINES})"
