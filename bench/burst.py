"""Benchmark: a burst of inputs dropped at once on the local stack, with the chaos test's
faults and killed workers, against a provider that enforces its concurrency limit.

Prints, measured in one run: provider slot utilization, total time against the ideal
(inputs meant to run / limit x task time), 429s caused by us (going over the provider's
concurrency limit) beside the injected ones, Lambda invocations and state transitions per job.

    python -m bench.burst [CLIPS] [--calm]     (--calm: no faults, no killed workers)
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


def main(argv: list[str]) -> int:
    calm = "--calm" in argv
    numbers = [int(a) for a in argv if a.isdigit()]
    clips = numbers[0] if numbers else 200
    plan = (
        BurstPlan(clips=clips, failing=0, refused=0, faults=[], kill_every_seconds=None)
        if calm
        else BurstPlan(clips=clips)
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = make_sample_video(Path(scratch) / "short.mp4", seconds=1.0, width=160, height=120)
        clip = Path(path).read_bytes()
    # The simulator refuses a 6th task like the real provider: a 429 there is ours.
    sim = SimConfig(task_seconds=2.0, queue_seconds=0.2, concurrency_limit=LIMIT)
    parameters = {
        "ProviderConcurrency": str(LIMIT),
        "JobDeadlineSeconds": "40",
        "CallbackSilenceSeconds": "3",
    }
    with local_app("evolink", parameters, sim) as app:
        report = run_burst(app, plan, clip)
    summary = report.summary()
    print(f"burst of {summary['inputs']} inputs ({'calm' if calm else 'chaos'}), limit {LIMIT}")
    print(json.dumps(summary, indent=2))
    per_function = {k: v for k, v in sorted(report.lambda_invocations.items()) if v}
    print("lambda invocations by function:", json.dumps(per_function))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
