"""Provider concurrency slots: at most `limit` provider tasks in flight per provider account.

The slots table holds, per pool (the provider account), one `slots` item whose `holders` map
names the jobs holding a slot, and one `wait#<job created_at>#<job id>` item per waiting job
with the task token of its execution's `AcquireSlot` wait. Joining the line and leaving a slot
both end with `dispatch`, which hands free slots to the oldest waiters and resumes their
executions (SendTaskSuccess): a waiting job costs no Lambda time and no state transitions.

A job holds its slot from before its task is created until the task is known to have ended, so
the provider never sees more of our tasks in flight than the limit. A task we lost track of
(its creation answer was lost, or it outlived the job's deadline) keeps its slot until `until`,
since it may still be running. The reconciler returns slots whose holders ended without
releasing them (a crashed or aborted execution).

With a daily credit budget (dropcut.model.budget), a slot is given only together with a
reservation of the job's estimated credits on the day's spend (dropcut.aws.ledger), in one
transaction; a job the budget cannot take stays in line, first, marked `budget_wait_since`, and
the line waits behind it (oldest first, so a big job is not passed for ever by small ones).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

from dropcut.aws.backlog import Backlog, Queued, Rotation, Turn
from dropcut.aws.executions import Executions
from dropcut.aws.job_store import JobStore
from dropcut.aws.ledger import BudgetLedger, number, transact
from dropcut.aws.slot_pace import HOLDS_RING, Eta, hold_pace, queue_eta
from dropcut.aws.tokens import resume_wait
from dropcut.errors import BudgetWaitTimedOut, OverDailyBudget, SlotWaitTimedOut
from dropcut.model.budget import (
    NO_BUDGET,
    DailyBudget,
)
from dropcut.model.jobs import JobRecord, JobStatus, PartRecord
from dropcut.model.layout import BucketLayout
from dropcut.model.plan import recorded_plan
from dropcut.observability import logger, metrics
from dropcut.providers import PROVIDERS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_stepfunctions import SFNClient

SLOTS_ENTRY = "slots"
#: How often one dispatch looks again after a transaction conflict (another dispatch at once).
MAX_CONFLICTS = 3
WAIT_PREFIX = "wait#"


@dataclass(frozen=True)
class Holder:
    job_id: str
    since: float
    #: Set for a task we lost track of: keep the slot until then (it may still be running).
    until: float | None = None


@dataclass(frozen=True)
class Waiter:
    job_id: str
    entry: str
    task_token: str
    #: The credits the job is estimated to cost (reserved when it is given a slot).
    estimate: float = 0.0
    #: Since when the daily budget has held it back (None: it waits for a slot only).
    budget_wait_since: float | None = None


class Grant(Enum):
    GRANTED = "granted"
    FULL = "full"
    OVER_BUDGET = "over_budget"
    #: A queued job that is no longer queued (cancelled, or admitted by another dispatch).
    STALE = "stale"
    #: Another transaction wrote the same items at the same moment: look again.
    CONFLICT = "conflict"


@dataclass(frozen=True)
class BacklogState:
    """The backlog as the reconciler's gauges see it."""

    queued: int
    #: Since when the daily budget holds the backlog back (None: it does not).
    budget_wait_since: float | None
    #: Until when a provider outage pauses admission (dropcut.aws.breaker; None: never).
    paused_until: float | None = None


@dataclass(frozen=True)
class Admission:
    """What admitting a queued job takes besides its slot: the backlog it leaves, the jobs
    table (its record flips from queued to received in the same transaction), the executions
    it starts, and the bucket layout (a key's folder)."""

    backlog: Backlog
    store: JobStore
    executions: Executions
    layout: BucketLayout


def wait_entry(job_id: str, created_at: float) -> str:
    """The waiter's sort key: oldest job first, the same key every time the job re-joins."""
    return f"{WAIT_PREFIX}{created_at:017.6f}#{job_id}"


