"""The SDK's modules import each other without a cycle.

Every ``import`` of the package's own modules counts, those inside functions too (a lazy import
hides a cycle from Python, not from a reader): the graph must sort topologically. Each module
is then imported alone, in that order, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

import wafermon_sdk

PACKAGE = Path(wafermon_sdk.__file__).parent


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(source: str, module: str, package: str, modules: set[str]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in ``source`` (not under
    ``if TYPE_CHECKING``). ``from . import x`` names module ``x`` when there is one."""
    found: set[str] = set()
    is_package = module == package
    todo: list[ast.AST] = [ast.parse(source)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base_parts = parts if is_package else parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:  # a submodule by that name, else a name of ``base``
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {name for name in found if name in modules and name != module}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for every .py file under ``root``."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = (
            ".".join((package, *parts[:-1]))
            if parts[-1] == "__init__"
            else ".".join((package, *parts))
        )
        files[name] = path
    modules = set(files)
    return {
        name: imports_of(path.read_text(encoding="utf-8"), name, package, modules)
        for name, path in files.items()
    }


def test_the_sdk_import_graph_has_no_cycle():
    graph = import_graph(PACKAGE, "wafermon_sdk")
    assert {"wafermon_sdk.client", "wafermon_sdk.monitored"} <= set(graph)
    assert "wafermon_sdk.client" in graph["wafermon_sdk.monitored"] or (
        "wafermon_sdk.monitored" in graph["wafermon_sdk.client"]
    ), "the graph misses the edge between client and monitored: the parser is broken"
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle in wafermon_sdk: {' -> '.join(exc.args[1])}")
    # Each module alone, dependencies first, in a fresh interpreter: none needs a later one.
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-c", script, *order], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_the_check_sees_a_cycle_through_a_lazy_import(tmp_path):
    """The check itself: a back edge inside a function (the old Client.monitored) is a cycle."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .client import Client\n")
    (pkg / "client.py").write_text(
        "class Client:\n    def monitored(self):\n        from .monitored import Monitored\n"
        "        return Monitored(self)\n"
    )
    (pkg / "monitored.py").write_text("from .client import Client\n\nclass Monitored: ...\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.client"] == {"pkg.monitored"}
    assert graph["pkg.monitored"] == {"pkg.client"}
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(graph).static_order())
