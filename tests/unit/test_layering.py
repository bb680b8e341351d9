"""Imports point down: runtime is the core (no I/O, nothing else of the package), providers sit on it."""
from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "outreach"
IO_MODULES = {"aiohttp", "asyncpg", "redis", "ray", "socket", "ssl", "subprocess", "urllib", "http", "telethon",
              "twilio", "stripe", "resend", "websockets", "requests", "httpx", "sqlite3", "shutil", "pathlib"}


def imports_of(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_in(part: str):
    return sorted((PACKAGE / part).rglob("*.py"))


def test_runtime_imports_nothing_else_of_the_package_and_no_io_library():
    for path in modules_in("runtime"):
        for name in imports_of(path):
            assert not name.startswith("outreach.") or name.startswith("outreach.runtime"), (path, name)
            assert name.split(".")[0] not in IO_MODULES, (path, name)


def test_providers_import_only_runtime():
    for path in modules_in("providers"):
        for name in imports_of(path):
            if name.startswith("outreach."):
                assert name.startswith(("outreach.runtime", "outreach.providers")), (path, name)


def test_storage_imports_only_runtime():
    for path in modules_in("storage"):
        for name in imports_of(path):
            if name.startswith("outreach."):
                assert name.startswith(("outreach.runtime", "outreach.storage")), (path, name)


def test_http_never_imports_a_provider_and_nothing_imports_service_but_the_cli():
    for path in modules_in("http"):
        assert not any(name.startswith("outreach.providers") for name in imports_of(path)), path
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("cli.py", "service.py"):
            assert "outreach.service" not in imports_of(path), path


ASSEMBLY = ("remote.py", "senders.py", "routing.py")  # build an actor's dependencies from settings and storage


def test_only_remote_imports_ray_and_the_actor_classes_import_only_runtime():
    for path in modules_in("actors"):
        names = imports_of(path)
        if path.name != "remote.py":
            assert not any(name.split(".")[0] == "ray" for name in names), path
        if path.name not in ASSEMBLY:
            assert all(name.startswith(("outreach.runtime", "outreach.actors")) for name in names
                       if name.startswith("outreach.")), path



MAX_MODULE_LINES = 400
MAX_MEDIAN_FUNCTION_LINES = 15


def test_no_module_is_over_400_lines():
    """Past ~400 lines a module holds more than one job: split it (house style)."""
    long = {str(path.relative_to(PACKAGE)): lines for path in PACKAGE.rglob("*.py")
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def function_lengths() -> list[int]:
    """Lines of every function and method of the package, from `def` to its last line."""
    return [node.end_lineno - node.lineno + 1 for path in PACKAGE.rglob("*.py")
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_the_median_function_is_under_15_lines():
    lengths = sorted(function_lengths())
    assert len(lengths) > 100
    assert lengths[len(lengths) // 2] < MAX_MEDIAN_FUNCTION_LINES
