"""The library's import graph, read from the source with ``ast`` (nothing is imported): no cycle between
scsynth_core modules, no private name used across a module wall, no Snakemake in library code.

A cycle counts every import of a module, also those deferred into a function (a lazy import hides a cycle from
Python, not from a reader); imports under ``if TYPE_CHECKING:`` never run and are left out. A private name
(``_x``, not ``__x__``) belongs to its module; a private module (``pkg/_m.py``) to the modules of its own package.
"""

from __future__ import annotations

import ast
import functools
import itertools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scsynth_core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), filename=str(p))) for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node that can run: the tree without the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


@functools.cache
def _scan(module: str) -> tuple[list, list]:
    """One walk over a module: its runtime imports ``(target module, imported name or None, line, local
    binding)`` and its attribute accesses of private names ``(line, the object's source, attribute)``."""
    path, tree = MODULES[module]
    imports, attributes = [], []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports.append((alias.name, None, node.lineno, alias.asname or alias.name.partition(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node)
            for alias in node.names:
                imports.append((base, alias.name, node.lineno, alias.asname or alias.name))
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            attributes.append((node.lineno, ast.unparse(node.value), node.attr))
    return imports, attributes


def _imports(module: str) -> list:
    return _scan(module)[0]


def _owner(name: str) -> str | None:
    """The scsynth_core module that defines ``name`` (a dotted module or module.attribute), if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _edges(module: str) -> dict[str, int]:
    """scsynth_core modules this module imports, with the first line that does."""
    out: dict[str, int] = {}
    for base, name, line, _ in _imports(module):
        target = _owner(f"{base}.{name}" if name and name != "*" else base)
        if target and target != module:
            out.setdefault(target, line)
    return out


def _find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def _private_uses(module: str) -> list[str]:
    """``file:line: name`` for each private name of another scsynth_core module that ``module`` uses."""
    path = MODULES[module][0]
    where = path.relative_to(PACKAGE.parent)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found, bound = [], {}
    for base, name, line, local in _imports(module):
        full = f"{base}.{name}" if name and name != "*" else base
        target = _owner(full)
        if target is None or target == module:
            continue
        if full in MODULES:  # a module bound to a local name, whose attributes are checked below
            bound[local] = full if name or local != full.partition(".")[0] else local  # `import a.b` binds `a`
        parts = target.split(".")
        if name and _private(name) and full not in MODULES:
            found.append(f"{where}:{line}: {full}")
        elif any(_private(part) and ".".join(parts[:i]) != package for i, part in enumerate(parts)):
            found.append(f"{where}:{line}: {target} (a private module of another package)")
    for line, chain, attr in _scan(module)[1]:
        head, _, rest = chain.partition(".")
        target = bound.get(head)
        if target and (owner := _owner(f"{target}.{rest}" if rest else target)) and owner != module:
            found.append(f"{where}:{line}: {owner}.{attr} (as {chain}.{attr})")
    return list(dict.fromkeys(found))  # `from x import _a, _b` of a private module: one line


def test_import_graph_has_no_cycle():
    graph = {module: _edges(module) for module in MODULES}
    cycle = _find_cycle(graph)
    assert cycle is None, (
        "import cycle: "
        + " -> ".join(
            f"{a} ({MODULES[a][0].relative_to(PACKAGE.parent)}:{graph[a][b]})" for a, b in itertools.pairwise(cycle)
        )
        + f" -> {cycle[-1]}"
    )


def test_no_private_name_crosses_a_module():
    found = [use for module in MODULES for use in _private_uses(module)]
    assert not found, "private names used outside their module:\n" + "\n".join(found)


def test_library_never_imports_snakemake():
    found = [
        f"{MODULES[module][0].relative_to(PACKAGE.parent)}:{line}"
        for module in MODULES
        for base, _, line, _ in _imports(module)
        if base == "snakemake" or base.startswith("snakemake.")
    ]
    assert not found, "library code imports snakemake (rules call a thin script instead): " + ", ".join(found)


FAKE = """
from typing import TYPE_CHECKING

import scsynth_core.steps
import scsynth_core.steps as s
from scsynth_core import steps
from scsynth_core.errors import DataError
from scsynth_core.plots import _style

if TYPE_CHECKING:
    from scsynth_core.errors import _Hidden

def f():
    from snakemake.io import Namedlist
    from scsynth_core.plots._style import REAL_COLOR
    return steps._a, s._b, scsynth_core.steps._c, steps.__doc__, DataError, _style, REAL_COLOR
"""


def test_the_scan_sees_what_it_must(monkeypatch):
    """The checks above would pass on a parser that found nothing: a made-up module's every private use is found,
    and nothing else."""
    monkeypatch.setitem(MODULES, "scsynth_core.data.fake", (PACKAGE / "data" / "fake.py", ast.parse(FAKE)))
    assert sorted(_private_uses("scsynth_core.data.fake")) == [
        "scsynth_core/data/fake.py:15: scsynth_core.plots._style (a private module of another package)",
        "scsynth_core/data/fake.py:16: scsynth_core.steps._a (as steps._a)",
        "scsynth_core/data/fake.py:16: scsynth_core.steps._b (as s._b)",
        "scsynth_core/data/fake.py:16: scsynth_core.steps._c (as scsynth_core.steps._c)",
        "scsynth_core/data/fake.py:8: scsynth_core.plots._style (a private module of another package)",
    ]
    assert set(_edges("scsynth_core.data.fake")) == {
        "scsynth_core.steps",
        "scsynth_core.errors",
        "scsynth_core.plots._style",
    }
    assert [base for base, *_ in _imports("scsynth_core.data.fake") if base.startswith("snakemake")] == ["snakemake.io"]
    assert _find_cycle({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b": 1}, "b": {}}) is None
    assert len(MODULES) > 50 and "scsynth_core.models.base" in MODULES
