"""What `sam build` ships in each layer carries its bytecode: every .py has a .pyc for the build's
Python (3.13, the Lambda runtime's), compiled from that very source and marked unchecked-hash, so
Lambda (read-only /opt, zip mtimes kept to 2 s) imports it as it is instead of compiling the
module at every cold start (layers/Makefile, docs/performance.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from devstack.template import load_template

ROOT = Path(__file__).resolve().parents[2]
#: PEP 552 flags word: bit 0 = hash-based, bit 1 = check the source. Unchecked-hash is 0b01.
UNCHECKED_HASH = 0b01

pytestmark = pytest.mark.own_app  # reads the build only: no local stack


def _layers() -> list[str]:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    return sorted(
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    )


def _problem(source: Path) -> str | None:
    """Why `source` lacks a usable unchecked-hash .pyc, or None when it has one."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.is_file():
        return "no .pyc"
    header = cached.read_bytes()[:16]
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return "another Python's .pyc"
    if int.from_bytes(header[4:8], "little") != UNCHECKED_HASH:
        return "not an unchecked-hash .pyc"
    if header[8:16] != importlib.util.source_hash(source.read_bytes()):
        return "compiled from another source"
    return None


@pytest.mark.parametrize("layer", _layers())
def test_every_module_a_layer_ships_has_its_unchecked_hash_pyc(build: Path, layer: str):
    packages = build / layer / "python"
    sources = sorted(packages.rglob("*.py"))
    assert sources, f"{layer}: no Python source under {packages}"
    problems = {str(s.relative_to(packages)): p for s in sources if (p := _problem(s))}
    assert not problems, (
        f"{layer}: {len(problems)} of {len(sources)}: {dict(list(problems.items())[:5])}"
    )
