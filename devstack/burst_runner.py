"""A burst of inputs dropped at once into the local app, with faults: the chaos test's run and
the burst benchmark's. Collects how every input ended and what it cost.

What the run does, all at once:
- drops `clips` valid clips (some meant to fail at the provider) and `refused` invalid files;
- delivers every S3 event once or twice more (some at once, some a little later);
- lets the provider simulator throttle, answer 5xx, stall past our read timeout, reset
  connections, create a task and then answer 5xx, 408 or a cut-off 2xx (or nothing in time),
  fail tasks and lose callbacks (`CHAOS_FAULTS`);
- SIGKILLs a busy handler worker every `kill_every_seconds` (the interrupted step is retried);
- runs the reconciler every `reconcile_every_seconds`, as its schedule would (sped up).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from devstack.local_app import LocalApp
from dropcut.aws.slots import Holder

PREFIX = "inbox/burst/"
#: What the provider simulator does wrong during a burst (each rule `times` times).
CHAOS_FAULTS: list[dict[str, Any]] = [
    {"api": "evolink", "op": "create", "kind": "throttle", "times": 8, "retry_after": 1},
    {"api": "evolink", "op": "create", "kind": "unavailable", "status": 503, "times": 4},
    # The provider creates the task, then its gateway's answer hides it (or none comes in time).
    {"api": "evolink", "op": "create", "kind": "accept_then_error", "status": 502, "times": 3},
    {"api": "evolink", "op": "create", "kind": "accept_then_error", "status": 504, "times": 2},
    {"api": "evolink", "op": "create", "kind": "accept_then_error", "status": 408, "times": 1},
    {"api": "evolink", "op": "create", "kind": "accept_then_error", "status": 200, "times": 2},
    {"api": "evolink", "op": "create", "kind": "accept_then_slow", "delay": 10, "times": 2},
    {"api": "evolink", "op": "query", "kind": "throttle", "times": 6, "retry_after": 1},
    {"api": "evolink", "op": "query", "kind": "unavailable", "status": 502, "times": 6},
    {"api": "evolink", "op": "query", "kind": "slow", "delay": 10, "times": 2},  # > read timeout
    {"api": "evolink", "op": "query", "kind": "reset", "times": 4},
    {"api": "evolink", "op": "result", "kind": "reset", "times": 2},
    {"api": "evolink", "op": "callback", "kind": "lost_callback", "times": 12},
    {"api": "evolink", "op": "callback", "kind": "duplicate_callback", "times": 6},
]
#: Functions whose workers the run kills (the reconciler is run by the test itself).
KILLABLE = (
    "SubmitFunction",
    "AcquireSlotFunction",
    "StartTaskFunction",
    "ArmCallbackFunction",
    "CheckStatusFunction",
    "WebhookFunction",
    "FinalizeFunction",
    "RecordFailureFunction",
)


@dataclass(frozen=True)
class BurstPlan:
    clips: int = 200
    #: Of the clips, how many the provider fails ([sim:fail] in the prompt).
    failing: int = 8
    #: Invalid files (text named .mp4): refused before any task, not meant to run.
    refused: int = 6
    faults: list[dict[str, Any]] = field(default_factory=lambda: list(CHAOS_FAULTS))
    kill_every_seconds: float | None = 2.0
    reconcile_every_seconds: float = 5.0
    timeout_seconds: float = 420.0
    seed: int = 7


@dataclass
class InputOutcome:
    key: str
    meant_to_run: bool
    expected: str  # "output" | "task_failed" | "refused"
    outputs: int = 0  # result manifests written
    reports: int = 0  # error reports written
    reason: str | None = None
    error_type: str | None = None  # the report's, so a failed assertion shows the cause
    message: str | None = None
    tasks: int = 0  # provider tasks created for it
    #: Of its provider tasks: those dropcut recorded (a job's or a part's task id, a part's
    #: failed tasks), and those whose every callback the simulator dropped (lost_callback).
    recorded_tasks: int = 0
    unheard_tasks: int = 0
    job_status: str | None = None


@dataclass
class BurstReport:
    plan: BurstPlan
    limit: int
    task_seconds: float
    inputs: dict[str, InputOutcome]
    seconds: float
    first_task_at: float
    last_task_end_at: float
    busy_task_seconds: float
    simulator: dict[str, Any]
    lambda_invocations: dict[str, int]
    transitions: list[int]
    workers_killed: int
    reconcile_runs: int
    slots_held_after: dict[str, Holder]
    jobs_in_line_after: int
    #: Seconds from a slot's release (Finalize, job record) to the next task's creation at the
    #: provider (simulator), one per hand-over.
    handovers: list[float] = field(default_factory=list)
    #: Seconds from a task's end at the provider to the next task's creation (the same pairing).
    end_to_next: list[float] = field(default_factory=list)

    @property
    def runnable(self) -> int:
        return sum(1 for outcome in self.inputs.values() if outcome.meant_to_run)

    @property
    def ideal_seconds(self) -> float:
        """Inputs / limit x task time: the provider busy on every slot, all the time."""
        return self.runnable / self.limit * self.task_seconds

    @property
    def slot_utilization(self) -> float:
        """Task-seconds run / (limit x the span from the first task to the last one's end)."""
        span = self.last_task_end_at - self.first_task_at
        return self.busy_task_seconds / (self.limit * span) if span > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        endings = Counter(
            "output" if o.outputs else (o.reason or "report") for o in self.inputs.values()
        )
        jobs = len(self.inputs)
        return {
            "inputs": jobs,
            "meant_to_run": self.runnable,
            "endings": dict(sorted(endings.items())),
            "provider_tasks": self.simulator["tasks_created"],
            "max_in_flight": self.simulator["max_in_flight"],
            "limit": self.limit,
            "429_over_limit": self.simulator["status_429_concurrency"],
            "429_all": self.simulator["status_429"],
            "faults_applied": self.simulator["faults_applied"],
            "workers_killed": self.workers_killed,
            "seconds": round(self.seconds, 1),
            "ideal_seconds": round(self.ideal_seconds, 1),
            "time_vs_ideal": round(self.seconds / self.ideal_seconds, 2),
            "slot_utilization": round(self.slot_utilization, 3),
            "lambda_invocations_per_job": round(sum(self.lambda_invocations.values()) / jobs, 2),
            "transitions_per_execution": round(sum(self.transitions) / len(self.transitions), 2)
            if self.transitions
            else 0,
            "handover_p50": round(_quantile(self.handovers, 0.5), 2),
            "handover_p95": round(_quantile(self.handovers, 0.95), 2),
            "end_to_next_p50": round(_quantile(self.end_to_next, 0.5), 2),
            "end_to_next_p95": round(_quantile(self.end_to_next, 0.95), 2),
        }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _handovers(
    app: LocalApp, stats: dict[str, Any], limit: int, *, from_end: bool = False
) -> list[float]:
    """Release -> next task created: the i-th slot given back lets the (limit + i)-th task be
    created (tasks and releases each in time order; a calm burst, where every task runs).
    `from_end`: from the i-th task's end at the provider instead of the i-th release."""
    if from_end:
        released = sorted(float(t["finished_at"]) for t in stats["tasks"] if t["finished_at"])
    else:
        released = sorted(
            float(job["slot_released_at"]) for job in app.jobs() if job.get("slot_released_at")
        )
    created = sorted(float(task["created_at"]) for task in stats["tasks"])
    return [created[limit + i] - at for i, at in enumerate(released) if limit + i < len(created)]


def run_burst(app: LocalApp, plan: BurstPlan, clip: bytes) -> BurstReport:
    """Drop the burst, wait until every input has ended, collect the figures."""
    rng = random.Random(plan.seed)
    limit = int(app.stack.function_env("AcquireSlotFunction")["PROVIDER_CONCURRENCY"])
    sim_config = app.simulator.config
    task_seconds = sim_config.queue_seconds + sim_config.task_seconds
    app.simulator.configure(faults=plan.faults)
    invocations_before = {name: pool.invocations for name, pool in app.stack.pools.items()}
    inputs, uploads = _plan_inputs(plan, clip, rng)

    started = time.time()
    _drop(app, uploads, rng)
    with _Chaos(app, plan, rng) as chaos:
        _wait_for_endings(app, inputs, started + plan.timeout_seconds)
    seconds = time.time() - started
    app.stack.drain(timeout=120)  # duplicates still queued are handled (and change nothing)

    stats = app.simulator.stats()
    _collect_endings(app, inputs, stats)
    first_task_at, last_task_end_at, busy = _task_span(stats, started)
    return BurstReport(
        plan=plan,
        limit=limit,
        task_seconds=task_seconds,
        inputs=inputs,
        seconds=seconds,
        first_task_at=first_task_at,
        last_task_end_at=last_task_end_at,
        busy_task_seconds=busy,
        simulator=stats,
        lambda_invocations={
            name: pool.invocations - invocations_before.get(name, 0)
            for name, pool in app.stack.pools.items()
        },
        transitions=_transitions(app),
        workers_killed=len(chaos.killed),
        reconcile_runs=chaos.reconcile_runs,
        slots_held_after=app.slot_holders(),
        jobs_in_line_after=len(app.jobs_in_line()),
        handovers=_handovers(app, stats, limit),
        end_to_next=_handovers(app, stats, limit, from_end=True),
    )


#: One upload: the key, the body and the user metadata.
Upload = tuple[str, bytes, dict[str, str]]


def _plan_inputs(
    plan: BurstPlan, clip: bytes, rng: random.Random
) -> tuple[dict[str, InputOutcome], list[Upload]]:
    """The inputs with the ending each is meant to have, and their uploads in a shuffled order."""
    inputs: dict[str, InputOutcome] = {}
    uploads: list[Upload] = []
    for index in range(plan.clips):
        key = f"{PREFIX}clip-{index:03d}.mp4"
        failing = index < plan.failing
        prompt = f"burst clip-{index:03d}: sepia" + (" [sim:fail]" if failing else "")
        inputs[key] = InputOutcome(key, True, "task_failed" if failing else "output")
        uploads.append((key, clip, {"prompt": prompt}))
    for index in range(plan.refused):
        key = f"{PREFIX}bad-{index:03d}.mp4"
        inputs[key] = InputOutcome(key, False, "refused")
        uploads.append((key, b"not a video, just text\n" * 10, {"prompt": "sepia"}))
    rng.shuffle(uploads)
    return inputs, uploads


def _drop(app: LocalApp, uploads: list[Upload], rng: random.Random) -> None:
    """Upload everything at once (8 at a time), then deliver each S3 event once or twice more."""
    with ThreadPoolExecutor(8) as pool:
        versions = dict(
            pool.map(lambda u: (u[0], app.put(u[0], u[1], metadata=u[2])["VersionId"]), uploads)
        )
    for key, version in versions.items():  # S3 delivers at least once: here 2 or 3 times
        app.redeliver(key, version, copies=1)
        if rng.random() < 0.5:
            app.redeliver(key, version, copies=1, delay_seconds=rng.randint(1, 5))


class _Chaos:
    """While the burst runs (the `with` block): the reconciler on its (sped up) schedule and,
    if planned, a killer of busy handler workers. Counts what each did."""

    def __init__(self, app: LocalApp, plan: BurstPlan, rng: random.Random) -> None:
        self.app = app
        self.plan = plan
        self.rng = rng
        self.stop = threading.Event()
        self.killed: list[int] = []
        self.reconcile_runs = 0
        self.threads = [threading.Thread(target=self.reconciler, daemon=True)]
        if plan.kill_every_seconds:
            self.threads.append(threading.Thread(target=self.killer, daemon=True))

    def __enter__(self) -> _Chaos:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def killer(self) -> None:
        """SIGKILL one busy worker of a `KILLABLE` function every `kill_every_seconds`."""
        assert self.plan.kill_every_seconds is not None
        while not self.stop.wait(self.plan.kill_every_seconds):
            busy = [name for name in KILLABLE if self.app.stack.pool(name).busy_pids()]
            if busy:
                self.killed.extend(self.app.stack.pool(self.rng.choice(busy)).kill_busy(1))

    def reconciler(self) -> None:
        """Fire the reconciler's schedule every `reconcile_every_seconds`."""
        while not self.stop.wait(self.plan.reconcile_every_seconds):
            self.app.stack.fire_schedule("ReconcileFunction")
            self.reconcile_runs += 1


def _task_span(stats: dict[str, Any], started: float) -> tuple[float, float, float]:
    """Of the provider tasks that finished: the first start, the last end (both `started` if
    none) and the task-seconds run."""
    tasks = [t for t in stats["tasks"] if t["finished_at"] is not None]
    first_task_at = min((t["created_at"] for t in tasks), default=started)
    last_task_end_at = max((t["finished_at"] for t in tasks), default=started)
    busy = sum(t["finished_at"] - t["created_at"] for t in tasks)
    return first_task_at, last_task_end_at, busy


def _transitions(app: LocalApp) -> list[int]:
    """States entered, per execution of the job state machine."""
    return [
        sum(
            1
            for event in app.stack.history(execution["executionArn"])
            if "StateEntered" in event["type"]
        )
        for execution in app.stack.executions("JobStateMachine")
    ]


def where_stands(app: LocalApp, key: str) -> dict[str, Any]:
    """What the job record of an input without an ending says (to find why it is stuck)."""
    job = app.job(key) or {}
    fields = ("status", "phase", "task_id", "creating_since", "admitted_at", "error_reason")
    queued = job.get("job_id") in app.jobs_queued()
    return {**{name: job.get(name) for name in fields}, "in_backlog": queued,
            "in_line": job.get("job_id") in app.jobs_in_line(),
            "holds_slot": job.get("job_id") in app.slot_holders()}  # fmt: skip


def _wait_for_endings(app: LocalApp, inputs: dict[str, InputOutcome], deadline: float) -> None:
    """Wait until every input has its ending in S3 (a result manifest or an error report), then
    until every job record says so. This harness shares one process (and its GIL) with moto and
    the simulator: listing two prefixes every 3 s costs little, where scanning the jobs table
    (moto deep-copies every item it reads, holding the DynamoDB lock that writes wait on) took
    about 40 % of that process during a 200-clip burst and slowed the burst it measures."""
    waiting = {_ending_keys(key): key for key in inputs}
    while waiting:
        present = set(app.keys("outbox/burst/")) | set(app.keys("errors/burst/"))
        waiting = {keys: key for keys, key in waiting.items() if present.isdisjoint(keys)}
        if waiting and time.time() > deadline:
            missing = sorted(waiting.values())
            where = {key: where_stands(app, key) for key in missing[:5]}
            raise TimeoutError(f"{len(missing)} inputs have no ending, e.g. {where}")
        if waiting:
            time.sleep(3.0)
    while True:  # the record's status is written last: usually already there
        ended = {
            key
            for key, status in app.job_statuses().values()
            if key in inputs and status in ("succeeded", "failed")
        }
        if len(ended) == len(inputs):
            return
        if time.time() > deadline:
            missing = sorted(set(inputs) - ended)
            raise TimeoutError(f"{len(missing)} inputs have no ended record, e.g. {missing[:5]}")
        time.sleep(1.0)


def _ending_keys(key: str) -> tuple[str, str]:
    """The two keys that can end an input: its result manifest, its error report."""
    name = key.removeprefix(PREFIX).removesuffix(".mp4")
    return f"outbox/burst/{name}.edited.result.json", f"errors/burst/{name}.mp4.error.json"


def _collect_endings(app: LocalApp, inputs: dict[str, InputOutcome], stats: dict[str, Any]) -> None:
    """Count, per input, what S3 holds for it (results and reports) and its provider tasks."""
    outbox = set(app.keys("outbox/burst/"))
    reports = set(app.keys("errors/burst/"))

    def clip(task: dict[str, Any]) -> str:
        return str(task["prompt"]).split(":", 1)[0].removeprefix("burst ")

    tasks_per_clip = Counter(clip(task) for task in stats["tasks"])
    unheard = Counter(
        clip(task)
        for task in stats["tasks"]
        if task["callbacks"] and all(c.get("event") == "dropped" for c in task["callbacks"])
    )
    records = app.jobs()
    jobs = {job["key"]: job for job in records if job["key"] in inputs}
    recorded = Counter(
        job["key"]
        for job in records
        for task_id in [job.get("task_id"), *(t["task_id"] for t in job.get("failed_tasks", []))]
        if task_id
    )
    for key, outcome in inputs.items():
        name = key.removeprefix(PREFIX).removesuffix(".mp4")
        manifest_key, report_key = _ending_keys(key)
        outcome.outputs = int(manifest_key in outbox)
        outcome.reports = int(report_key in reports)
        if outcome.reports:
            body = app.s3.get_object(Bucket=app.bucket, Key=report_key)["Body"].read()
            report = json.loads(body)
            outcome.reason = report["reason"]
            outcome.error_type = report.get("error_type")
            outcome.message = report.get("message")
        outcome.tasks = tasks_per_clip.get(name, 0)
        outcome.recorded_tasks = recorded.get(key, 0)
        outcome.unheard_tasks = unheard.get(name, 0)
        outcome.job_status = jobs[key]["status"] if key in jobs else None
