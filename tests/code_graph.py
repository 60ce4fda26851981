"""What the product's code says about itself, read from its syntax trees (no import runs it).

Used by tests/test_structure.py (who imports whom, who writes to the database) and
tests/test_domain.py (every state-changing command, route and API operation goes through
the domain layer).
"""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OURS = ("postroom", "domain", "smtpd_ingest", "storage", "admin_ui")
ENTRY_POINTS = ("postroom", "smtpd_ingest", "admin_ui")  # may change state only through domain

# Peewee's methods that write: on a model class (Entry.update(...)) or on a row (row.save()).
CLASS_WRITES = frozenset(
    {
        "create",
        "insert",
        "insert_many",
        "insert_from",
        "update",
        "delete",
        "delete_by_id",
        "set_by_id",
        "get_or_create",
        "replace",
        "replace_many",
        "bulk_create",
        "bulk_update",
    }
)
ROW_WRITES = frozenset({"save", "delete_instance"})
SQL_WRITES = ("INSERT ", "UPDATE ", "DELETE ")


@functools.cache
def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def module_path(name: str) -> Path:
    """The file of a module of ours, by its dotted name."""
    base = REPO_ROOT.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def files_of(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def dotted(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")


def imported_packages(path: Path) -> set[str]:
    """The packages of ours a module imports (absolute imports, anywhere in the file)."""
    names = set()
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(OURS)


def model_classes() -> frozenset[str]:
    """The names of storage.models' model classes."""
    tree = tree_of(module_path("storage.models"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base) in ("BaseModel", "Model") for base in node.bases)
    )


def _model_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names a module binds to model classes, and to the storage.models module itself."""
    classes, modules = set(), set()
    models = model_classes()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "storage.models":
            classes |= {a.asname or a.name for a in node.names if a.name in models}
        elif isinstance(node, ast.ImportFrom) and node.module == "storage":
            modules |= {a.asname or a.name for a in node.names if a.name == "models"}
    return classes, modules


def model_writes(path: Path, within: ast.AST | None = None) -> list[tuple[int, str]]:
    """(line, call) of every model write in a module (or in one of its functions)."""
    tree = tree_of(path)
    classes, modules = _model_names(tree)
    found = []
    for node in ast.walk(within or tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, node.func.value
        on_class = (isinstance(receiver, ast.Name) and receiver.id in classes) or (
            isinstance(receiver, ast.Attribute)
            and isinstance(receiver.value, ast.Name)
            and receiver.value.id in modules
        )
        if method in ROW_WRITES or (method in CLASS_WRITES and on_class):
            found.append((node.lineno, ast.unparse(node.func)))
        elif method == "execute_sql" and node.args:
            text = ast.unparse(node.args[0]).upper()
            if any(word in text for word in SQL_WRITES):
                found.append((node.lineno, "execute_sql"))
    return found


@functools.cache
def storage_writers() -> frozenset[tuple[str, str]]:
    """(module, function) of every function of storage that changes the database: it writes
    to a model, runs a writing statement, opens a write transaction, or calls such a function
    of its own module."""
    writes, calls = set(), {}
    for path in files_of("storage"):
        module = dotted(path)
        for node in tree_of(path).body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            key = (module, node.name)
            called = {
                sub.func.id
                for sub in ast.walk(node)
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)
            }
            calls[key] = called
            if model_writes(path, node) or "write_transaction" in called:
                writes.add(key)
    grown = True
    while grown:
        grown = False
        for key, called in calls.items():
            if key not in writes and any((key[0], name) in writes for name in called):
                writes.add(key)
                grown = True
    return frozenset(writes)


def storage_writes_used(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every storage function that changes the database a module uses."""
    writers = storage_writers()
    tree = tree_of(path)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("storage"):
            for alias in node.names:
                if (node.module, alias.name) in writers:
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
                if node.module == "storage":
                    aliases[alias.asname or alias.name] = f"storage.{alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (aliases.get(node.value.id), node.attr) in writers
        ):
            found.append((node.lineno, f"{aliases[node.value.id]}.{node.attr}"))
    return sorted(set(found))


# --- does a function go through the domain layer? ----------------------------------------------
def _is_module(name: str) -> bool:
    return name.split(".")[0] in OURS and module_path(name).exists()


def _import_map(nodes) -> dict[str, str]:
    """Local name -> dotted name of what it is bound to, for imports of ours among nodes."""
    bound = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in OURS:
                for alias in node.names:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OURS:
                    local = alias.asname or alias.name.split(".")[0]
                    bound[local] = alias.name if alias.asname else local
    return bound


def _functions(module: str) -> dict[str, ast.FunctionDef]:
    return {
        node.name: node
        for node in tree_of(module_path(module)).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _split(target: str) -> tuple[str, str] | None:
    """'domain.projects.create_project' -> ('domain.projects', 'create_project')."""
    module, _, name = target.rpartition(".")
    return (module, name) if module and _is_module(module) else None


def _targets(module: str, function: ast.AST) -> list[tuple[str, str]]:
    """(module, function) of every call of a function of ours made in `function`."""
    tree = tree_of(module_path(module))
    bound = _import_map(tree.body) | _import_map(ast.walk(function))
    own = _functions(module)
    found = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        parts, expr = [], node.func
        while isinstance(expr, ast.Attribute):
            parts.insert(0, expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name):
            continue
        if expr.id in bound:
            target = _split(".".join([bound[expr.id], *parts]))
            if target:
                found.append(target)
        elif not parts and expr.id in own:
            found.append((module, expr.id))
        elif expr.id == "write_transaction":
            found.append(("storage.db", "write_transaction"))
    return found


@functools.cache
def domain_writers() -> frozenset[tuple[str, str]]:
    """(module, function) of every function of domain that changes state: it writes to a
    model, opens a write transaction, or calls a writing function of storage or of domain."""
    writes = set(storage_writers()) | {("storage.db", "write_transaction")}
    calls = {}
    for path in files_of("domain"):
        module = dotted(path)
        for name, node in _functions(module).items():
            calls[(module, name)] = _targets(module, node)
            if model_writes(path, node):
                writes.add((module, name))
    grown = True
    while grown:
        grown = False
        for key, targets in calls.items():
            if key not in writes and any(target in writes for target in targets):
                writes.add(key)
                grown = True
    return frozenset(key for key in writes if key[0].startswith("domain"))


def domain_calls(function) -> list[str]:
    """The calls of domain functions that change state a function makes: itself, or through
    functions of ours outside domain and storage that it calls (transitively). `function` is
    a live function; decorators are looked through."""
    function = inspect.unwrap(function)
    start = (dotted(Path(inspect.getsourcefile(function))), function.__name__)
    writers = domain_writers()
    found, seen, todo = [], set(), [start]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        module, name = key
        if module.split(".")[0] in ("domain", "storage"):
            continue
        node = _functions(module).get(name)
        if node is None:
            continue
        for target in _targets(module, node):
            if target in writers:
                found.append(".".join(target))
            else:
                todo.append(target)
    return sorted(set(found))
