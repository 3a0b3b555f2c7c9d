"""The backlog: jobs that wait for a provider slot outside the workflow, in the slots table.

Submit queues a job (status and phase `queued`) and starts no execution: a queued job costs no
Lambda call, no state transition and no clock while it waits, however long the backlog. Whoever
hands slots on (dropcut.aws.slots.SlotPool.dispatch: a slot given back, an arrival, the
reconciler's pass) admits the next queued jobs: one transaction takes a slot for the job's
first part, flips the job from `queued` to `received` and deletes its entry; then its execution
starts (named by the job id: a repeat starts nothing, and a start lost after the transaction is
made by the reconciler, which starts a received job that has no execution).

Fair turns: the inbox's top-level folders (one team's, one client's) take turns. The next job
comes from the folder with the fewest turns taken per unit of its weight (`turn_weight` in the
folder's preset, 1 by default), so a backfill of 10,000 clips in one folder cannot hold back
three urgent clips in another; a folder that comes back after an idle spell starts level with
the least served of the others and cannot claim the turns it missed. Within a folder, higher
`priority` first (high, normal, low), then the older upload.

The layout in the slots table (template.yaml, SlotsTable); nothing is scanned, every read is a
key or a Query with a limit, so an admission costs the same with 10 or 100,000 jobs queued:

- `<pool>#backlog#<folder>` / `<rank>#<created_at>#<job id>`: one entry per queued job, with
  its number in the folder (`seq`); its folder's next job is a Query with Limit 1.
- `<pool>#backlog#<folder>` / `~count`: the jobs the folder ever queued and had admitted (it
  sorts after every entry): a job's place in its folder is its number less the admitted.
- `<pool>#turns` / `folders`: the folders with queued jobs, each with the turns it took and its
  weight.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key

from dropcut.aws.ledger import transact
from dropcut.model.eta import FolderBacklog, admissions_before
from dropcut.model.jobs import JobRecord, Priority
from dropcut.model.layout import BucketLayout
from dropcut.model.plan import recorded_plan
from dropcut.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

#: The turns item of a pool (the folders that have queued jobs).
TURNS_ENTRY = "folders"
#: The counter item of a folder's partition (sorts after every entry: `~` > the ranks' digits).
COUNT_ENTRY = "~count"
#: Entries sort by this first: a higher priority is a smaller rank.
PRIORITY_RANK: dict[Priority, int] = {"high": 0, "normal": 1, "low": 2}


@dataclass(frozen=True)
class Queued:
    """One queued job, as its backlog entry holds it."""

    job_id: str
    #: The part the admission's slot is taken for (the job id itself for a one-part job).
    first_part: str
    folder: str
    #: The entry's sort key: `<rank>#<created_at>#<job id>`.
    entry: str
    #: The first part's estimated credits (0 without a daily budget).
    estimate: float
    #: Its start deadline (JobRecord.start_deadline; None: it waits as long as it needs).
    not_after: float | None = None

    @property
    def deadline_entry(self) -> str:
        """Its entry in the pool's deadlines (sorted by deadline): `<deadline>#<job id>`."""
        return f"{self.not_after or 0:020.6f}#{self.job_id}"

    @classmethod
    def of(cls, record: JobRecord, layout: BucketLayout, estimate: float) -> Queued:
        """The entry of a job (its plan names its parts; its spec its priority)."""
        plan = recorded_plan(record.plan)
        parts = plan.part_ids(record.job_id) if plan is not None else []
        priority: Priority = record.spec.priority if record.spec is not None else "normal"
        return cls(
            job_id=record.job_id,
            first_part=parts[0] if parts else record.job_id,
            folder=layout.folder_of(record.key),
            entry=f"{PRIORITY_RANK[priority]}#{record.created_at:020.6f}#{record.job_id}",
            estimate=estimate,
            not_after=record.start_deadline,
        )


#: The most entries counted to place a job in its folder (one bounded read).
MAX_COUNTED = 1000
#: How often taking an entry out tries again when an admission's transaction conflicts with it.
MAX_CONFLICT_ROUNDS = 3
#: How often a batch read asks again for the keys DynamoDB left unprocessed.
MAX_BATCH_ROUNDS = 4


