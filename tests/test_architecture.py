"""The folder tree is the architecture: layers import only downward, no import cycles, few loose modules.

Layers, lowest first (docs/architecture.md explains each): the core modules (types, errors, registry,
fileio, config); tasks and training infrastructure; models; sampling; evaluate; judges; the training
stages (pretrain, rl) and test-time search; reports; experiments; the CLI. Every `import` in a module counts, including
imports inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

import reasonlab

PACKAGE = Path(reasonlab.__file__).parent
CORE = {"types", "errors", "registry", "fileio", "config"}
LAYERS = {
    **dict.fromkeys(CORE, 0),
    "tasks": 1,
    "training": 1,
    "distributed": 1,
    "models": 2,
    "sampling": 3,
    "evaluate": 4,
    "judges": 5,
    "pretrain": 6,
    "rl": 6,
    "search": 6,
    "reports": 7,
    "labeling": 7,
    "experiments": 8,
    "cli": 9,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The reasonlab modules a file imports (`from pkg import submodule` counts as the submodule)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("reasonlab")}
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reasonlab")
        ):
            out.add(node.module)
            out |= {
                f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known
            }
    return out & known


def layer(module: str) -> int | None:
    parts = module.split(".")
    return (
        LAYERS.get(parts[1]) if len(parts) > 1 else None
    )  # the package root (public API) is above all


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in modules() if m != "reasonlab" and layer(m) is None]
    assert not unplaced, f"modules outside the layers of docs/architecture.md: {unplaced}"


def test_at_most_five_loose_modules():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= 5, loose
    assert {Path(n).stem for n in loose} <= CORE


def test_imports_point_down_the_layers():
    known = set(modules())
    upward = []
    for name, path in modules().items():
        if name == "reasonlab":
            continue
        for target in imports(path, known):
            if target != "reasonlab" and layer(target) > layer(name):
                upward.append(
                    f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
                )
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    known = set(modules())
    graph = {name: imports(path, known) - {name} for name, path in modules().items()}
    for name in (
        graph
    ):  # a submodule's import of its own package's __init__ is how packages work, not a cycle
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
