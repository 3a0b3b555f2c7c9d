"""Benchmark: each function's init (the import of its handler module, in a fresh Python process
that sees what Lambda gives it) beside a naive handler's init (boto3, httpx, Powertools Logger,
Metrics and Parser, and two boto3 clients, built at module scope).

What the process sees is `sam build`'s output (`make build`, .aws-sam/build): the function's own
folder first on sys.path, then its layers' `python/` folders, and no site-packages (`python -S`:
the development venv holds packages the layers do not ship, such as awscrt and rich, which
boto3 and httpx import when present). The environment is the template's for that function plus
what the Lambda runtime sets (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, _X_AMZN_TRACE_ID), so
Powertools Tracer is enabled as it is on AWS (`Tracing: Active`). The naive handler gets the same
environment and the layers of the first function.

Functions and their layers are read from template.yaml (every AWS::Serverless::Function). Each
figure is the median of RUNS rounds; a round runs the naive handler and every function once,
interleaved, so a busy machine slows all of them alike. The figure compared is the child's CPU
time for the import (the machine's 2 cores are shared: CPU time is what the import costs,
wall time also counts waiting for a core); wall time is printed beside it. The interpreter's own
start-up is not counted (the clocks start at the first import). The child writes no bytecode
(`-B`): Lambda's /var/task and /opt are read-only, so a module the build ships without its .pyc
is compiled at every cold start, and so it is here. A warm-up round (not counted) fills the
OS's file cache.

`--used` also times the import plus what the first invocation builds before it handles the
event (FIRST_USE: a handler's `build`, if it defers one; the handlers here build their
dependencies at import, so theirs is the init alone).

`--compare DIR` measures another build of the same template in the same rounds (e.g. one without
bytecode: `sam build --build-dir DIR` on an earlier commit), the naive handler included: rows
`<name>@compare`, each build's ratios to its own naive handler.

    python -m bench.cold_start [--build DIR] [--used] [--compare DIR] [--json]
    python -m bench.cold_start --importtime LOGICAL_ID [--build DIR]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RUNS = 7
ROOT = Path(__file__).resolve().parents[1]

#: What a handler written without care for its init would import and build at module scope.
NAIVE = """
import boto3
import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser import BaseModel, event_parser
logger = Logger()
metrics = Metrics()
s3 = boto3.client("s3")
dynamodb = boto3.client("dynamodb")
"""

#: The child: sys.path as Lambda's (function code, then layers), then the timed import.
CHILD = """
import sys, time
sys.path[:0] = {paths!r}
wall, cpu = time.perf_counter(), time.process_time()
{body}
print(time.process_time() - cpu, time.perf_counter() - wall)
"""


def _template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "template.yaml"))
    return dict(template)


def _layers(template: dict[str, Any], name: str) -> list[str]:
    """The logical ids of the layers the function uses (Globals' and its own)."""
    functions = template.get("Globals", {}).get("Function", {})
    own = template["Resources"][name]["Properties"]
    refs = [*functions.get("Layers", []), *own.get("Layers", [])]
    return [ref["Ref"] for ref in refs if isinstance(ref, dict) and "Ref" in ref]


def _environment(name: str, build: Path) -> dict[str, str]:
    from tests.unit.test_handlers import _environment as template_environment

    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(template_environment(name))
    env.update(
        {
            # The template's LogLevel parameter (a Ref the test helper renders as a placeholder).
            "POWERTOOLS_LOG_LEVEL": "INFO",
            # What the Lambda runtime sets (Powertools Tracer is on only inside Lambda).
            "LAMBDA_TASK_ROOT": str(build / name),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000;Sampled=0",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",  # a stand-in: no call is made
        }
    )
    return env


def _paths(template: dict[str, Any], name: str, build: Path) -> list[str]:
    build = build.resolve()
    return [str(build / name)] + [
        str(build / layer / "python") for layer in _layers(template, name)
    ]


def _child(body: str, paths: list[str], env: dict[str, str], *flags: str) -> Any:
    return subprocess.run(
        [sys.executable, "-S", "-B", *flags, "-c", CHILD.format(paths=paths, body=body)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=paths[0],
    )


def _once(body: str, paths: list[str], env: dict[str, str]) -> tuple[float, float]:
    cpu, wall = _child(body, paths, env).stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


#: After the handler's import, what its first invocation builds before handling the event (a
#: handler built on first call: its settings, step, models, tracer and clients; a handler that
#: builds everything at init has nothing left to build).
FIRST_USE = """
import app
getattr(app.handler, "build", lambda: None)()
"""


def measure(build: Path, used: bool = False, compare: Path | None = None) -> dict[str, Any]:
    """Median CPU and wall seconds per function (and `+first use`, `@compare` for another build
    of the same template, e.g. an earlier commit's), and each one's ratio to the naive init on
    the same build (`naive_seconds`, `naive@compare`)."""
    template = _template()
    names = sorted(
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    )
    builds = {"": build} if compare is None else {"": build, "@compare": compare}
    for where in builds.values():
        missing = [name for name in names if not (where / name / "app.py").exists()]
        if missing:
            raise SystemExit(f"no build of {missing} under {where}: run make build first")
    jobs: dict[str, tuple[str, list[str], dict[str, str]]] = {
        f"naive{suffix}": (
            NAIVE,
            _paths(template, names[0], where)[1:],
            _environment(names[0], where),
        )
        for suffix, where in builds.items()
    }
    for name in names:
        for suffix, where in builds.items():
            env, paths = _environment(name, where), _paths(template, name, where)
            jobs[f"{name}{suffix}"] = ("import app", paths, env)
            if used:
                jobs[f"{name}{suffix}+first use"] = (FIRST_USE, paths, env)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in jobs}
    for round_ in range(RUNS + 1):
        for label, (body, paths, env) in jobs.items():
            figure = _once(body, paths, env)
            if round_:  # round 0 warms the file cache
                samples[label].append(figure)
    cpu = {label: statistics.median(c for c, _ in runs) for label, runs in samples.items()}
    wall = {label: statistics.median(w for _, w in runs) for label, runs in samples.items()}
    naive = {suffix: cpu.pop(f"naive{suffix}") for suffix in builds}
    functions = {
        label: {
            "seconds": seconds,
            "wall_seconds": wall[label],
            "ratio": seconds / naive["@compare" if "@compare" in label else ""],
        }
        for label, seconds in cpu.items()
    }
    figures = {"naive_seconds": naive[""], "naive_wall_seconds": wall["naive"]}
    if compare is not None:
        figures["naive@compare_seconds"] = naive["@compare"]
        figures["naive@compare_wall_seconds"] = wall["naive@compare"]
    return {**figures, "functions": functions}


def importtime(build: Path, name: str) -> str:
    """`python -X importtime` of one function's handler import: the slowest imports first."""
    template = _template()
    paths, env = _paths(template, name, build), _environment(name, build)
    lines = _child("import app", paths, env, "-X", "importtime").stderr.splitlines()
    rows = [line.split("|") for line in lines if line.startswith("import time:")][1:]
    ranked = sorted(rows, key=lambda row: -int(row[1]))
    return "\n".join(f"{int(r[1]) / 1000:8.1f} ms {r[2].rstrip()}" for r in ranked[:40])


def _cell(figures: dict[str, Any], label: str) -> str:
    figure = figures["functions"].get(label)
    if figure is None:
        return "-"
    return f"{figure['seconds'] * 1000:.0f} ms ({figure['wall_seconds'] * 1000:.0f}) {figure['ratio']:.2f}x"


def _table(figures: dict[str, Any], build: Path, compare: Path | None) -> str:
    """One row per function: init and init + first use, CPU ms (wall ms) and the ratio to the
    naive handler on the same build; with --compare, the other build's beside them."""
    suffixes = ["", "@compare"] if compare is not None else [""]
    naive = "; ".join(
        f"{where}: {figures[f'naive{suffix}_seconds'] * 1000:.0f} ms "
        f"({figures[f'naive{suffix}_wall_seconds'] * 1000:.0f})"
        for suffix, where in zip(suffixes, [build, compare], strict=False)
    )
    used = any(label.endswith("+first use") for label in figures["functions"])
    columns = ["", "+first use"] if used else [""]
    header = ["function"]
    for suffix in suffixes:
        header += [f"init{column.replace('+', ' + ')}{suffix}" for column in columns]
    lines = [
        f"Init, median of {RUNS} rounds: CPU ms (wall ms) and the ratio to the naive handler of "
        f"the same build (naive handler: {naive})",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    names = sorted({label.split("@")[0].split("+")[0] for label in figures["functions"]})
    for name in names:
        cells = [name]
        for suffix in suffixes:
            cells += [_cell(figures, f"{name}{suffix}{column}") for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def main(argv: list[str]) -> int:
    build = Path(_option(argv, "--build") or ROOT / ".aws-sam" / "build")
    if (name := _option(argv, "--importtime")) is not None:
        print(importtime(build, name))
        return 0
    compare = _option(argv, "--compare")
    figures = measure(build, used="--used" in argv, compare=Path(compare) if compare else None)
    if "--json" in argv:
        print(json.dumps(figures))
        return 0
    print(_table(figures, build, compare))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
