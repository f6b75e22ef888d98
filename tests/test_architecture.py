"""The floors of the package hold (docs/architecture.md): no import cycles, no private name
imported across modules, functions that fit on a screen, callbacks in their place.

The layer contracts themselves are import-linter's (``lint-imports``, pyproject.toml); these
checks cover what it does not: cycles inside a module's own package via re-exports, private
names, function length, and imports of the callbacks, which live outside the package folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightning_extremal"
CALLBACKS = ROOT / "callbacks"
#: Longest function body in package code, in lines of code (the docstring not counted).
MAX_FUNCTION_LINES = 60
#: A function may be longer when its docstring says why, in a line starting with this.
LONG_REASON = "Long because"
#: Floors that may import the callbacks (the trainer factory adds the progress bar).
CALLBACK_IMPORTERS = ("engine", "modules", "api", "evaluation", "jobs", "cli")


def _sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *CALLBACKS.rglob("*.py")])


def _module_name(path: Path) -> str:
    if path.is_relative_to(CALLBACKS):
        parts = ("lightning_extremal", "callbacks", *path.relative_to(CALLBACKS).parts)
    else:
        parts = path.relative_to(ROOT).parts
    name = ".".join(parts)[: -len(".py")]
    return name.removesuffix(".__init__")


def _imports(path: Path) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of every ``from … import`` (also inside functions), with the
    module made absolute."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path)
    base = package.split(".") if path.name == "__init__.py" else package.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                module = ".".join(base[: len(base) - node.level + 1] + [node.module or ""])
            else:
                module = node.module or ""
            found += [(node.lineno, module.strip("."), alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names]
    return found


def test_no_import_cycles_between_any_modules():
    """Tarjan's strongly connected components over every import, function-level ones too."""
    graph = grimp.build_graph("lightning_extremal", "callbacks")
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert len(modules) > 40  # the graph was built from the real package
    assert cycles == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_from_another_module():
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {module}.{name}"
        for path in _sources()
        for line, module, name in _imports(path)
        if _private(name) or any(_private(part) for part in module.split("."))
    ]
    assert offences == []


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = node.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    start = first.end_lineno + 1 if has_doc and len(node.body) > 1 else node.lineno
    return node.end_lineno - start + 1


def test_functions_fit_on_a_screen():
    long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node) or ""
            if _code_lines(node) > MAX_FUNCTION_LINES and LONG_REASON not in doc:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert long == []


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_callbacks_are_imported_only_from_the_engine_up(path):
    """import-linter cannot see ``lightning_extremal.callbacks`` (a folder outside the package
    mapped into it), so its importers are checked here."""
    module = _module_name(path)
    floor = module.split(".")[1] if module.count(".") else ""
    imports_callbacks = any(
        imported == "lightning_extremal.callbacks"
        or imported.startswith("lightning_extremal.callbacks.")
        for _, imported, _ in _imports(path)
    )
    if imports_callbacks and floor != "callbacks":
        assert floor in CALLBACK_IMPORTERS, f"{module} imports the callbacks"
