#!/usr/bin/env python3
"""Check the package's shape: module size, function size and import cycles (stdlib only).

    python scripts/check_structure.py [--root REPO] [--package medimg]
                                      [--max-module-lines 600] [--max-function-lines 80]

Prints one line per problem and exits 1; prints a one-line summary and exits 0 when clean:

    medimg/io/dicom.py:1  module is 2017 lines (max 600)
    medimg/io/dicom.py:812  function '_plan_geometry' is 152 lines (max 80)
    medimg/config/build.py:9  import cycle: medimg.config.build -> medimg.config.loader -> medimg.config.build

What counts:

- A module's length is its number of lines.
- A function's length is the full span of its ``def`` (first line of the ``def`` to its
  last line, docstring and comments included). Methods are named ``Class.method``, nested
  functions ``outer.inner``; a nested function counts in its parent's span too.
- Imports are every ``import`` / ``from ... import`` anywhere in a module, inside functions
  included, relative ones resolved, plus ``importlib.import_module("literal")``; a module
  that calls ``import_module`` with a computed name (a lookup table of module names)
  imports every package module whose dotted name it spells out as a string. A package's
  module-level ``__getattr__`` (PEP 562 lazy exports) imports nothing until an attribute
  is used, and is left out. An import
  under ``if TYPE_CHECKING:`` never runs, so it cannot form a cycle and is left out.
  ``from pkg import name`` is an import of ``pkg.name`` when that is a module, else of
  ``pkg``; the parent packages that Python initialises on the way are not counted (every
  package ``__init__`` that imports its own submodules would otherwise be a cycle).
- An import cycle is reported once per strongly connected group of modules, as one
  concrete cycle through it, at the line of its first import.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Problem:
    """One finding: ``kind`` is ``module``, ``function``, ``cycle`` or ``syntax``.

    ``key`` names it stably across edits (no line numbers), for allow-lists: the module
    path, ``path::qualified.name`` for a function, ``cycle: a, b, ...`` (sorted) for a cycle.
    """

    path: str
    line: int
    kind: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}  {self.message}"


@dataclass(frozen=True)
class Module:
    name: str  # dotted: medimg.engine.trainer (a package's __init__: medimg.engine)
    path: Path
    rel: str  # path as printed (relative to the root, forward slashes)
    is_package: bool
    tree: ast.Module | None
    lines: int


# -- reading the package ---------------------------------------------------------------------
def find_modules(package_dir: Path, root: Path) -> list[Module]:
    """Every ``.py`` file under ``package_dir`` (hidden folders and ``__pycache__`` skipped)."""
    base = package_dir.parent
    modules = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        if any(p.startswith(".") or p == "__pycache__" for p in parts):
            continue
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree: ast.Module | None = ast.parse(text, filename=str(path))
        except SyntaxError:
            tree = None
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        modules.append(Module(name, path, rel, is_package, tree, len(text.splitlines())))
    return modules


# -- sizes -----------------------------------------------------------------------------------
def long_module(module: Module, max_lines: int) -> list[Problem]:
    if module.lines <= max_lines:
        return []
    msg = f"module is {module.lines} lines (max {max_lines})"
    return [Problem(module.rel, 1, "module", module.rel, msg)]


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, def) of every function under ``node``, nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{child.name}"
            yield name, child
            yield from _functions(child, name + ".")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def long_functions(module: Module, max_lines: int) -> list[Problem]:
    out = []
    for name, fn in _functions(module.tree) if module.tree else ():
        span = (fn.end_lineno or fn.lineno) - fn.lineno + 1
        if span > max_lines:
            msg = f"function '{name}' is {span} lines (max {max_lines})"
            out.append(Problem(module.rel, fn.lineno, "function", f"{module.rel}::{name}", msg))
    return out


# -- imports ---------------------------------------------------------------------------------
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Import statements and ``import_module("...")`` calls under ``node``, anywhere,
    except in the body of ``if TYPE_CHECKING:``."""
    children = _outside_lazy_getattr(node) if isinstance(node, ast.Module) else ast.iter_child_nodes(node)
    for child in children:
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_of(other)
            continue
        yield from _import_nodes_of(child)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.AST]:
    if isinstance(node, (ast.Import, ast.ImportFrom)) or (
        isinstance(node, ast.Call) and _dynamic_target(node) is not None
    ):
        yield node
    yield from _import_nodes(node)


def _is_dynamic_import(call: ast.Call) -> bool:
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return name in ("import_module", "__import__") and bool(call.args)


