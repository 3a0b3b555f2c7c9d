"""Benchmark: state transitions and Lambda invocations per job in poll mode, for a provider task
of about 4 minutes, read from real execution histories on the local stack.

Time is scaled down (SCALE) so a run takes seconds: the task lasts 240 s x SCALE and the poll
parameters are scaled the same way (rounded to whole seconds, as Wait states need). The
unscaled schedule the deployed stack would follow is printed beside it.

    python -m bench.poll_transitions [aimlapi|evolink]   (default: both, one process each)
"""

from __future__ import annotations

import subprocess
import sys
import time

from devstack.app import local_app
from devstack.media import make_sample_video
from devstack.simulator import SimConfig
from dropcut.tasks import PollPlan

TASK_SECONDS = 240
SCALE = 1 / 15
DEPLOYED = PollPlan(initial_seconds=15, max_seconds=60, growth_percent=150)


def run(provider: str) -> None:
    task_seconds = TASK_SECONDS * SCALE
    config = SimConfig(task_seconds=task_seconds, queue_seconds=0.2)
    parameters = {
        "PollInitialSeconds": str(max(1, round(15 * SCALE))),
        "PollMaxSeconds": str(max(1, round(60 * SCALE))),
        "PollGrowthPercent": "150",
        "JobDeadlineSeconds": "600",
    }
    with local_app(provider, parameters, config) as app:
        clip = make_sample_video("/tmp/bench-clip.mp4", seconds=4.0).read_bytes()
        key = f"inbox/bench/{provider}.mp4"
        started = time.monotonic()
        app.put(key, clip, metadata={"prompt": "monochrome"})
        ending = app.wait_for_ending(key, timeout=task_seconds * 4 + 60)
        elapsed = time.monotonic() - started
        execution = next(
            e
            for e in app.stack.executions("JobStateMachine")
            if e["name"] == ending.result["job_id"]
        )
        history = app.stack.history(execution["executionArn"])
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    lambdas = [e for e in history if e["type"] == "LambdaFunctionScheduled"]
    estimate = round(TASK_SECONDS + 0.2 / SCALE) if provider == "evolink" else None
    print(f"[{provider}] task {task_seconds:.1f} s (= {TASK_SECONDS} s x {SCALE:.3f})")
    print(
        f"  state transitions per job: {len(entered)}  lambda invocations: {len(lambdas)}  "
        f"status polls: {ending.result['polls']}"
    )
    print(f"  drop -> stored: {elapsed:.1f} s, i.e. {elapsed / task_seconds:.2f} x the task time")
    schedule = DEPLOYED.waits_for(TASK_SECONDS, estimate)
    print(
        f"  deployed defaults for a {TASK_SECONDS} s task: waits {schedule} -> {len(schedule)} polls, "
        f"~{3 + 3 * len(schedule)} transitions, result seen {sum(schedule) - TASK_SECONDS} s late"
    )


def main() -> int:
    if len(sys.argv) > 1:
        run(sys.argv[1])
        return 0
    for provider in ("aimlapi", "evolink"):
        subprocess.run([sys.executable, "-m", "bench.poll_transitions", provider], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