@dataclass
class SlotPool:
    """The slots of one provider account. Every method is safe to repeat and to race."""

    table: Table
    sfn: SFNClient
    pool: str
    limit: int
    #: The daily credit budget (NO_BUDGET: slots alone decide).
    budget: DailyBudget = NO_BUDGET
    #: The backlog of queued jobs this pool admits from (None: the line of parts only).
    admission: Admission | None = None
    _ready: bool = field(default=False, repr=False)

    # -- the backlog -----------------------------------------------------------------------

    def queue(self, record: JobRecord) -> list[str]:
        """Put a checked, planned job in the backlog (its record says `queued`), then hand
        free slots on: the job ids admitted by this call (perhaps this one). Safe to repeat."""
        admission = self._admission()
        estimate = self.first_part_estimate(record)
        queued = Queued.of(record, admission.layout, estimate)
        weight = record.spec.turn_weight if record.spec is not None else 1
        admission.backlog.enqueue(queued, weight)
        return self.dispatch()

    def backlog_state(self) -> BacklogState:
        """How many jobs are queued, and since when the daily budget holds them back (none
        for a pool built without a backlog)."""
        if self.admission is None:
            return BacklogState(0, None)
        backlog = self.admission.backlog
        rotation = backlog.rotation()
        return BacklogState(
            backlog.queued(rotation.turns), rotation.budget_wait_since, rotation.paused_until
        )

    def eta(self, record: JobRecord) -> Eta | None:
        """Where a queued job stands and when it should start (see queue_eta)."""
        admission = self._admission()
        return queue_eta(admission.backlog, admission.layout, self.limit, record)

    def first_part_estimate(self, record: JobRecord) -> float:
        """The estimated credits of the job's first task (0 without a budget): its provider's
        billing rule on the first part's planned seconds (the probed duration without a plan)."""
        if not self.budget.enabled:
            return 0.0
        plan = recorded_plan(record.plan)
        if plan is not None and plan.parts:
            seconds: float | None = plan.parts[0].seconds
        else:
            duration = (record.media or {}).get("duration_seconds")
            seconds = float(duration) if duration is not None else None
        return self.budget.estimate(PROVIDERS[record.provider or self.pool], seconds)

    # -- the line --------------------------------------------------------------------------

    def acquire(
        self,
        job_id: str,
        created_at: float,
        task_token: str,
        max_wait_seconds: float,
        estimate: float = 0.0,
    ) -> bool:
        """Join the line with this execution's task token and the job's estimated credits;
        the token is resumed (perhaps by this very call) once the job holds a slot (and, with a
        budget, its reservation). True when it holds one now. Raises SlotWaitTimedOut (or
        BudgetWaitTimedOut, when the budget held it back) once the job has been in line longer
        than `max_wait_seconds`, and OverDailyBudget when `estimate` alone passes the budget."""
        if job_id in self.holders():
            # A re-join after the wait's heartbeat, or a retried step: the slot is already ours.
            self._resume(task_token, job_id)
            self._leave_line(job_id, created_at)
            return True
        if self.budget.enabled and estimate > self.budget.limit:
            self._leave_line(job_id, created_at)  # it may have joined before the budget shrank
            raise OverDailyBudget(
                f"the job is estimated at {estimate:g} credits, more than the whole daily "
                f"budget of {self.budget.limit:g} (DailyCreditBudget)"
            )
        joined = self.table.update_item(
            Key={"pool": self.pool, "entry": wait_entry(job_id, created_at)},
            UpdateExpression="SET job_id = :job, task_token = :token, estimate = :estimate, "
            "joined_at = if_not_exists(joined_at, :now)",
            ExpressionAttributeValues={
                ":job": job_id,
                ":token": task_token,
                ":estimate": number(estimate),
                ":now": Decimal(str(time.time())),
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        waited = time.time() - float(str(joined["joined_at"]))
        if waited > max_wait_seconds:
            self._leave_line(job_id, created_at)
            raise self._wait_timed_out(waited, max_wait_seconds, "budget_wait_since" in joined)
        # Dispatch after joining: a slot freed a moment ago, with nobody in line, is not lost.
        if job_id in self.dispatch():
            return True
        if job_id in self.holders():
            # A hand-over to this job's previous wait landed while it joined again: the slot is
            # its own, and no dispatch resumes a job that already holds one.
            self._resume(task_token, job_id)
            self._leave_line(job_id, created_at)
            return True
        return False

    def resume_without_slot(self, task_token: str, job_id: str) -> None:
        """Resume a job's AcquireSlot wait without giving it a slot: it sends the provider
        nothing new (it re-uses a finished task's result)."""
        self._resume(task_token, job_id)

    def release(self, job_id: str) -> bool:
        """Give the job's slot back and hand free slots on; False if it held none."""
        self._ensure_pool()
        answer = self.table.update_item(
            Key={"pool": self.pool, "entry": SLOTS_ENTRY},
            UpdateExpression="REMOVE holders.#job",
            ExpressionAttributeNames={"#job": job_id},
            ReturnValues="UPDATED_OLD",
        )
        before: dict[str, Any] = dict(answer.get("Attributes") or {})
        holder: dict[str, Any] | None = (before.get("holders") or {}).get(job_id)
        held = holder is not None
        if holder is not None and holder.get("until") is None:  # a lost task's hold: no pace
            hold_pace(self.table, self.pool, self.limit).record(
                HOLDS_RING, time.time() - float(str(holder.get("since", 0)))
            )
        try:
            self.dispatch()
        except (ClientError, BotoCoreError) as exc:
            # The slot is free in the table, and the next join, release or reconciler pass hands
            # it over: a throttled hand-over must not fail the job that gave the slot back.
            logger.warning("slot hand-over deferred", extra={"error": type(exc).__name__})
        except Exception:
            # A bug in handing over must not fail the job that gave the slot back either (its
            # Finalize is about to copy a paid result). Logged as an error: the dashboard shows it.
            logger.exception("slot hand-over failed; deferred to the next join or reconciler")
        return held

    def hold_until(self, job_id: str, until: float) -> bool:
        """Keep the job's slot until `until` (its task may still run); False if it holds none."""
        try:
            self.table.update_item(
                Key={"pool": self.pool, "entry": SLOTS_ENTRY},
                UpdateExpression="SET holders.#job.#until = :until",
                ConditionExpression="attribute_exists(holders.#job)",
                ExpressionAttributeNames={"#job": job_id, "#until": "until"},
                ExpressionAttributeValues={":until": Decimal(str(until))},
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def dispatch(self) -> list[str]:
        """Hand free slots on and resume or start who gets them; the job (or part) ids served.
        The line first (parts of jobs already running, oldest first), then the backlog (queued
        jobs, folders in turn: dropcut.aws.backlog). With a budget, the first one the day's
        budget cannot take stops the hand-over (a waiter is marked as waiting for budget)."""
        served: list[str] = []
        while True:
            free = self.limit - len(self.holders())
            if free <= 0:
                return served
            line = self.waiters(free)
            if not line:
                break
            for waiter in line:
                granted = self._grant(waiter)
                if granted is Grant.FULL:
                    return served  # full again: someone else dispatched meanwhile
                if granted is Grant.OVER_BUDGET:
                    self._mark_budget_wait(waiter)
                    return served
                self._resume(waiter.task_token, waiter.job_id)
                self._forget_waiter(waiter)
                served.append(waiter.job_id)
        if self.admission is not None:
            served.extend(self._admit(self.admission))
        return served

    def _admit(self, admission: Admission) -> list[str]:
        """Admit queued jobs while slots are free: the folder with the fewest turns per weight
        goes next; each admission is one transaction, then its execution starts. With a budget,
        a job it cannot take holds the backlog back (marked on the turns item) until one can."""
        backlog = admission.backlog
        rotation = backlog.rotation()
        if rotation.paused(time.time()):
            logger.info("admission paused: provider outage", extra={"until": rotation.paused_until})
            return []
        turns = rotation.turns
        admitted: list[str] = []
        conflicts = 0
        granted = Grant.FULL
        while turns and self.limit - len(self.holders()) > 0:
            queued = _next_in_turn(backlog, turns)
            if queued is None:
                break
            folder = queued.folder
            if self.budget.enabled and queued.estimate > self.budget.limit:
                # More than the whole daily budget: it never gets a slot. Started without one,
                # its AcquireSlot ends it with an over_daily_budget report, unpaid, and the
                # backlog goes on behind it.
                unslotted = self._grant_queued(admission, queued, slot=False)
                if unslotted is Grant.GRANTED:
                    admission.executions.start(queued.job_id)
                elif unslotted is Grant.STALE:
                    backlog.leave(queued)
                else:
                    break  # another dispatch at the same moment: the next hand-over goes on
                continue
            granted = self._grant_queued(admission, queued)
            if granted is Grant.STALE:
                backlog.leave(queued)
                continue
            if granted is Grant.CONFLICT and conflicts < MAX_CONFLICTS:
                conflicts += 1
                continue
            if granted is not Grant.GRANTED:
                break
            admission.executions.start(queued.job_id)
            now = time.time()
            backlog.count_turn(folder, now)
            turns[folder].served += 1
            turns[folder].last = now
            admitted.append(queued.job_id)
        self._mark_budget_wait_of(backlog, rotation, over_budget=granted is Grant.OVER_BUDGET,
                                  moved=bool(admitted or not turns))  # fmt: skip
        if admitted:
            metrics.add_metric(name="JobsAdmitted", unit="Count", value=len(admitted))
        return admitted

    def _mark_budget_wait_of(
        self, backlog: Backlog, rotation: Rotation, *, over_budget: bool, moved: bool
    ) -> None:
        """Mark the backlog as held by the daily budget when the budget refused its next job,
        or clear the mark when the backlog moved (or emptied) without such a refusal."""
        marked = rotation.budget_wait_since is not None
        if over_budget and not marked:
            backlog.hold_for_budget(True)
            logger.warning(
                "backlog waits for the daily budget",
                extra={"daily_credit_budget": self.budget.limit},
            )
        elif marked and not over_budget and moved:
            backlog.hold_for_budget(False)

    def _grant_queued(self, admission: Admission, queued: Queued, *, slot: bool = True) -> Grant:
        """In one transaction: a slot for the job's first part (and, with a budget, its
        reservation), the job's entry out of the backlog, its record from queued to received.
        Without `slot`: the entry and the record only (a job that can never have one)."""
        self._ensure_pool()
        now = time.time()
        claim = {"Update": {"TableName": self.table.name, **self._claim_request(queued.first_part)}}
        reservation = (
            self.ledger.reservation_items(
                queued.first_part, 0, number(queued.estimate), self.budget.day(), now
            )
            if self.budget.enabled
            else []
        )
        slotted = [claim, *reservation] if slot else []
        flip = {
            "Update": {
                "TableName": admission.store.table.name,
                "Key": {"job_id": queued.job_id},
                "UpdateExpression": "SET #status = :received, phase = :received, "
                "admitted_at = :now, updated_at = :now",
                "ConditionExpression": "#status = :queued",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":received": JobStatus.RECEIVED.value,
                    ":queued": JobStatus.QUEUED.value,
                    ":now": number(now),
                },
            }
        }
        items = [*slotted, *admission.backlog.removal(queued), flip]
        client = self.table.meta.client
        try:
            transact(client, items)
        except client.exceptions.TransactionCanceledException as exc:
            codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons", [])]
            if "TransactionConflict" in codes:
                return Grant.CONFLICT
            if not self._still_queued(admission, queued):
                return Grant.STALE
            return self._why_not_granted(queued.first_part)
        return Grant.GRANTED

    def _still_queued(self, admission: Admission, queued: Queued) -> bool:
        """Whether the job is still queued, its entry still in the backlog."""
        record = admission.store.get(queued.job_id)
        if record is None or record.status is not JobStatus.QUEUED:
            return False
        return admission.backlog.head(queued.folder) is not None

    # -- the budget (BudgetLedger) -----------------------------------------------------------

    @property
    def ledger(self) -> BudgetLedger:
        """The daily budget's ledger of this pool (reservations, charges, the day's spend)."""
        return BudgetLedger(self.table, self.pool, self.budget)

    def charge(self, job_id: str, credits: float | None, *, task: int) -> bool:
        """Correct the reservation of the job's `task` to the provider's credits (see
        BudgetLedger.charge)."""
        return self.ledger.charge(job_id, credits, task=task)

    def reserve(self, job_id: str, task: int, estimate: float) -> bool:
        """Reserve a new task's estimate on today's spend (see BudgetLedger.reserve)."""
        return self.ledger.reserve(job_id, task, estimate)

    def spent(self, day: str | None = None) -> float:
        """Credits reserved or charged on `day` (see BudgetLedger.spent)."""
        return self.ledger.spent(day)

    def reservation(self, job_id: str, task: int = 0) -> dict[str, Any] | None:
        """The reservation of the job's `task`, if it has one (see BudgetLedger.reservation)."""
        return self.ledger.reservation(job_id, task)

    # -- reading ---------------------------------------------------------------------------

    def holders(self) -> dict[str, Holder]:
        self._ensure_pool()
        item = self.table.get_item(
            Key={"pool": self.pool, "entry": SLOTS_ENTRY}, ConsistentRead=True
        ).get("Item", {})
        holders: dict[str, dict[str, Any]] = dict(item.get("holders") or {})  # type: ignore[arg-type]
        return {
            job_id: Holder(
                job_id,
                float(value.get("since", 0)),
                float(value["until"]) if "until" in value else None,
            )
            for job_id, value in holders.items()
        }

    def waiters(self, limit: int | None = None) -> list[Waiter]:
        """The line, oldest job first (at most `limit`)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pool").eq(self.pool)
            & Key("entry").begins_with(WAIT_PREFIX),
            "ConsistentRead": True,
        }
        found: list[Waiter] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(found)
            page = self.table.query(**kwargs)
            for item in page["Items"]:
                if "job_id" in item and "task_token" in item:
                    since = item.get("budget_wait_since")
                    found.append(
                        Waiter(
                            str(item["job_id"]),
                            str(item["entry"]),
                            str(item["task_token"]),
                            float(str(item.get("estimate", 0))),
                            float(str(since)) if since is not None else None,
                        )
                    )
                else:  # not a waiter this code wrote whole: never let it stop the line
                    logger.warning("slot line entry skipped", extra={"entry": item.get("entry")})
            if "LastEvaluatedKey" not in page or (limit is not None and len(found) >= limit):
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def leave_line(self, waiter: Waiter) -> None:
        """Drop a waiter whose execution is gone (the reconciler's job)."""
        self.table.delete_item(Key={"pool": self.pool, "entry": waiter.entry})

    def leave_line_of(self, job_id: str, created_at: float) -> None:
        """Drop the job from the line, if it is in it (a cancelled job: its wait is stopped)."""
        self._leave_line(job_id, created_at)

    def overdue(self, now: float) -> list[str]:
        """The queued jobs whose start deadline passed before `now` (dropcut.aws.backlog; none
        for a pool built without a backlog)."""
        return [] if self.admission is None else self.admission.backlog.overdue(now)

    def leave_backlog(self, record: JobRecord) -> None:
        """Drop the job from the backlog, if it is in it (a cancelled job never starts)."""
        admission = self._admission()
        admission.backlog.leave(Queued.of(record, admission.layout, 0.0))

    def _admission(self) -> Admission:
        if self.admission is None:
            raise RuntimeError("this slot pool was built without its backlog (wiring.slot_pool)")
        return self.admission

    # -- internals -------------------------------------------------------------------------

    def _ensure_pool(self) -> None:
        if self._ready:
            return
        with contextlib.suppress(self.table.meta.client.exceptions.ConditionalCheckFailedException):
            self.table.put_item(
                Item={"pool": self.pool, "entry": SLOTS_ENTRY, "holders": {}},
                ConditionExpression="attribute_not_exists(#pool)",
                ExpressionAttributeNames={"#pool": "pool"},
            )
        self._ready = True

    def _claim_request(self, job_id: str) -> dict[str, Any]:
        """The conditional update that takes a slot for the job unless the pool is full
        (holding one already counts)."""
        return {
            "Key": {"pool": self.pool, "entry": SLOTS_ENTRY},
            "UpdateExpression": "SET holders.#job = if_not_exists(holders.#job, :held)",
            "ConditionExpression": "attribute_exists(holders.#job) OR size(holders) < :limit",
            "ExpressionAttributeNames": {"#job": job_id},
            "ExpressionAttributeValues": {
                ":held": {"since": Decimal(str(time.time()))},
                ":limit": self.limit,
            },
        }

    def _claim(self, job_id: str) -> bool:
        """Take a slot for the job unless the pool is full (holding one already counts)."""
        self._ensure_pool()
        try:
            self.table.update_item(**self._claim_request(job_id))
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _grant(self, waiter: Waiter) -> Grant:
        """A slot for the waiter and, with a budget, its reservation on today's spend: both in
        one transaction, or neither."""
        if not self.budget.enabled:
            return Grant.GRANTED if self._claim(waiter.job_id) else Grant.FULL
        self._ensure_pool()
        day, now, client = self.budget.day(), time.time(), self.table.meta.client
        claim = {"Update": {"TableName": self.table.name, **self._claim_request(waiter.job_id)}}
        reservation = self.ledger.reservation_items(
            waiter.job_id, 0, number(waiter.estimate), day, now
        )
        try:
            transact(client, [claim, *reservation])
        except client.exceptions.TransactionCanceledException:
            return self._why_not_granted(waiter.job_id)
        return Grant.GRANTED

    def _why_not_granted(self, job_id: str) -> Grant:
        """After a grant transaction was refused: a job that has its reservation already (a
        repeated grant) needs the slot alone; a full pool is full; else the budget said no."""
        if self.reservation(job_id) is not None:
            return Grant.GRANTED if self._claim(job_id) else Grant.FULL
        holders = self.holders()
        if job_id not in holders and len(holders) >= self.limit:
            return Grant.FULL
        return Grant.OVER_BUDGET

    def _mark_budget_wait(self, waiter: Waiter) -> None:
        """Mark the waiter as held back by the budget (the first time), unless it left."""
        with contextlib.suppress(self.table.meta.client.exceptions.ConditionalCheckFailedException):
            self.table.update_item(
                Key={"pool": self.pool, "entry": waiter.entry},
                UpdateExpression="SET budget_wait_since = if_not_exists(budget_wait_since, :now)",
                ConditionExpression="attribute_exists(task_token)",
                ExpressionAttributeValues={":now": number(time.time())},
            )
        if waiter.budget_wait_since is None:
            logger.warning(
                "job waits for the daily budget",
                extra={
                    "budget_job_id": waiter.job_id,
                    "estimate": waiter.estimate,
                    "daily_credit_budget": self.budget.limit,
                },
            )

    def _wait_timed_out(
        self, waited: float, max_wait_seconds: float, for_budget: bool
    ) -> SlotWaitTimedOut | BudgetWaitTimedOut:
        if for_budget:
            return BudgetWaitTimedOut(
                f"the daily credit budget held the job back; it waited {waited:.0f} s "
                f"(QueueWaitSeconds {max_wait_seconds:.0f}; DailyCreditBudget "
                f"{self.budget.limit:g}, {self.spent():g} spent today)"
            )
        return SlotWaitTimedOut(
            f"no provider slot came free in {waited:.0f} s (QueueWaitSeconds "
            f"{max_wait_seconds:.0f}; {self.limit} slots for {self.pool})"
        )

    def _resume(self, task_token: str, job_id: str) -> None:
        if not resume_wait(self.sfn, task_token, {"granted": True, "pool": self.pool}):
            # Its wait ended (heartbeat): it re-joins, finds the slot already its own.
            logger.info("slot granted to a wait that had ended", extra={"slot_job_id": job_id})

    def _forget_waiter(self, waiter: Waiter) -> None:
        """Delete the waiter unless it re-joined with a newer token meanwhile; resume that one."""
        try:
            self.table.delete_item(
                Key={"pool": self.pool, "entry": waiter.entry},
                ConditionExpression="task_token = :token",
                ExpressionAttributeValues={":token": waiter.task_token},
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            item = self.table.get_item(
                Key={"pool": self.pool, "entry": waiter.entry}, ConsistentRead=True
            ).get("Item")
            if item:
                self._resume(str(item["task_token"]), waiter.job_id)
                self.table.delete_item(Key={"pool": self.pool, "entry": waiter.entry})

    def _leave_line(self, job_id: str, created_at: float) -> None:
        self.table.delete_item(Key={"pool": self.pool, "entry": wait_entry(job_id, created_at)})


def _next_in_turn(backlog: Backlog, turns: dict[str, Turn]) -> Queued | None:
    """The next job to admit: the head of the folder whose turn it is. A folder with no job
    left leaves the rotation (and `turns`); a job past its start deadline is set aside, never
    admitted (the reconciler ends it with a report)."""
    while turns:
        folder = min(turns, key=lambda name: (*turns[name].order, name))
        queued = backlog.head(folder)
        if queued is None:
            backlog.retire(folder, turns.pop(folder).weight)
            continue
        if queued.not_after is not None and queued.not_after <= time.time():
            backlog.set_aside(queued)
            continue
        return queued
    return None


def settle_slot(slots: SlotPool, record: PartRecord, hold_seconds: float) -> bool:
    """At a job's ending: correct the budget reservation of its current task to the provider's
    credits (none when no task was created; the estimate stands when the provider reported
    none; a part's earlier, failed tasks were charged when they failed), then give its
    slot back, or, when its task may still be running at the provider (we lost track of it),
    keep the slot for `hold_seconds` more (from when the create was sent, for a create whose
    outcome is unknown). True if given back."""
    no_task = record.task_id is None and record.creating_since is None
    slots.charge(record.job_id, 0.0 if no_task else record.credits, task=record.task_number)
    if record.task_may_be_running:
        # A create whose outcome is unknown: a task, if one exists, started when it was sent.
        since = record.creating_since if record.task_id is None else None
        until = max(time.time(), (since or time.time()) + hold_seconds)
        if slots.hold_until(record.job_id, until):
            logger.warning("slot kept: the provider task may still be running")
        return False
    return slots.release(record.job_id)
