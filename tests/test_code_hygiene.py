"""Habits of the code base that a linter does not hold: every line as ruff format writes it,
and importing a module of postroom does nothing but define things."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("postroom", "storage", "smtpd_ingest", "admin_ui", "domain")
# Calls that start threads or processes, touch files, sockets or signals, or change global
# state: none of them may run when a module is imported.
SIDE_EFFECTS = {
    "ThreadPoolExecutor",
    "ProcessPoolExecutor",
    "Thread",
    "Timer",
    "Process",
    "Pool",
    "open",
    "connect",
    "socket",
    "mkdir",
    "makedirs",
    "write_text",
    "write_bytes",
    "signal",
    "register",
    "basicConfig",
    "seed",
    "run",
    "Popen",
    "setrecursionlimit",
    "use_linear_params",
}
# module -> why a bare call at its top level is what it is for
TOP_LEVEL_CALLS_ALLOWED = {
    "postroom/__main__.py": "python -m postroom runs the command line",
    "admin_ui/api.py": "registers a route on the API blueprint, as a decorator would",
}


def _python_files(*roots: str) -> list[Path]:
    return sorted(
        path
        for root in roots
        for path in (REPO_ROOT / root).rglob("*.py")
        if ".venv" not in path.parts and "artifacts" not in path.parts
    )


def test_no_line_is_kept_from_ruff_format():
    marked = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in _python_files(*PACKAGES, "bench", "tests")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "fmt: " + "skip" in line or "fmt: " + "off" in line
    ]
    assert not marked


def _callee(call: ast.Call) -> str:
    func = call.func
    while isinstance(func, ast.Call):
        func = func.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _run_at_import(body: list[ast.stmt]):
    """Statements that run when the module is imported (class bodies too, not functions)."""
    for statement in body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from (d for d in statement.decorator_list)
            continue
        if isinstance(statement, ast.ClassDef):
            yield from _run_at_import(statement.body)
            continue
        yield statement


def _import_time_problems(source: str, name: str) -> list[str]:
    problems = []
    for node in _run_at_import(ast.parse(source).body):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        bare_call = isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        if bare_call and name not in TOP_LEVEL_CALLS_ALLOWED:
            problems.append(f"{where}: a call at import time")
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute | ast.Subscript):
                    problems.append(f"{where}: changes another object at import time")
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and _callee(inner) in SIDE_EFFECTS:
                problems.append(f"{where}: {_callee(inner)}() at import time")
    return problems


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_module_only_defines_things(package):
    if not (REPO_ROOT / package).is_dir():
        pytest.fail(f"{package}/ is missing")
    problems = [
        problem
        for path in _python_files(package)
        if "migrations" not in path.parts
        for problem in _import_time_problems(path.read_text(), str(path.relative_to(REPO_ROOT)))
    ]
    assert not problems


def test_the_import_time_check_finds_what_it_is_for():
    sample = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "import email.message\n"
        "POOL = ThreadPoolExecutor(2)\n"
        "email.message._parseparam = None\n"
        "print('hello')\n"
        "class A:\n"
        "    lock = open('x')\n"
        "def fine():\n"
        "    return ThreadPoolExecutor(2)\n"
    )
    found = _import_time_problems(sample, "postroom/sample.py")
    assert [problem.split(": ", 1)[1] for problem in found] == [
        "ThreadPoolExecutor() at import time",
        "changes another object at import time",
        "a call at import time",
        "open() at import time",
    ]