@dataclass(frozen=True)
class Place:
    """A queued job's place: the jobs before it in its folder, the whole backlog, its folder's
    weight, and the other folders' backlogs (what dropcut.model.eta needs)."""

    ahead: int
    queued: int
    weight: int
    others: list[FolderBacklog]
    #: Since when the daily budget holds the backlog back (None: it does not).
    budget_wait_since: float | None = None

    @property
    def admissions_before(self) -> int:
        """The admissions before this job under fair turns (dropcut.model.eta)."""
        return admissions_before(self.ahead, self.weight, self.others)


@dataclass(frozen=True)
class Rotation:
    """The turns item: the folders with queued jobs, and the budget's hold on the backlog."""

    turns: dict[str, Turn]
    #: Since when the daily budget holds the backlog back (None: it does not).
    budget_wait_since: float | None
    #: Until when a provider outage pauses admission (dropcut.aws.breaker; None: never).
    paused_until: float | None = None

    def paused(self, now: float) -> bool:
        """Whether admission is paused at `now` (a provider outage)."""
        return self.paused_until is not None and now < self.paused_until


@dataclass
class Turn:
    """A folder's place in the rotation: the turns it took, its weight, and when it last took
    one (0: not since it joined)."""

    served: float
    weight: int
    last: float = 0.0

    @property
    def order(self) -> tuple[float, float]:
        """The folder with the fewest turns per unit of weight goes next; between equals, the
        one whose last turn is oldest (a folder that just joined first)."""
        return (self.served / self.weight, self.last)


