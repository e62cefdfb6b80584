"""The package layout shows the architecture: imports flow one way, down the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nexuslims_lifecycle"

LAYERS = (
    {"enums"},
    {"errors"},
    {"rules"},
    {"config", "_timestamps", "machine", "legality"},
    {"diagrams", "store", "audit"},
    {"testing", "cli"},
)
"""Each part of the package, by layer: a part imports only parts of lower layers."""

LAYER = {part: index for index, parts in enumerate(LAYERS) for part in parts}


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    """Return the parts of the package a module imports, wherever the import sits."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "nexuslims_lifecycle" and len(pieces) > 1 and pieces[1] in LAYER:
                parts.add(pieces[1])
    return parts


MODULES = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if path.parent != PACKAGE or path.name not in {"__init__.py", "__main__.py"}
)


def test_every_module_belongs_to_a_layer() -> None:
    assert {part_of(path) for path in MODULES} == set(LAYER)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_flow_down_the_layers(path: Path) -> None:
    here = part_of(path)
    upward = {part for part in imported_parts(path) - {here} if LAYER[part] >= LAYER[here]}
    assert not upward, f"{here} imports {sorted(upward)} from its own layer or above"


def test_no_private_module_is_a_subpackage_in_disguise() -> None:
    prefixes = {
        path.stem.split("_")[1]
        for path in PACKAGE.glob("_*_*.py")
        if not path.stem.startswith("__")
    }
    assert not prefixes, f"modules named _<part>_*.py belong in a package: {sorted(prefixes)}"


def test_test_and_benchmark_harnesses_live_outside_the_package() -> None:
    assert not list(PACKAGE.rglob("_workers.py"))