def _dynamic_target(call: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")`` / ``__import__("x")``."""
    if not _is_dynamic_import(call):
        return None
    arg = call.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def _imports_by_table(tree: ast.Module, known: set[str]) -> Iterator[tuple[str, int]]:
    """A module that imports by a computed name (``import_module(table[key])``) imports
    every package module whose exact dotted name appears in it as a string."""
    nodes = [n for top in _outside_lazy_getattr(tree) for n in ast.walk(top)]
    if not any(isinstance(n, ast.Call) and _is_dynamic_import(n) and _dynamic_target(n) is None for n in nodes):
        return
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            yield node.value, node.lineno


def _outside_lazy_getattr(tree: ast.Module) -> list[ast.stmt]:
    """The module's statements but a module-level ``def __getattr__`` (PEP 562): a package
    facade that loads its submodules on first attribute access imports nothing itself."""
    return [s for s in tree.body if not (isinstance(s, ast.FunctionDef) and s.name == "__getattr__")]


def _resolve_from(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from."""
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]  # a plain module's relative imports start from its package
    parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*parts, node.module] if node.module else parts)


def _known(name: str, known: set[str]) -> str | None:
    """``name`` or its nearest ancestor that is a module of the package."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: Module, known: set[str]) -> list[tuple[str, int]]:
    """(imported package module, line) for every import of ``module`` that runs."""
    out: list[tuple[str, int]] = []
    for node in _import_nodes(module.tree) if module.tree else ():
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            targets = [_dynamic_target(node) or ""]
        for t in targets:
            hit = _known(t, known)
            if hit is not None and hit != module.name:
                out.append((hit, node.lineno))
    if module.tree is not None:
        out += [(t, line) for t, line in _imports_by_table(module.tree, known) if t != module.name]
    return out


# -- cycles ----------------------------------------------------------------------------------
def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def _cycle_through(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """A shortest cycle from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    parent: dict[str, str] = {}
    queue = [start]
    for node in queue:  # breadth-first; the queue grows while we walk it
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt in members and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return [*group, start]  # not reached: a strongly connected group always has a cycle


def import_cycles(modules: list[Module]) -> list[Problem]:
    known = {m.name for m in modules}
    by_name = {m.name: m for m in modules}
    graph: dict[str, dict[str, int]] = {m.name: {} for m in modules}
    for m in modules:
        for target, line in imports_of(m, known):
            graph[m.name].setdefault(target, line)
    out = []
    for group in strongly_connected(graph):
        cycle = _cycle_through(graph, group)
        first = by_name[cycle[0]]
        others = [g for g in group if g not in cycle]
        more = f" (and in the same tangle: {', '.join(others)})" if others else ""
        msg = "import cycle: " + " -> ".join(cycle) + more
        out.append(Problem(first.rel, graph[cycle[0]][cycle[1]], "cycle", "cycle: " + ", ".join(group), msg))
    return out


# -- the whole check -------------------------------------------------------------------------
def check(
    package_dir: Path,
    root: Path | None = None,
    max_module_lines: int = MAX_MODULE_LINES,
    max_function_lines: int = MAX_FUNCTION_LINES,
) -> list[Problem]:
    """Every problem in the package at ``package_dir`` (paths printed relative to ``root``,
    default: its parent), in path order, cycles last."""
    package_dir = Path(package_dir).resolve()
    root = Path(root).resolve() if root is not None else package_dir.parent
    modules = find_modules(package_dir, root)
    problems: list[Problem] = []
    for m in modules:
        if m.tree is None:
            problems.append(Problem(m.rel, 1, "syntax", f"{m.rel}::<syntax>", "cannot parse this module"))
        problems += long_module(m, max_module_lines)
        problems += long_functions(m, max_function_lines)
    return problems + import_cycles(modules)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent, help="repository root")
    p.add_argument("--package", default="medimg", help="package folder under the root")
    p.add_argument("--max-module-lines", type=int, default=MAX_MODULE_LINES)
    p.add_argument("--max-function-lines", type=int, default=MAX_FUNCTION_LINES)
    a = p.parse_args(argv)
    package_dir = a.root / a.package
    if not package_dir.is_dir():
        print(f"no package folder {package_dir}; pass --root REPO and --package NAME", file=sys.stderr)
        return 2
    problems = check(package_dir, a.root, a.max_module_lines, a.max_function_lines)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} structure problem(s) in {a.package}/", file=sys.stderr)
        return 1
    print(f"{a.package}/: no module over {a.max_module_lines} lines, no function over "
          f"{a.max_function_lines}, no import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
