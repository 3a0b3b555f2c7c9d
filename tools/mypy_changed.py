"""mypy (strict, pyproject.toml's settings) on the packages the given files belong to: the
pre-commit hook's "mypy on changed packages". Files outside the type-checked packages are left
out; no package, nothing to check.

    .venv/bin/python tools/mypy_changed.py layers/dropcut/dropcut/model/plan.py functions/submit/app.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

# Where each type-checked package (pyproject.toml [tool.mypy] packages) lives in the checkout.
PACKAGE_DIRS = {
    "layers/dropcut/dropcut": "dropcut",
    "layers/media/dropcut_media": "dropcut_media",
    "functions": "functions",
    "dropcut_cli": "dropcut_cli",
}


def packages_of(files: list[str]) -> list[str]:
    """The type-checked packages that hold any of `files` (paths from the checkout's top)."""
    found = set()
    for name in files:
        path = PurePosixPath(Path(name).as_posix())
        for folder, package in PACKAGE_DIRS.items():
            if path.is_relative_to(folder):
                found.add(package)
    return sorted(found)


def main(argv: list[str]) -> int:
    packages = packages_of(argv)
    if not packages:
        return 0
    mypy = str(Path(sys.executable).with_name("mypy"))
    command = [mypy]
    for package in packages:
        command += ["-p", package]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
