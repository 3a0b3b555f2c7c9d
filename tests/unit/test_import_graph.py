"""The import graph of the whole repository: no import circle anywhere (type-only imports, those
under `if TYPE_CHECKING:`, included), and every module of the dropcut package in a layer of the
layers contract (pyproject.toml, `lint-imports`), so a new module cannot slip past the layering.
"""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
ROOT_PACKAGES: list[str] = PYPROJECT["root_packages"]
# Where the packages that are not at the top of the checkout live (the layers' own projects).
PACKAGE_DIRS = {
    "dropcut": ROOT / "layers/dropcut/dropcut",
    "dropcut_media": ROOT / "layers/media/dropcut_media",
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ROOT_PACKAGES, exclude_type_checking_imports=False, cache_dir=None)


def _package_dir(name: str) -> Path:
    return PACKAGE_DIRS.get(name, ROOT / name)


def test_every_package_of_the_repository_is_a_root() -> None:
    """The graph (and lint-imports) covers the whole repository: each Python package at the top
    of the checkout and each layer's package."""
    top_level = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert top_level | set(PACKAGE_DIRS) <= set(ROOT_PACKAGES)
    assert all((_package_dir(name) / "__init__.py").is_file() for name in ROOT_PACKAGES)


def test_type_checking_imports_are_in_the_graph(graph: grimp.ImportGraph) -> None:
    """The graph sees imports under `if TYPE_CHECKING:` (the one below is type-only)."""
    source = (ROOT / "devstack/stack/lambdas.py").read_text()
    assert re.search(r"if TYPE_CHECKING:\n    from devstack\.stack\.provision import", source)
    assert graph.direct_import_exists(
        importer="devstack.stack.lambdas", imported="devstack.stack.provision"
    )


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    """No module imports, directly or through others, a module that imports it back."""
    cycles = set()
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if importer != imported and graph.chain_exists(imported=importer, importer=imported):
                chain = graph.find_shortest_chain(importer=imported, imported=importer)
                assert chain is not None
                cycles.add(" -> ".join((importer, *chain)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))


def _layers_contract() -> dict[str, Any]:
    contracts: list[dict[str, Any]] = PYPROJECT["contracts"]
    [contract] = [
        c
        for c in contracts
        if c["type"] == "layers" and any("dropcut.wiring" in layer for layer in c["layers"])
    ]
    return contract


def _layer_modules(contract: dict[str, Any]) -> set[str]:
    return {
        name.strip()
        for layer in contract["layers"]
        for name in re.split(r"[|:]", layer)
        if name.strip().startswith("dropcut.")
    }


def test_every_dropcut_module_is_in_a_layer() -> None:
    """Each module and subpackage of the dropcut package is named in the layers contract (add a
    new one to the layer it belongs to), and the contract names nothing that is gone."""
    modules = {
        f"dropcut.{info.name}" for info in pkgutil.iter_modules([str(_package_dir("dropcut"))])
    }
    layered = _layer_modules(_layers_contract())
    missing, gone = sorted(modules - layered), sorted(layered - modules)
    assert not missing, f"in no layer of the layers contract (pyproject.toml): {missing}"
    assert not gone, f"the layers contract names modules that do not exist: {gone}"
