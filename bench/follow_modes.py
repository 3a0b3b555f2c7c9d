"""Benchmark: following a provider task by callback versus by polling, for the same simulated
4-minute task, read from real execution histories on the local stack.

For each mode: state transitions and Lambda invocations per job, status checks, and the time
from the provider finishing the task to the edited video being stored. Time is scaled down
(SCALE) so a run takes seconds; waits are scaled the same way, so the poll-mode delays printed
"as deployed" are the measured ones divided by SCALE, while callback-mode delays are overheads
(a webhook call, a Lambda start) that do not scale and are printed as measured. Scaled delays
include that overhead too, so they are upper bounds. Poll modes also print the schedule the
deployed defaults follow for the same task (`PollPlan.waits_for`, the rule `CheckStatus` uses).

    python -m bench.follow_modes            (every mode, one process each)
    python -m bench.follow_modes MODE       (one of the MODES below)
    python -m bench.follow_modes --json     (every mode; one JSON list of the figures)

`poll-no-estimate-warm` runs one job before the measured one on the same stack: the measured
job's first wait is learned from it (dropcut.aws.pace), where `poll-no-estimate` starts cold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from devstack.local_app import local_app
from devstack.media import make_sample_video
from devstack.simulator import SimConfig
from dropcut.aws.pace import learned_wait
from dropcut.model.follow import PollPlan

TASK_SECONDS = 240
SCALE = 1 / 15
QUEUE_SECONDS = 0.2
#: The stack's default poll parameters, for the "as deployed" schedule of poll modes.
DEPLOYED = PollPlan(initial_seconds=15, max_seconds=60, growth_percent=150)


@dataclass(frozen=True)
class Mode:
    provider: str
    parameters: dict[str, str] = field(default_factory=dict)
    simulator: dict[str, Any] = field(default_factory=dict)
    fault: dict[str, Any] | None = None
    #: Poll modes: the provider's estimate, unscaled (None: it gives none).
    estimate: int | None = None
    #: Run one job first on the same stack, so this one starts with history (dropcut.aws.pace).
    warm: bool = False


MODES: dict[str, Mode] = {
    "callback": Mode("evolink", {"Callbacks": "auto"}),
    "callback-lost": Mode(
        "evolink",
        {"Callbacks": "auto"},
        fault={"api": "evolink", "op": "callback", "kind": "lost_callback"},
    ),
    "poll-with-estimate": Mode("evolink", {"Callbacks": "off"}, estimate=TASK_SECONDS),
    "poll-estimate-half": Mode(
        "evolink",
        {"Callbacks": "off"},
        {"estimated_time": round(TASK_SECONDS * SCALE / 2)},
        estimate=TASK_SECONDS // 2,
    ),
    "poll-no-estimate": Mode("aimlapi"),
    "poll-no-estimate-warm": Mode("aimlapi", warm=True),
}


def scaled(seconds: float) -> str:
    return str(max(1, round(seconds * SCALE)))


def run(mode: str) -> None:
    chosen = MODES[mode]
    task_seconds = TASK_SECONDS * SCALE
    config = SimConfig(task_seconds=task_seconds, queue_seconds=QUEUE_SECONDS, **chosen.simulator)
    parameters = {
        "PollInitialSeconds": scaled(15),
        "PollMaxSeconds": scaled(60),
        "PollGrowthPercent": "150",
        "CallbackSilenceSeconds": scaled(300),
        "JobDeadlineSeconds": "600",
        **chosen.parameters,
    }
    with local_app(chosen.provider, parameters, config) as app:
        if chosen.fault:
            app.simulator.add_fault(**chosen.fault)
        clip = make_sample_video("/tmp/bench-clip.mp4", seconds=4.0).read_bytes()
        if chosen.warm:  # the same provider, model and clip length, once before
            app.put(f"inbox/bench/{mode}-history.mp4", clip, metadata={"prompt": "monochrome"})
            app.wait_for_ending(f"inbox/bench/{mode}-history.mp4", timeout=task_seconds * 6 + 60)
        key = f"inbox/bench/{mode}.mp4"
        app.put(key, clip, metadata={"prompt": "monochrome"})
        ending = app.wait_for_ending(key, timeout=task_seconds * 6 + 60)
        assert ending.succeeded, ending.error
        task = next(
            t
            for t in app.simulator.stats()["tasks"]
            if t["id"] == ending.result["provider_task_id"]
        )
        execution = next(
            e
            for e in app.stack.executions("JobStateMachine")
            if e["name"] == ending.result["job_id"]
        )
        history = app.stack.history(execution["executionArn"])
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")
    ]
    lambdas = [
        e
        for e in history
        if e["type"] == "LambdaFunctionScheduled"
        or (
            e["type"] == "TaskScheduled"
            and e["taskScheduledEventDetails"]["resourceType"] == "lambda"
        )
    ]
    late = ending.result["timings"]["stored_at"] - task["finished_at"]
    # A delivered callback's delay is overhead (does not scale); otherwise a wait ended it.
    as_deployed = f"{late:.1f} s" if mode == "callback" else f"<= ~{late / SCALE:.0f} s"
    print(
        f"{mode:20s} transitions {len(entered):3d}   lambda invocations {len(lambdas):2d}   "
        f"status checks {entered.count('CheckStatus'):2d}   "
        f"provider done -> stored {late:5.1f} s measured ({as_deployed} as deployed)"
    )
    figures: dict[str, Any] = {
        "mode": mode,
        "transitions": len(entered),
        "lambdas": len(lambdas),
        "checks": entered.count("CheckStatus"),
        "late_measured": late,
    }
    if mode.startswith("poll"):
        # What the deployed defaults would do for the same task (the scaled run rounds waits).
        learned = None
        if chosen.warm:  # history: one task like it, seen ending on the cold schedule
            learned = learned_wait(
                [sum(DEPLOYED.waits_for(TASK_SECONDS))], DEPLOYED.initial_seconds
            )
        waits = DEPLOYED.waits_for(TASK_SECONDS, chosen.estimate, learned)
        print(
            f"{'':20s} deployed defaults: waits {waits} -> {len(waits)} status checks, "
            f"{3 + 4 * len(waits)} transitions, task end seen {sum(waits) - TASK_SECONDS} s late"
        )
        figures["deployed_waits"] = waits
        figures["deployed_transitions"] = 3 + 4 * len(waits)
        figures["deployed_late"] = sum(waits) - TASK_SECONDS
    print("RESULT " + json.dumps(figures))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] != "--json":
        run(sys.argv[1])
        return 0
    quiet = "--json" in sys.argv
    if not quiet:
        print(
            f"provider task of {TASK_SECONDS} s, run at {SCALE:.3f} scale "
            f"({TASK_SECONDS * SCALE:.0f} s); callback silence 300 s; polls 15 s growing to 60 s"
        )
    started = time.monotonic()
    results = []
    for mode in MODES:
        out = subprocess.run(
            [sys.executable, "-m", "bench.follow_modes", mode],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for line in out.splitlines():
            if line.startswith("RESULT "):
                results.append(json.loads(line.removeprefix("RESULT ")))
            elif not quiet:
                print(line)
    if quiet:
        print(json.dumps(results))
    else:
        print(f"(benchmark took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
