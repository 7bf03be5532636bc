"""The layout stays what docs/contributing.md and ARCHITECTURE.md say it is,
and imports point one way (no circle anywhere in server/)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.layout.imports import SERVER, cycles, graph, modules

ROOT = SERVER.parent
SERVER_PACKAGE = SERVER / "codex_image_server"
# The only modules beside the packages: the entry points and what every layer shares.
TOP_LEVEL = {
    "__init__",
    "__main__",
    "cli",
    "serve",
    "settings",
    "errors",
    "version",
    "banner",
    "doctor",
}


def _packages(top: Path) -> list[Path]:
    return sorted(p for p in top.iterdir() if p.is_dir() and any(p.glob("*.py")))


def test_no_import_circle_in_server():
    assert cycles(graph()) == []


def test_the_cycle_finder_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_each_package_says_what_it_offers():
    for package in [SERVER_PACKAGE, *_packages(SERVER_PACKAGE)]:
        init = package / "__init__.py"
        assert init.is_file(), f"{package.name} has no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"


def test_every_module_has_a_docstring():
    missing = [
        name
        for name, path in modules().items()
        if path.name != "__init__.py" and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []


def test_only_the_shared_modules_sit_beside_the_packages():
    flat = {p.stem for p in SERVER_PACKAGE.glob("*.py")}
    assert flat == TOP_LEVEL


def test_the_layout_map_names_every_package():
    text = (ROOT / "docs" / "contributing.md").read_text()
    block = text[text.index("## Layout") :]
    for package in _packages(SERVER_PACKAGE):
        assert re.search(rf"^\s+{package.name}/", block, re.M), (
            f"docs/contributing.md does not map {package.name}/"
        )
    for module in TOP_LEVEL - {"__init__", "__main__"}:
        assert f"{module}.py" in block, f"docs/contributing.md does not map {module}.py"


def test_architecture_names_every_package():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    for package in _packages(SERVER_PACKAGE):
        assert f"{package.name}/" in text, f"ARCHITECTURE.md does not name {package.name}/"


def test_the_http_surfaces_call_the_dataplane_not_the_grpc_edge():
    """Every surface is an adapter over dataplane/handlers.py: none reaches
    into another surface's internals (the gRPC edge's auth, wire, servicer)."""
    reaching = sorted(
        (name, target)
        for name, targets in graph().items()
        if name.startswith("codex_image_shim")
        for target in targets
        if target.startswith("codex_image_server.grpc_api")
    )
    assert reaching == []
