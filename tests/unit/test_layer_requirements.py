"""The layer ships what the tests run: layers/dropcut/requirements.txt pins every package
`sam build` installs into the layer, each at its version in requirements-dev.txt.

Without the transitive pins, `sam build` resolves them afresh (it once shipped pydantic 2.14.4
while the tests ran 2.13.5).
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAYER_REQUIREMENTS = ROOT / "layers/dropcut/requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"


def _pins(path: Path) -> dict[str, Requirement]:
    """Each requirement line of a requirements file, by canonical name (comments skipped)."""
    pins: dict[str, Requirement] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not an exact pin"
    return spec.version


LAYER = _pins(LAYER_REQUIREMENTS)
DEV = _pins(DEV_LOCK)


def test_every_layer_pin_is_exact_and_equals_the_development_lock():
    assert LAYER
    for name, requirement in LAYER.items():
        assert name in DEV, f"{name} is shipped in the layer but missing from requirements-dev.txt"
        assert _version(requirement) == _version(DEV[name]), (
            f"{name}: the layer ships {_version(requirement)}, the tests run {_version(DEV[name])}"
        )


def test_the_tests_run_the_versions_the_layer_ships():
    for name, requirement in LAYER.items():
        assert metadata.version(name) == _version(requirement), name


def test_the_layer_requirements_are_closed_under_dependencies():
    # Resolved in this venv: Python 3.13 on Linux x86_64, as the layer's runtime is.
    missing: dict[str, list[str]] = {}
    for name, requirement in LAYER.items():
        environments = [{"extra": ""}] + [{"extra": extra} for extra in requirement.extras]
        for line in metadata.requires(name) or []:
            dependency = Requirement(line)
            if dependency.marker and not any(dependency.marker.evaluate(e) for e in environments):
                continue
            if canonicalize_name(dependency.name) not in LAYER:
                missing.setdefault(name, []).append(str(dependency))
    assert not missing, f"dependencies the layer would resolve unpinned: {missing}"


def test_the_layer_package_declares_the_same_direct_pins():
    project = tomllib.loads((ROOT / "layers/dropcut/pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        declared = Requirement(line)
        shipped = LAYER[canonicalize_name(declared.name)]
        assert _version(declared) == _version(shipped), declared.name
        assert declared.extras == shipped.extras, declared.name


def test_no_function_installs_its_own_dependencies():
    # Every dependency comes from the layer: a function's requirements.txt would ship a second,
    # unpinned copy beside it.
    for path in (ROOT / "functions").glob("*/requirements.txt"):
        lines = [re.sub(r"#.*", "", line).strip() for line in path.read_text().splitlines()]
        assert not [line for line in lines if line], path
