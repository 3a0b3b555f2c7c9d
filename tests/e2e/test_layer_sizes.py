"""What `sam build` ships fits Lambda: a function with its layers is at most 250 MB unzipped
(Lambda quotas), the media functions included, and only they carry PyAV."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.template import apply_globals, load_template

ROOT = Path(__file__).resolve().parents[2]
#: Lambda's limit on a function's code and all its layers, unzipped (Lambda quotas).
UNZIPPED_LIMIT_BYTES = 250 * 1000 * 1000

pytestmark = pytest.mark.own_app  # reads the build only: no local stack


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _functions() -> dict[str, list[str]]:
    template = apply_globals(load_template(ROOT / "template.yaml"))
    return {
        name: [layer["Ref"] for layer in resource["Properties"].get("Layers", [])]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.mark.parametrize("function", sorted(_functions()))
def test_each_function_with_its_layers_fits_lambdas_unzipped_limit(build: Path, function: str):
    layers = _functions()[function]
    total = _size(build / function) + sum(_size(build / layer) for layer in layers)
    assert total <= UNZIPPED_LIMIT_BYTES, f"{function}: {total / 1e6:.0f} MB unzipped"
    carries_pyav = any((build / layer / "python" / "av").is_dir() for layer in layers)
    assert carries_pyav == (function in ("PrepareFunction", "StitchFunction")), function