@dataclass(frozen=True)
class Backlog:
    """The queued jobs of one provider account (pool), by folder."""

    table: Table
    pool: str

    def partition(self, folder: str) -> str:
        return f"{self.pool}#backlog#{folder}"

    @property
    def deadlines(self) -> str:
        """The partition of the queued jobs' start deadlines (the reconciler ends the overdue)."""
        return f"{self.pool}#deadlines"

    @property
    def turns_key(self) -> dict[str, str]:
        return {"pool": f"{self.pool}#turns", "entry": TURNS_ENTRY}

    # -- queueing ----------------------------------------------------------------------------

    def enqueue(self, queued: Queued, weight: int) -> int:
        """Put the job in its folder's queue and its folder in the rotation, if it is not there
        yet; the job's number in its folder (a repeat keeps the entry and its number)."""
        key = {"pool": self.partition(queued.folder), "entry": queued.entry}
        existing = self.table.get_item(Key=key, ConsistentRead=True).get("Item")
        if existing is not None:
            seq = int(str(existing["seq"]))
        else:
            counted = self.table.update_item(
                Key=self.count_key(queued.folder),
                UpdateExpression="ADD enqueued :one",
                ExpressionAttributeValues={":one": 1},
                ReturnValues="UPDATED_NEW",
            )
            seq = int(str(counted["Attributes"]["enqueued"]))
            self.table.put_item(
                Item={
                    **key,
                    "job_id": queued.job_id,
                    "first_part": queued.first_part,
                    "estimate": Decimal(str(queued.estimate)),
                    "seq": seq,
                    "queued_at": Decimal(str(time.time())),
                    **({"not_after": Decimal(str(queued.not_after))} if queued.not_after else {}),
                }
            )
        if queued.not_after is not None:
            self.table.put_item(
                Item={
                    "pool": self.deadlines,
                    "entry": queued.deadline_entry,
                    "job_id": queued.job_id,
                }
            )
        self.join_turns(queued.folder, weight)
        return seq

    def count_key(self, folder: str) -> dict[str, str]:
        return {"pool": self.partition(folder), "entry": COUNT_ENTRY}

    def join_turns(self, folder: str, weight: int) -> None:
        """Put the folder in the rotation, level with the least served folder in it (a folder
        back from an idle spell does not claim the turns it missed)."""
        turns = self.turns()
        if folder in turns:
            return
        start = min((turn.order[0] for turn in turns.values()), default=0.0) * weight
        if not turns:
            self._ensure_turns()
        self.table.update_item(
            Key=self.turns_key,
            UpdateExpression="SET folders.#folder = if_not_exists(folders.#folder, :turn)",
            ExpressionAttributeNames={"#folder": folder},
            ExpressionAttributeValues={
                ":turn": {"served": Decimal(str(round(start, 6))), "weight": weight, "last": 0}
            },
        )

    def leave(self, queued: Queued) -> None:
        """Drop the job's entry and its deadline (a cancelled or ended job, or one no longer
        queued), counted as gone from its folder once (a repeat changes nothing)."""
        self.set_aside(queued)
        if queued.not_after is not None:
            self.table.delete_item(Key={"pool": self.deadlines, "entry": queued.deadline_entry})

    def set_aside(self, queued: Queued) -> None:
        """Take the job out of its folder's queue (counted once) but keep its deadline entry:
        a job past its deadline is never admitted, and the reconciler ends it with a report."""
        client = self.table.meta.client
        for _ in range(MAX_CONFLICT_ROUNDS):
            try:
                transact(client, self.removal(queued, deadline=False))
            except client.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
                    continue  # an admission of the same folder at this moment: again
                return  # the entry is gone already: counted by whoever took it
            return
        # Still conflicting: the entry must go all the same (a stale head would stall its
        # folder); the count is the gauges' and the ETA's, and drifts by one at worst.
        self.table.delete_item(Key={"pool": self.partition(queued.folder), "entry": queued.entry})

    def overdue(self, now: float, limit: int = 100) -> list[str]:
        """The ids of queued jobs whose deadline is before `now`, soonest first (one Query of
        the deadlines partition, at most `limit`)."""
        items = self.table.query(
            KeyConditionExpression=Key("pool").eq(self.deadlines)
            & Key("entry").lt(f"{now:020.6f}~"),
            Limit=limit,
        )["Items"]
        return [str(item["job_id"]) for item in items]

    # -- admission ---------------------------------------------------------------------------

    def turns(self) -> dict[str, Turn]:
        """The folders in the rotation (one consistent read)."""
        return self.rotation().turns

    def rotation(self) -> Rotation:
        """The folders in the rotation, and since when the daily budget holds the backlog back
        (one consistent read of the turns item)."""
        item = self.table.get_item(Key=self.turns_key, ConsistentRead=True).get("Item") or {}
        folders: dict[str, Any] = dict(item.get("folders") or {})  # type: ignore[arg-type]
        since = item.get("budget_wait_since")
        paused = item.get("paused_until")
        return Rotation(
            {
                folder: Turn(
                    float(str(value["served"])),
                    max(1, int(str(value["weight"]))),
                    float(str(value.get("last", 0))),
                )
                for folder, value in folders.items()
            },
            float(str(since)) if since is not None else None,
            float(str(paused)) if paused is not None else None,
        )

    def hold_for_budget(self, held: bool) -> None:
        """Mark the backlog as held back by the daily budget (since now, the first time), or
        clear the mark (an admission went through)."""
        if held:
            self._ensure_turns()
            self.table.update_item(
                Key=self.turns_key,
                UpdateExpression="SET budget_wait_since = if_not_exists(budget_wait_since, :now)",
                ExpressionAttributeValues={":now": Decimal(str(time.time()))},
            )
        else:
            self.table.update_item(Key=self.turns_key, UpdateExpression="REMOVE budget_wait_since")

    def queued(self, turns: dict[str, Turn]) -> int:
        """The jobs queued in the folders of `turns` (one batch read of their counters)."""
        counts = self._counts(sorted(turns))
        return sum(max(0, enqueued - admitted) for enqueued, admitted in counts.values())

    def head(self, folder: str) -> Queued | None:
        """The folder's next job: highest priority, then oldest (one Query, Limit 1)."""
        items = self.table.query(
            KeyConditionExpression=Key("pool").eq(self.partition(folder)),
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        if not items or items[0]["entry"] == COUNT_ENTRY:
            return None
        item = items[0]
        return Queued(
            job_id=str(item["job_id"]),
            first_part=str(item["first_part"]),
            folder=folder,
            entry=str(item["entry"]),
            estimate=float(str(item.get("estimate", 0))),
            not_after=float(str(item["not_after"])) if "not_after" in item else None,
        )

    def removal(self, queued: Queued, *, deadline: bool = True) -> list[dict[str, Any]]:
        """The transaction items that take the entry out of the backlog (once: it must exist),
        count the folder's admission and (with `deadline`) drop its deadline entry."""
        dropped = (
            [
                {
                    "Delete": {
                        "TableName": self.table.name,
                        "Key": {"pool": self.deadlines, "entry": queued.deadline_entry},
                    }
                }
            ]
            if deadline and queued.not_after is not None
            else []
        )
        return [
            *dropped,
            {
                "Delete": {
                    "TableName": self.table.name,
                    "Key": {"pool": self.partition(queued.folder), "entry": queued.entry},
                    "ConditionExpression": "attribute_exists(entry)",
                }
            },
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": self.count_key(queued.folder),
                    "UpdateExpression": "ADD admitted :one",
                    "ExpressionAttributeValues": {":one": 1},
                }
            },
        ]

    # -- the place in line -------------------------------------------------------------------

    def place(self, queued: Queued) -> Place | None:
        """Where a queued job stands: the jobs before it in its own folder and what the other
        folders in the rotation have queued (a read of its entry, the turns item and one batch
        of counters: the same cost whatever the backlog's size). None when it is not queued."""
        entry = self.table.get_item(
            Key={"pool": self.partition(queued.folder), "entry": queued.entry}
        ).get("Item")
        if entry is None:
            return None
        rotation = self.rotation()
        turns = rotation.turns
        counts = self._counts(sorted({*turns, queued.folder}))
        enqueued, admitted = counts.get(queued.folder, (0, 0))
        mine = turns.get(queued.folder)
        others = [
            FolderBacklog(
                max(0, counts.get(folder, (0, 0))[0] - counts.get(folder, (0, 0))[1]), turn.weight
            )
            for folder, turn in turns.items()
            if folder != queued.folder
        ]
        return Place(
            ahead=self._ahead(queued, max(0, int(str(entry["seq"])) - admitted - 1)),
            queued=sum(other.queued for other in others) + max(0, enqueued - admitted),
            weight=mine.weight if mine is not None else 1,
            others=others,
            budget_wait_since=rotation.budget_wait_since,
        )

    def _ahead(self, queued: Queued, by_number: int) -> int:
        """The entries before this one in its folder (a higher priority, or older): counted
        when they fit one bounded read, else `by_number` (its number less the admitted, which
        counts every earlier upload and no later one of a higher priority)."""
        answer = self.table.query(
            KeyConditionExpression=Key("pool").eq(self.partition(queued.folder))
            & Key("entry").lt(queued.entry),
            Select="COUNT",
            Limit=MAX_COUNTED,
        )
        if "LastEvaluatedKey" in answer:
            return by_number
        return int(answer["Count"])

    def _counts(self, folders: list[str]) -> dict[str, tuple[int, int]]:
        """(enqueued, admitted) of each folder, by BatchGetItem (100 keys a call)."""
        found: dict[str, tuple[int, int]] = {}
        resource = self.table.meta.client
        for start in range(0, len(folders), 100):
            keys = [self.count_key(folder) for folder in folders[start : start + 100]]
            request: dict[str, Any] = {self.table.name: {"Keys": keys}}
            for _ in range(MAX_BATCH_ROUNDS):
                answer = resource.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.table.name, []):
                    folder = str(item["pool"]).split("#backlog#", 1)[1]
                    found[folder] = (
                        int(str(item.get("enqueued", 0))),
                        int(str(item.get("admitted", 0))),
                    )
                request = dict(answer.get("UnprocessedKeys") or {})
                if not request:
                    break
        return found

    def count_turn(self, folder: str, now: float) -> None:
        """One more turn taken by the folder, at `now` (best effort: a lost count skews one
        turn)."""
        with contextlib.suppress(self.table.meta.client.exceptions.ConditionalCheckFailedException):
            self.table.update_item(
                Key=self.turns_key,
                UpdateExpression="SET folders.#folder.served = folders.#folder.served + :one, "
                "folders.#folder.#last = :now",
                ConditionExpression="attribute_exists(folders.#folder)",
                ExpressionAttributeNames={"#folder": folder, "#last": "last"},
                ExpressionAttributeValues={":one": 1, ":now": Decimal(str(now))},
            )

    def retire(self, folder: str, weight: int) -> None:
        """Take a folder with no queued job out of the rotation. An arrival racing with this
        is not stranded: it joins the rotation after writing its entry, and this looks again
        after removing the folder (one of the two sees the other)."""
        self.table.update_item(
            Key=self.turns_key,
            UpdateExpression="REMOVE folders.#folder",
            ExpressionAttributeNames={"#folder": folder},
        )
        if self.head(folder) is not None:
            logger.info("folder queued again while retired", extra={"folder": folder})
            self.join_turns(folder, weight)

    def _ensure_turns(self) -> None:
        with contextlib.suppress(self.table.meta.client.exceptions.ConditionalCheckFailedException):
            self.table.put_item(
                Item={**self.turns_key, "folders": {}},
                ConditionExpression="attribute_not_exists(#pool)",
                ExpressionAttributeNames={"#pool": "pool"},
            )
