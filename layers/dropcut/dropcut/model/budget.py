"""The daily credit budget (DailyCreditBudget): how many provider credits the stack may spend per
UTC day, and what a job is estimated to cost before its task exists.

The spend lives in the slots table, beside the slots of the provider account it is spent on
(dropcut.aws.ledger.BudgetLedger keeps it):

- `budget#<YYYY-MM-DD>` (UTC day): `spent`, the credits reserved or charged that day;
- `spend#<job id>`: the reservation of the job's (or part's) task: the `day` it counts on, the
  credits `reserved` (its estimate, taken in the same transaction that gives the job its slot,
  before its task is created) and, once its task has ended, the credits `charged` (the
  provider's own figure, within the bounds of `clamp_credits`; `reported` keeps a figure that
  was out of them), which replaced the estimate in the day's `spent`;
- `spend#<job id>#<n>`: the reservation of a part's n-th new task (TaskRetries, n >= 1), taken
  on the day its earlier task failed, after that task was charged: every task is paid for on
  the ledger, a failed one included.

A job whose estimate would take the day's spend past the budget is not given a slot: it stays
in line, marked as waiting for budget, until a correction or the next UTC day makes room
(every join, release and reconciler pass tries again). Ledger items expire (`expires_at`, the
table's TTL) some days after their day, so the table stays bounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dropcut.model.plan import MAX_SECONDS, MIN_SECONDS, billed_seconds

if TYPE_CHECKING:
    from dropcut.providers.base import Provider

BUDGET_PREFIX = "budget#"
SPEND_PREFIX = "spend#"
#: How long a day's spend and its jobs' reservations are kept after the day (table TTL).
KEEP_SECONDS = 35 * 86400
#: The most credits the ledger counts for one task, as a multiple of its estimate (clamp_credits).
MAX_CREDITS_PER_ESTIMATE = 10.0


@dataclass(frozen=True)
class DailyBudget:
    """The stack's daily credit budget and its estimate rule."""

    #: Credits the stack may spend per UTC day (DailyCreditBudget); 0: no limit.
    limit: float
    #: The account's price of one billed second of video, in the provider's credits
    #: (CreditsPerBilledSecond): neither provider publishes one; used only for estimates, each
    #: task's own reported credits replace its estimate once it ends.
    credits_per_second: float
    #: Epoch seconds now (tests move it across a UTC day).
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @property
    def enabled(self) -> bool:
        """True when there is a limit (DailyCreditBudget > 0)."""
        return self.limit > 0

    def day(self) -> str:
        """Today (UTC), as the budget item's key says it: YYYY-MM-DD."""
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")

    def estimate(self, provider: type[Provider], seconds: float | None) -> float:
        """The credits a clip of `seconds` is expected to cost: the seconds the provider bills
        (dropcut.model.plan.billed_seconds, its documented rule) times credits_per_second. Where the
        provider documents no rule, the clip's own seconds, at least the model's shortest;
        an unknown length counts as the model's longest (dropcut.model.plan MIN/MAX_SECONDS)."""
        billed, _ = billed_seconds(provider, seconds)
        if billed is None:
            billed = max(seconds, MIN_SECONDS) if seconds is not None else MAX_SECONDS
        return round(billed * self.credits_per_second, 6)


#: No budget: every job is granted a slot on the slots alone.
NO_BUDGET = DailyBudget(limit=0, credits_per_second=0)


def budget_entry(day: str) -> str:
    """The slots table entry of a day's spend (`day`: YYYY-MM-DD, UTC)."""
    return f"{BUDGET_PREFIX}{day}"


def spend_entry(job_id: str, task: int = 0) -> str:
    """The slots table entry of the reservation of a job's (or part's) `task`: 0 its first task,
    n its n-th new one after a failed task (PartRecord.task_number)."""
    if task < 0:
        raise ValueError(f"a task number is 0 or more; got {task}")
    return f"{SPEND_PREFIX}{job_id}" if task == 0 else f"{SPEND_PREFIX}{job_id}#{task}"


def clamp_credits(reported: float, estimate: float) -> float:
    """The credits the ledger counts for a task the provider billed `reported` credits, against
    the `estimate` (credits) its reservation took: `reported` when it lies in
    [0, MAX_CREDITS_PER_ESTIMATE * estimate], else the bound it passed. The one rule for every
    correction of the daily budget (dropcut.aws.ledger.BudgetLedger.charge); a figure it changes is
    counted (CreditCorrectionsClamped) and alarmed (CreditCorrectionsAlarm).

    Why these bounds:
    - 0: no task costs less than nothing. A negative figure (a provider bug, a refund reported
      as usage) would lower the day's spend below what was paid and let more jobs start than
      the budget allows: a figure of -5000 credits once moved a day's spend to -4940.
    - MAX_CREDITS_PER_ESTIMATE (10) times the estimate: the estimate already follows the
      provider's own billing rule on the probed duration, so a true figure differs from it only
      by the price per billed second (CreditsPerBilledSecond, the operator's setting). A figure
      ten times over is a unit or parsing error far more often than a price; counted whole it
      would hold every job back for the rest of the day. The alarm tells the operator to check
      the provider's bill and CreditsPerBilledSecond.
    - A figure that is not a finite number says nothing: the estimate stands. With an estimate of 0
      (CreditsPerBilledSecond 0: no price to compare with), only the lower bound holds.
    """
    if not math.isfinite(reported):
        return estimate
    counted = max(reported, 0.0)
    if estimate > 0:
        counted = min(counted, MAX_CREDITS_PER_ESTIMATE * estimate)
    return counted
