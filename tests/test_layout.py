"""The package reads as wings with one-way imports (svdd/__init__.py names them), and no module
imports itself back through another (no cycles, lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import svdd

PACKAGE = Path(svdd.__file__).resolve().parent
BASE = {"batched", "result", "rewards", "rng"}
# what each part may import (besides itself); "base" is the shared base above
ALLOWED = {
    "base": {"base"},
    "processes": {"base"},
    "sampling": {"base", "processes"},
    "api": {"base", "processes", "sampling"},
    "masked": {"processes"},
    "diffusers": {"base", "processes", "sampling", "api"},
    "runs": {"base", "processes", "sampling", "api"},
    "__init__": {"base", "processes", "sampling", "api", "masked"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """svdd.sampling.calls -> "sampling"; svdd.rng -> "base"; svdd.api -> "api"."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    head = parts[1]
    if head == "domains":
        return "domains"
    return "base" if head in BASE else head


def svdd_imports(path: Path) -> set[str]:
    """Every svdd module `path` imports, at any depth of its code."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
            found.update(n for n in names if n.startswith("svdd") and _is_module(n))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("svdd") and _is_module(a.name))
    found.discard(here)
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def core_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "domains" not in p.relative_to(PACKAGE).parts}


def test_each_wing_imports_only_the_wings_below_it():
    wrong = []
    for name, path in core_modules().items():
        part = part_of(name)
        for target in svdd_imports(path):
            other = part_of(target)
            if other != part and other not in ALLOWED[part] and target != "svdd":
                wrong.append(f"{name} ({part}) imports {target} ({other})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = {name: {t for t in svdd_imports(path) if t in core_modules()} for name, path in core_modules().items()}
    # a package's __init__ re-exporting its modules is not a cycle with them
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_the_top_level_stays_small_and_every_wing_says_what_it_holds():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    for wing in ("sampling", "processes", "diffusers", "runs"):
        doc = ast.get_docstring(ast.parse((PACKAGE / wing / "__init__.py").read_text())) or ""
        assert "Imports" in doc or "import" in doc, f"svdd/{wing}/__init__.py does not say what it may import"
