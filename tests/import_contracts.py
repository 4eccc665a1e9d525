"""Reads the project's import graph from source (no module is imported) for tests/test_contracts.py.

Every `import` statement counts wherever it is written: at the top of a module, deferred inside a
function, or in a try/except. Only imports guarded by `if TYPE_CHECKING:` are left out, since they
never run. An import of a package's submodule (`from cognitive.services import runs`) is an edge
to the submodule; the package's `__init__` is not counted as imported, as import-linter does.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Import:
    importer: str  # the module holding the statement
    imported: str  # the full dotted name: a project module or an external one
    line: int  # 0: not a statement, `imported` is the package whose __init__ runs first

    def __str__(self) -> str:
        if self.line == 0:
            return f"{self.importer} runs its package's {self.imported}/__init__.py"
        return f"{self.importer}:{self.line} imports {self.imported}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from (stmt for child in node.orelse for stmt in _statements_of(child))
            continue
        yield from _statements_of(node)


def _statements_of(node: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _statements(node)


def _absolute(module: str, is_package: bool, stmt: ast.ImportFrom) -> str:
    if not stmt.level:
        return stmt.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (stmt.level - 1)]
    return ".".join([*base, stmt.module] if stmt.module else base)


def imports_of(module: str, source: str, project: Mapping[str, str], is_package: bool = False) -> list[Import]:
    """The imports written in `source`; `from a import b` names `a.b` when that is a project module."""
    found = []
    for stmt in _statements(ast.parse(source)):
        if isinstance(stmt, ast.Import):
            found.extend(Import(module, alias.name, stmt.lineno) for alias in stmt.names)
            continue
        target = _absolute(module, is_package, stmt)
        for alias in stmt.names:
            submodule = f"{target}.{alias.name}"
            found.append(Import(module, submodule if submodule in project else target, stmt.lineno))
    return found


class ImportGraph:
    def __init__(self, sources: Mapping[str, str], packages: Iterable[str] = ()) -> None:
        """`sources` maps module names to their text; `packages` names those that are packages (`__init__`)."""
        self.modules = set(sources)
        packages = set(packages)
        self.imports = {
            name: imports_of(name, text, sources, is_package=name in packages) for name, text in sources.items()
        }

    @classmethod
    def of_project(cls, top_levels: Iterable[str], root: Path = ROOT) -> ImportGraph:
        sources: dict[str, str] = {}
        packages: set[str] = set()
        for top in top_levels:
            for path in sorted((root / top).rglob("*.py")):
                name = module_name(path, root)
                sources[name] = path.read_text(encoding="utf-8")
                if path.name == "__init__.py":
                    packages.add(name)
        return cls(sources, packages)

    def project_edges(self, module: str) -> list[Import]:
        """The imports of `module` that land on another project module (the nearest enclosing one), once each."""
        edges: dict[Import, None] = {}
        for imp in self.imports.get(module, []):
            target = self.project_module(imp.imported)
            if target is not None and target != module:
                edges[Import(imp.importer, target, imp.line)] = None
        return list(edges)

    def project_module(self, name: str) -> str | None:
        parts = name.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in self.modules:
                return candidate
            parts.pop()
        return None


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def forbidden_chains(graph: ImportGraph, sources: Iterable[str], forbidden: Iterable[str]) -> list[list[Import]]:
    """For each forbidden import reachable from the `sources` modules, one chain of imports leading to it.

    Reachable means through project modules, so `engine → helper → django` counts as well as
    `engine → django`; a package's `__init__` runs whenever one of its modules is imported, so the
    `__init__` of every package on the way is followed too.
    """
    forbidden = tuple(forbidden)
    start = sorted(m for m in graph.modules if any(_within(m, s) for s in sources))
    path_to: dict[str, list[Import]] = {m: [] for m in start}
    queue = list(start)
    chains: list[list[Import]] = []
    reported: set[tuple[str, str]] = set()
    while queue:
        module = queue.pop(0)
        for imp in graph.imports.get(module, []):
            if any(_within(imp.imported, f) for f in forbidden):
                key = (module, imp.imported)
                if key not in reported:
                    reported.add(key)
                    chains.append([*path_to[module], imp])
        following = graph.project_edges(module)
        following += [Import(module, parent, 0) for parent in _parents(module) if parent in graph.modules]
        for imp in following:
            # A forbidden project module is reported where it is imported, not explored.
            if imp.imported not in path_to and not any(_within(imp.imported, f) for f in forbidden):
                path_to[imp.imported] = [*path_to[module], imp]
                queue.append(imp.imported)
    return chains


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def direct_imports_of(graph: ImportGraph, target: str, *, outside: Iterable[str] = ()) -> list[Import]:
    """Every import of `target` (or its submodules) written in a module not under one of `outside`."""
    outside = tuple(outside)
    return [
        imp
        for module in sorted(graph.modules)
        if not any(_within(module, o) for o in outside)
        for imp in graph.imports[module]
        if _within(imp.imported, target)
    ]


def import_cycles(graph: ImportGraph) -> list[list[str]]:
    """The strongly connected components with more than one module (each holds at least one cycle)."""
    edges = {m: sorted({imp.imported for imp in graph.project_edges(m)}) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    for root in sorted(graph.modules):
        if root in index:
            continue
        # Tarjan's algorithm, iteratively: the graph is deep enough to matter for Python's recursion limit.
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = edges[node]
            if position < len(successors):
                work.append((node, position + 1))
                successor = successors[position]
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(components)


def shortest_cycle(graph: ImportGraph, component: list[str]) -> list[Import]:
    """One shortest cycle through the component's first module, as the imports that make it."""
    members = set(component)
    start = component[0]
    came_by: dict[str, Import] = {}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imp in graph.project_edges(module):
            if imp.imported not in members:
                continue
            if imp.imported == start:
                cycle = [imp]
                while cycle[0].importer != start:
                    cycle.insert(0, came_by[cycle[0].importer])
                return cycle
            if imp.imported not in came_by:
                came_by[imp.imported] = imp
                queue.append(imp.imported)
    raise AssertionError(f"{start} is on no cycle within {component}")


def describe_cycles(graph: ImportGraph, components: list[list[str]]) -> str:
    lines = []
    for component in components:
        lines.append(f"cycle among {len(component)} modules: {', '.join(component)}")
        lines.append("  for example:")
        lines.extend(f"    {imp}" for imp in shortest_cycle(graph, component))
        members = set(component)
        inner = [imp for m in component for imp in graph.project_edges(m) if imp.imported in members]
        lines.append("  every import inside it:")
        lines.extend(f"    {imp}" for imp in inner)
    return "\n".join(lines)
