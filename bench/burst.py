"""Benchmark: a burst of inputs dropped at once on the local stack, with the chaos test's
faults and killed workers, against a provider that enforces its concurrency limit.

Prints, measured in one run: provider slot utilization, total time against the ideal
(inputs meant to run / limit x task time), 429s caused by us (going over the provider's
concurrency limit) beside the injected ones, Lambda invocations and state transitions per job.

    python -m bench.burst [CLIPS] [--calm] [--limit N] [--task-seconds S] [--json]
        (--calm: no faults, no killed workers; defaults 200 clips, limit 5, 2 s tasks)

Also prints the hand-over: seconds from a slot's release (Finalize, `slot_released_at` on the
job record) to the next provider task's creation (the simulator's task start), p50 and p95.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from devstack.burst_runner import BurstPlan, run_burst
from devstack.local_app import local_app
from devstack.media import make_sample_video
from devstack.simulator import SimConfig

LIMIT = 5


def _option(argv: list[str], name: str, default: float) -> float:
    return float(argv[argv.index(name) + 1]) if name in argv else default


def main(argv: list[str]) -> int:
    calm = "--calm" in argv
    limit = int(_option(argv, "--limit", LIMIT))
    task_seconds = _option(argv, "--task-seconds", 2.0)
    valued = {"--limit", "--task-seconds"}
    numbers = [
        int(a) for i, a in enumerate(argv) if a.isdigit() and (i == 0 or argv[i - 1] not in valued)
    ]
    clips = numbers[0] if numbers else 200
    timeout = max(420.0, 3 * clips / limit * task_seconds + 120)
    plan = (
        BurstPlan(
            clips=clips,
            failing=0,
            refused=0,
            faults=[],
            kill_every_seconds=None,
            timeout_seconds=timeout,
        )
        if calm
        else BurstPlan(clips=clips, timeout_seconds=timeout)
    )
    with tempfile.TemporaryDirectory() as scratch:
        # Within the model's limits (3 s, 720x720), as the chaos test's clips: the plan sends it
        # as is, so the burst measures the line and the hand-over, not Prepare's encoder.
        path = make_sample_video(Path(scratch) / "clip.mp4", seconds=3.0, width=720, height=720)
        clip = Path(path).read_bytes()
    # The simulator refuses a task over the limit like the real provider: a 429 there is ours.
    # Strict, as in the local stack: an input outside the model's limits would fail there too.
    sim = SimConfig(
        task_seconds=task_seconds, queue_seconds=0.2, concurrency_limit=limit, strict=True
    )
    parameters = {
        "ProviderConcurrency": str(limit),
        "JobDeadlineSeconds": str(max(40, round(task_seconds * 4))),
        "CallbackSilenceSeconds": str(max(3, round(task_seconds * 1.5))),
    }
    with local_app("evolink", parameters, sim) as app:
        report = run_burst(app, plan, clip)
    summary = report.summary()
    if "--json" in argv:
        print(json.dumps({**summary, "task_seconds": task_seconds, "calm": calm}))
        return 0
    print(f"burst of {summary['inputs']} inputs ({'calm' if calm else 'chaos'}), limit {limit}")
    print(json.dumps(summary, indent=2))
    per_function = {k: v for k, v in sorted(report.lambda_invocations.items()) if v}
    print("lambda invocations by function:", json.dumps(per_function))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
