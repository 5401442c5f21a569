"""The house rules of the code layout, checked on the source itself (stdlib ``ast``, no Django needed).

- No import circle among first-party modules, counting imports inside functions (they are circles
  too, only deferred); imports under ``if TYPE_CHECKING:`` are left out (they never run).
- Who may import whom (CONTRIBUTING.md): the project shell in ``inference_app`` never reads the domain
  (``tickets``), except the settings reading the stage table; ``retrieval`` and the model layer
  (``inference_app.llm``) know nothing of ``tickets``; the stage table imports no Django.
- No module over ~450 lines of code (docstrings, comments and blank lines not counted; migrations
  are generated and left out).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("inference_app", "retrieval", "tickets")
MAX_LINES_OF_CODE = 450


@cache
def modules() -> dict[str, Path]:
    """Every first-party module, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except those under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _resolve(name: str) -> str | None:
    """The first-party module an imported dotted name lives in (``a.b.c`` may be a module or a name in
    module ``a.b``); None for third-party names."""
    known = modules()
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def imports_of(module: str) -> frozenset[str]:
    path = modules()[module]
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                targets.add(target)
    return frozenset(targets)


def import_cycles() -> list[list[str]]:
    """The strongly connected components of the import graph with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(imports_of(node)):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(modules()):
        if module not in index:
            visit(module)
    return cycles


def test_the_module_scan_sees_function_level_imports() -> None:
    # Imports at the top of a module and inside a function are both edges.
    assert "tickets.pipeline.stages" in imports_of("tickets.pipeline.flow")
    assert "retrieval.services" in imports_of("tickets.pipeline.input")  # inside a function
    assert "retrieval.knowledge_base" not in imports_of("tickets.pipeline.input")  # TYPE_CHECKING only


def test_there_is_no_import_circle() -> None:
    assert import_cycles() == []


def _importers(prefix: str, *, of: str) -> dict[str, set[str]]:
    return {
        module: {target for target in imports_of(module) if target == of or target.startswith(of + ".")}
        for module in modules()
        if module == prefix or module.startswith(prefix + ".")
    }


def test_the_project_shell_does_not_import_the_domain() -> None:
    offenders = {
        module: found for module, found in _importers("inference_app", of="tickets").items() if found
    }
    # The settings read the stage table (plain data) for CELERY_TASK_ROUTES; nothing else.
    assert offenders == {"inference_app.settings": {"tickets.pipeline.stages"}}


@pytest.mark.parametrize("lower", ["retrieval", "inference_app.llm"])
def test_retrieval_and_the_model_layer_know_nothing_of_tickets(lower: str) -> None:
    assert {module: found for module, found in _importers(lower, of="tickets").items() if found} == {}


def test_retrieval_does_not_import_the_model_layer() -> None:
    found = _importers("retrieval", of="inference_app.llm")
    assert {module: targets for module, targets in found.items() if targets} == {}


def test_the_stage_table_is_plain_data() -> None:
    tree = ast.parse(modules()["tickets.pipeline.stages"].read_text())
    imported = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "dataclasses", "enum"}


def lines_of_code(path: Path) -> int:
    """Lines that are not blank, not comments and not docstrings (of modules, classes, functions and
    attributes)."""
    source = path.read_text()
    skipped: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            for position, statement in enumerate(node.body):
                if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Constant):
                    continue
                if not isinstance(statement.value.value, str):
                    continue
                if position == 0 or isinstance(node.body[position - 1], ast.Assign | ast.AnnAssign):
                    skipped.update(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in skipped
    )


def test_lines_of_code_leave_out_docstrings_comments_and_blank_lines(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Doc."""\n\n# note\nX = 1\n"""About X."""\n\n\ndef f() -> int:\n    """Doc."""\n    return X\n'
    )
    assert lines_of_code(sample) == 3


def test_no_module_is_too_big_to_read() -> None:
    sizes = {name: lines_of_code(path) for name, path in modules().items()}
    assert {name: size for name, size in sizes.items() if size > MAX_LINES_OF_CODE} == {}
