"""The package's import graph, read with ``ast`` (nothing is imported), and its layer rule.

docs/architecture.md draws the layers; :data:`LAYERS` is that drawing as data. A module's layer
is its folder's (a module at the top of the package is the pytest surface). An import counts
wherever it stands (module level or inside a function: a lazy import is still a dependency),
except under ``if TYPE_CHECKING:``, which never runs. A module that runs as a program (a
``__main__.py``, or one with an ``if __name__ == "__main__":`` block) is a surface of its own,
like the pytest surface, whatever folder holds it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "pytest_mlperf"

#: folder -> layer, lowest first; a lower layer never imports a higher one
LAYERS: dict[str, int] = {
    "core": 0,
    "data": 1, "accuracy": 1, "embedded": 1,
    "backends": 2, "loadgen": 2,
    "gate": 3, "submission": 3,
    "run": 4,
    "live": 5, "report": 5,
}
SURFACE = 6
#: folders of one layer that must not import each other (the direction is the rule's)
APART = {("backends", "loadgen"): "the SUT bridge in loadgen calls backends, not the other way round"}
LAYER_NAMES = {0: "core", 1: "data/accuracy/embedded", 2: "backends/loadgen",
               3: "gate/submission", 4: "run", 5: "live/report", SURFACE: "surface"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    sides = [node.test.left, *node.test.comparators]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def is_program(name: str, tree: ast.Module) -> bool:
    return name.endswith(".__main__") or any(_is_main_guard(n) for n in tree.body)


def _runtime_nodes(tree: ast.AST):
    """Every node, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports(name: str, path: Path, known: set[str]) -> list[Edge]:
    """The package modules ``name`` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    edges = []
    for node in _runtime_nodes(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_pkg:
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    edges.append(Edge(name, target, node.lineno))
    return edges


def layer(name: str, programs: set[str]) -> int:
    if name in programs:
        return SURFACE
    parts = name.split(".")
    if len(parts) < 3 and (len(parts) == 1 or parts[1] not in LAYERS):
        return SURFACE  # the package itself, or a module at its top: the pytest surface
    return LAYERS.get(parts[1], SURFACE)


def _folder(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else ""


def graph(root: Path) -> tuple[list[Edge], set[str]]:
    found = modules(root)
    known = set(found)
    edges: list[Edge] = []
    programs = set()
    for name, path in found.items():
        if is_program(name, ast.parse(path.read_text(encoding="utf-8"))):
            programs.add(name)
        edges += imports(name, path, known)
    return edges, programs


def upward(root: Path) -> list[str]:
    """``a:line imports b`` for every import of a higher layer."""
    edges, programs = graph(root)
    problems = []
    for e in sorted(set(edges), key=lambda e: (e.source, e.line, e.target)):
        src, dst = layer(e.source, programs), layer(e.target, programs)
        if dst > src:
            problems.append(f"{e.source}:{e.line} ({LAYER_NAMES[src]}) imports {e.target} "
                            f"({LAYER_NAMES[dst]}), a higher layer")
        why = APART.get((_folder(e.source), _folder(e.target)))
        if why:
            problems.append(f"{e.source}:{e.line} imports {e.target}: {why}")
    return problems


def cycles(root: Path) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    edges, _ = graph(root)
    succ: dict[str, set[str]] = {}
    for e in edges:
        succ.setdefault(e.source, set()).add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(modules(root)):
        if v not in index:
            visit(v)
    return found
