"""Benchmark: the backlog's admission (dropcut.aws.slots.SlotPool over dropcut.aws.backlog.Backlog)
with 1,000, 10,000 and 100,000 queued jobs spread over 50 folders: what one admission, one
arrival and one ETA read cost in DynamoDB calls, the writes the busiest partition key takes, and
the time from a slot's release to the next job's admission.

The admission code is the real one (SlotPool.queue, release, dispatch, eta; Backlog), against
moto's DynamoDB in this process (`mock_aws`), the slots and jobs tables created from
template.yaml's SlotsTable and JobsTable properties (as tests/unit/conftest.py does). The
workflow is stubbed at its boundary: a fake Step Functions client records the executions
started (the job ids) and ignores SendTaskSuccess; the provider is not involved. The code's clock
(`time.time` in dropcut.aws.slots and dropcut.aws.backlog) is a virtual one: a job holds its slot
HOLD_SECONDS, so the ring of recent holds, and the ETA drawn from it, read as on a stack whose
tasks take that long; the wall times are real (time.perf_counter).

For each backlog size, in a fresh moto:

1. Setup (not counted): the first clip of each folder goes through `SlotPool.queue` (the slots
   fill up, every folder joins the rotation); the rest of the backlog is preloaded, not queued
   one by one (100,000 `queue` calls would take most of the run): the job records and backlog
   entries are written with BatchWriteItem, exactly as `JobStore.create` and `Backlog.enqueue`
   write them (the preloaded entry's attributes are checked against a real one), and each
   folder's `~count` counter takes the same `ADD enqueued` the arrivals would have made, then
   the folder joins the rotation as an arrival's enqueue ends (Backlog.join_turns: the first
   folders' only clips were admitted at once, so they had left it).
2. Arrivals: `--arrivals` real `SlotPool.queue` calls with every slot taken (the per-arrival
   cost; the job record's own PutItem, Submit's, is not counted), then one into a new folder.
3. Admissions: WARMUP releases (not counted: the ring of holds fills, as on a running stack),
   then `--admissions` of `release(oldest holder)`, each of which hands its slot to the next
   queued job (dispatch, one TransactWriteItems, StartExecution). The pool is warm, as a
   function's is after its first call (wiring.slot_pool at module scope: a cold one adds one
   conditional PutItem of the slots item, once). DynamoDB calls are counted by
   botocore's `before-call.dynamodb` event on the tables' client (reads and writes apart; a
   TransactWriteItems is one call and its items are counted too), and each write (an item of a
   transaction or a batch included) is attributed to its partition key (the slots table's
   `pool`, the jobs table's `job_id`); items read come from the answers (`after-call`).
4. ETA: `SlotPool.eta` for queued jobs spread over the backlog, and for the last arrival.

moto is not DynamoDB in two ways that would swamp the figures, and the bench narrows both
(`--plain-moto` measures moto as shipped): a TransactWriteItems deep-copies every table it
touches, once per item, for its rollback (seconds per call with 100,000 items), here a backup
of the items it touches; and a Query filters and sorts the whole table before taking one
partition, here the partition alone. What remains in the wall times is our code's work and
moto's per-call cost (request parsing, expressions, answers serialized, the sort of one
folder's entries): in a profile of 40 releases, the dropcut code's own time was under 1%.

The cost of waiting is computed, not measured: before the backlog, every parked job's
AcquireSlot wait joined the slot line again at each heartbeat (HEARTBEAT_SECONDS): one Lambda
call and TRANSITIONS_PER_WAKE state transitions per waiting job per heartbeat; a queued job has
no execution: nothing while it waits.

    python -m bench.backlog [--sizes 1000,10000,100000] [--admissions 200] [--arrivals 100]
                            [--limit 10] [--plain-moto] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from bench.moto_tally import FakeStepFunctions, Recorder, Tally, VirtualClock, narrowed_moto
from devstack.tables import table_from_template

if TYPE_CHECKING:
    from dropcut.aws.slots import SlotPool
    from dropcut.model.jobs import JobRecord

ROOT = Path(__file__).resolve().parents[1]
POOL = "evolink"
BUCKET = "media"
FOLDERS = 50
SIZES = (1_000, 10_000, 100_000)
STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:bench-job"
#: Seconds each job holds its slot on the virtual clock (a 4-minute task).
HOLD_SECONDS = 240.0
#: Admissions made before the counted ones (the ring of 16 recent holds fills up).
WARMUP = 20
#: Queued jobs whose ETA is read, spread over the backlog.
ETA_SAMPLE = 50
#: The admission rate the writes per partition key are scaled to, and the goal per key.
ADMISSIONS_PER_SECOND = 50
PARTITION_GOAL = 100
#: Before the backlog: a parked AcquireSlot wait re-joined the line at each heartbeat.
HEARTBEAT_SECONDS = 300
TRANSITIONS_PER_WAKE = 2
LAMBDA_CALLS_PER_WAKE = 1
WAITERS = 10_000
#: The virtual clock's start (uploads are a little older).
EPOCH = 1_750_000_000.0


def job(index: int, folder: str | None = None) -> JobRecord:
    """The queued job number `index` (folder `index mod 50`, uploaded in index order)."""
    from dropcut.model.jobs import JobRecord, JobSpec, JobStatus, job_id_for
    from dropcut.model.phases import JobPhase

    key = f"inbox/{folder or f'folder{index % FOLDERS:02d}'}/clip{index:07d}.mp4"
    return JobRecord(
        job_id=job_id_for(BUCKET, key, "v1"),
        status=JobStatus.QUEUED,
        phase=JobPhase.QUEUED,
        bucket=BUCKET,
        key=key,
        version="v1",
        spec=JobSpec(prompt="sepia"),
        provider=POOL,
        media={"duration_seconds": 5.0},
        created_at=EPOCH - 86_400 + index * 0.01,
    )


@dataclass
class Stack:
    """The pool and its backlog in moto, the fake workflow and the clock."""

    pool: SlotPool
    sfn: FakeStepFunctions
    clock: VirtualClock
    recorder: Recorder
    slots: Any
    jobs: Any

    def entry_item(self, record: JobRecord, seq: int) -> dict[str, Any]:
        """The backlog entry Backlog.enqueue writes for a new job."""
        from dropcut.aws.backlog import Queued

        admission = self.pool.admission
        assert admission is not None
        queued = Queued.of(record, admission.layout, 0.0)
        return {
            "pool": admission.backlog.partition(queued.folder),
            "entry": queued.entry,
            "job_id": queued.job_id,
            "first_part": queued.first_part,
            "estimate": Decimal(str(queued.estimate)),
            "seq": seq,
            "queued_at": Decimal(str(self.clock.time())),
        }


@contextlib.contextmanager
def stack(limit: int) -> Iterator[Stack]:
    import boto3
    from moto import mock_aws

    import dropcut.aws.backlog as backlog_module
    import dropcut.aws.slots as slots_module
    from dropcut.aws.backlog import Backlog
    from dropcut.aws.executions import Executions
    from dropcut.aws.job_store import JobStore
    from dropcut.aws.slots import Admission, SlotPool
    from dropcut.model.layout import BucketLayout

    clock = VirtualClock(EPOCH)
    with (
        mock_aws(),
        mock.patch.object(slots_module, "time", clock),
        mock.patch.object(backlog_module, "time", clock),
    ):
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        slots = table_from_template(dynamodb, "SlotsTable", "slots")
        jobs = table_from_template(dynamodb, "JobsTable", "jobs")
        sfn = FakeStepFunctions()
        admission = Admission(
            Backlog(slots, POOL),
            JobStore(jobs),
            Executions(sfn, STATE_MACHINE_ARN),  # type: ignore[arg-type]
            BucketLayout(BUCKET),
        )
        pool = SlotPool(slots, sfn, POOL, limit=limit, admission=admission)  # type: ignore[arg-type]
        recorder = Recorder(dynamodb.meta.client, {"slots": "pool", "jobs": "job_id"})
        yield Stack(pool, sfn, clock, recorder, slots, jobs)


def _flush_metrics() -> None:
    """Powertools prints its metric set once it holds 100 values: drop them (no stdout noise)."""
    from dropcut.observability import metrics

    metrics.clear_metrics()


# -- the phases ----------------------------------------------------------------------------


def fill(bench: Stack, size: int) -> dict[str, Any]:
    """The slots full and `size` jobs queued in FOLDERS folders: the first clip of each folder
    through SlotPool.queue, the rest preloaded (the items Backlog.enqueue and JobStore.create
    write, by BatchWriteItem)."""
    from dropcut.aws.job_store import JobStore, to_item

    store = JobStore(bench.jobs)
    admission = bench.pool.admission
    if admission is None:
        raise RuntimeError("the pool was built without its backlog")
    total = size + bench.pool.limit
    for index in range(min(FOLDERS, total)):
        record = job(index)
        store.create(record)
        bench.pool.queue(record)
    _flush_metrics()
    if bench.pool.limit < FOLDERS:  # the last folder's first job is still queued: compare
        written = bench.entry_item(job(FOLDERS - 1), 1)
        real = bench.slots.get_item(Key={"pool": written["pool"], "entry": written["entry"]}).get(
            "Item"
        )
        if real is None or set(real) != set(written):
            raise RuntimeError(f"Backlog.enqueue wrote {real}: the preload would differ")
    seqs: Counter[str] = Counter()
    with bench.jobs.batch_writer() as jobs, bench.slots.batch_writer() as entries:
        for index in range(FOLDERS, total):
            record = job(index)
            folder = f"folder{index % FOLDERS:02d}"
            seqs[folder] += 1
            jobs.put_item(Item=to_item(record.model_dump(mode="json")))
            entries.put_item(Item=bench.entry_item(record, 1 + seqs[folder]))
    for folder, added in sorted(seqs.items()):
        bench.slots.update_item(
            Key={"pool": f"{POOL}#backlog#{folder}", "entry": "~count"},
            UpdateExpression="ADD enqueued :added",
            ExpressionAttributeValues={":added": added},
        )
        # As each arrival ends: its folder in the rotation (a folder whose first clip was
        # admitted at once has left it, empty).
        admission.backlog.join_turns(folder, 1)
    return {"real_queue_calls": min(FOLDERS, total), "preloaded": max(0, total - FOLDERS)}


def arrivals(bench: Stack, first: int, count: int) -> dict[str, Any]:
    """`count` real SlotPool.queue calls into existing folders with every slot taken, then one
    into a new folder: DynamoDB calls per arrival (the record's own PutItem not counted)."""
    from dropcut.aws.job_store import JobStore

    store = JobStore(bench.jobs)
    records = [job(index) for index in range(first, first + count)]
    for record in records:
        store.create(record)
    walls: list[float] = []
    with bench.recorder.counting() as tally:
        for record in records:
            started = time.perf_counter()
            admitted = bench.pool.queue(record)
            walls.append(time.perf_counter() - started)
            if admitted:
                raise RuntimeError("an arrival was admitted: the slots were meant to be full")
    newcomer = job(first + count, folder="newcomer")
    store.create(newcomer)
    with bench.recorder.counting() as new_folder:
        bench.pool.queue(newcomer)
    _flush_metrics()
    return {
        **tally.per(count),
        "wall_ms_p50": statistics.median(walls) * 1000,
        "new_folder": new_folder.per(1),
    }


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def admissions(bench: Stack, holders: list[str], count: int) -> dict[str, Any]:
    """`count` of release(oldest holder) -> dispatch -> the next queued job admitted."""
    step = HOLD_SECONDS / bench.pool.limit

    def release() -> tuple[float, float, int]:
        bench.clock.advance(step)
        before = len(bench.sfn.started)
        started, cpu = time.perf_counter(), time.process_time()
        bench.pool.release(holders.pop(0))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        holders.extend(bench.sfn.started[before:])
        _flush_metrics()
        return wall, cpu, len(bench.sfn.started) - before

    for _ in range(WARMUP):
        release()
    walls: list[float] = []
    cpus: list[float] = []
    admitted = 0
    with bench.recorder.counting() as tally:
        for _ in range(count):
            wall, cpu, new = release()
            walls.append(wall)
            cpus.append(cpu)
            admitted += new
    return {
        **tally.per(max(1, admitted)),
        "admitted": admitted,
        "released": count,
        "wall_ms_p50": statistics.median(walls) * 1000,
        "wall_ms_p95": _percentile(walls, 95) * 1000,
        "cpu_ms_p50": statistics.median(cpus) * 1000,
        "partitions": partitions(tally, max(1, admitted)),
    }


#: Partition keys of the slots table by what they hold (pool `evolink`).
PARTITION_KINDS = (
    (f"slots:{POOL}#backlog#", "a folder's backlog entries and counter (<pool>#backlog#<folder>)"),
    (f"slots:{POOL}#pace", "the ring of recent holds (<pool>#pace)"),
    (f"slots:{POOL}#turns", "the turns item (<pool>#turns)"),
    (f"slots:{POOL}", "the slots item (<pool>)"),
    ("jobs:breaker#", "the provider's breaker (jobs table, breaker#<pool>)"),
    ("jobs:", "a job record (jobs table, job_id)"),
)


def _kind(key: str) -> str:
    return next((kind for prefix, kind in PARTITION_KINDS if key.startswith(prefix)), key)


def partitions(tally: Tally, admitted: int) -> dict[str, Any]:
    """Writes per admission by partition key: the busiest key, and the busiest of each kind
    (for the folders, also all folders' writes together: one folder holding the backlog)."""
    kinds: dict[str, dict[str, Any]] = {}
    for key, writes in tally.partitions.most_common():
        kind = kinds.setdefault(_kind(key), {"busiest": key, "per_admission": 0.0, "total": 0})
        kind["per_admission"] = max(kind["per_admission"], writes / admitted)
        kind["total"] += writes
    for kind in kinds.values():
        kind["all_keys_per_admission"] = kind.pop("total") / admitted
    key, writes = tally.partitions.most_common(1)[0]
    return {
        "busiest": key,
        "busiest_kind": _kind(key),
        "busiest_per_admission": writes / admitted,
        "busiest_per_second": writes / admitted * ADMISSIONS_PER_SECOND,
        "kinds": kinds,
    }


def etas(bench: Stack, total: int, last: JobRecord) -> dict[str, Any]:
    """SlotPool.eta for ETA_SAMPLE queued jobs spread over the back half of the preloaded
    backlog (their folders' first jobs are admitted by now), and for the last arrival."""
    sample = sorted(
        {total // 2 + i * (total - total // 2) // ETA_SAMPLE for i in range(ETA_SAMPLE)}
    )
    read: list[int] = []
    with bench.recorder.counting() as tally:
        answered = 0
        for index in sample:
            before = tally.items_read
            if bench.pool.eta(job(index)) is not None:
                answered += 1
            read.append(tally.items_read - before)
    eta = bench.pool.eta(last)
    return {
        **tally.per(len(sample)),
        "answered": answered,
        "asked": len(sample),
        "items_read_max": max(read),
        "last": None
        if eta is None
        else {
            "admissions_before": eta.place.admissions_before,
            "queued": eta.place.queued,
            "start_in_hours": None if eta.start_in is None else eta.start_in / 3600,
        },
    }


def measure_size(
    size: int, admissions_count: int, arrivals_count: int, limit: int
) -> dict[str, Any]:
    started = time.monotonic()
    with stack(limit) as bench:
        filled = fill(bench, size)
        setup = time.monotonic() - started
        total = size + limit
        arrived = arrivals(bench, total, arrivals_count)
        holders = list(bench.sfn.started)
        admitted = admissions(bench, holders, admissions_count)
        eta = etas(bench, total, job(total + arrivals_count - 1))
    return {
        "size": size,
        **filled,
        "setup_seconds": setup,
        "seconds": time.monotonic() - started,
        "admission": admitted,
        "arrival": arrived,
        "eta": eta,
    }


def waiting() -> dict[str, Any]:
    """The cost of WAITERS jobs waiting an hour, before the backlog (each re-joined the slot
    line at every heartbeat) and now (queued: no execution)."""
    wakes = WAITERS * 3600 / HEARTBEAT_SECONDS
    return {
        "waiters": WAITERS,
        "heartbeat_seconds": HEARTBEAT_SECONDS,
        "before": {
            "transitions_per_hour": wakes * TRANSITIONS_PER_WAKE,
            "lambda_calls_per_hour": wakes * LAMBDA_CALLS_PER_WAKE,
            "transitions_per_second": wakes * TRANSITIONS_PER_WAKE / 3600,
            "lambda_calls_per_second": wakes * LAMBDA_CALLS_PER_WAKE / 3600,
        },
        "after": {
            "transitions_per_hour": 0,
            "lambda_calls_per_hour": 0,
            "transitions_per_second": 0,
            "lambda_calls_per_second": 0,
        },
    }


def measure(
    sizes: list[int], admissions_count: int, arrivals_count: int, limit: int, plain_moto: bool
) -> dict[str, Any]:
    # Before dropcut.observability is first imported: Powertools as in a function, but quiet.
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "dropcut")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    started = time.monotonic()
    with contextlib.nullcontext() if plain_moto else narrowed_moto():
        figures = [measure_size(size, admissions_count, arrivals_count, limit) for size in sizes]
    return {
        "folders": FOLDERS,
        "limit": limit,
        "hold_seconds": HOLD_SECONDS,
        "moto": "plain" if plain_moto else "narrowed",
        "sizes": figures,
        "waiting": waiting(),
        "seconds": time.monotonic() - started,
    }


# -- the table -----------------------------------------------------------------------------


def _calls(figure: dict[str, Any]) -> str:
    return f"{figure['reads']:.3g} R + {figure['writes']:.3g} W"


def _short(size: int) -> str:
    return f"{size // 1000:,}k" if size % 1000 == 0 else f"{size:,}"


def _each(figures: dict[str, Any], show: Callable[[dict[str, Any]], str]) -> str:
    """One figure per backlog size: `1k: ...; 10k: ...; 100k: ...`."""
    return "; ".join(f"{_short(size['size'])}: {show(size)}" for size in figures["sizes"])


def _busiest(size: dict[str, Any]) -> str:
    """The busiest partition key's writes per admission and per second, and what it holds
    (every kind that ties with it)."""
    figure = size["admission"]["partitions"]
    top = figure["busiest_per_admission"]
    kinds = [
        kind.split(" (", 1)[0]
        for kind, each in figure["kinds"].items()
        if abs(each["per_admission"] - top) < 1e-9
    ]
    return f"{top:.3g} = {figure['busiest_per_second']:.0f}/s ({', '.join(kinds)})"


def rows(figures: dict[str, Any], group: str = "6 backlog") -> list[tuple[str, str, str, str]]:
    """The figures as (group, label, measured, target) rows; each figure per backlog size."""
    moto = "in-process moto" + (" as shipped" if figures["moto"] == "plain" else " (narrowed)")
    first = figures["sizes"][0]["admission"]
    waiting = figures["waiting"]
    before = waiting["before"]
    per_hour = f"{before['transitions_per_hour']:,.0f} transitions + "
    per_hour += f"{before['lambda_calls_per_hour']:,.0f} Lambda calls an hour "
    per_hour += f"({before['transitions_per_second']:.0f} + "
    per_hour += f"{before['lambda_calls_per_second']:.0f} a second)"
    return [
        (
            group,
            "admission (release -> next admitted): DynamoDB calls per job, by jobs queued",
            _each(figures, lambda s: _calls(s["admission"]))
            + f" (TransactWriteItems: {first['transact_write_items']:.3g} of "
            f"{first['transact_items']:.3g} items)",
            "constant",
        ),
        (
            group,
            "admission: items read per job",
            _each(figures, lambda s: f"{s['admission']['items_read']:.3g}"),
            "constant",
        ),
        (
            group,
            f"busiest partition key: writes per admission = per second at "
            f"{ADMISSIONS_PER_SECOND} admissions/s",
            _each(figures, _busiest),
            f"<= {PARTITION_GOAL}/s",
        ),
        (
            group,
            "release -> next admitted, p50 / p95 wall (p50 CPU)",
            _each(
                figures,
                lambda s: (
                    f"{s['admission']['wall_ms_p50']:.0f} / "
                    f"{s['admission']['wall_ms_p95']:.0f} ms "
                    f"({s['admission']['cpu_ms_p50']:.0f} ms)"
                ),
            ),
            f"{moto}: our code + moto",
        ),
        (
            group,
            "arrival (queue() with the slots full): calls per job",
            _each(figures, lambda s: _calls(s["arrival"]))
            + f"; into a new folder {_calls(figures['sizes'][0]['arrival']['new_folder'])}",
            "constant",
        ),
        (
            group,
            "ETA read (eta()): calls per job, items read at most",
            _each(figures, lambda s: f"{_calls(s['eta'])}, {s['eta']['items_read_max']}"),
            "constant calls",
        ),
        (
            group,
            f"cost of waiting, {waiting['waiters']:,} jobs: before (re-joined every "
            f"{waiting['heartbeat_seconds']} s)",
            per_hour,
            "",
        ),
        (
            group,
            f"cost of waiting, {waiting['waiters']:,} jobs: now (queued, no execution)",
            "0 transitions + 0 Lambda calls an hour",
            "0",
        ),
    ]


def _print(figures: dict[str, Any]) -> None:
    print(
        f"backlog admission, {figures['folders']} folders, {figures['limit']} slots, "
        f"in-process moto ({figures['moto']}); took {figures['seconds']:.0f} s"
    )
    for size in figures["sizes"]:
        admission = size["admission"]
        print(
            f"\n{size['size']:,} queued: setup {size['setup_seconds']:.0f} s "
            f"({size['real_queue_calls']} queue() calls, {size['preloaded']:,} preloaded), "
            f"all {size['seconds']:.0f} s; {admission['admitted']} admitted by "
            f"{admission['released']} releases"
        )
        for name in ("admission", "arrival", "eta"):
            ops = ", ".join(f"{op} {n:.3g}" for op, n in size[name]["by_operation"].items())
            print(f"  {name:9s} per job: {_calls(size[name])}: {ops}")
        print("  writes per admission, busiest key of each kind (all keys of the kind):")
        for kind, figure in admission["partitions"]["kinds"].items():
            print(
                f"    {figure['per_admission']:6.3f} ({figure['all_keys_per_admission']:.3f})  "
                f"{kind}"
            )
        last = size["eta"]["last"]
        if last is not None and last["start_in_hours"] is not None:
            print(
                f"  ETA of the last arrival: {last['admissions_before']:,} admissions before it "
                f"of {last['queued']:,} queued, starts in {last['start_in_hours']:.1f} h "
                f"({HOLD_SECONDS:.0f} s holds, {figures['limit']} slots; virtual clock)"
            )
    print()
    print("| goal | figure | measured | target |")
    print("|---|---|---|---|")
    for row in rows(figures):
        print("| " + " | ".join(row) + " |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in SIZES),
        help="backlog sizes, comma-separated (default %(default)s)",
    )
    parser.add_argument("--admissions", type=int, default=200, help="counted per size")
    parser.add_argument("--arrivals", type=int, default=100, help="real queue() calls per size")
    parser.add_argument("--limit", type=int, default=10, help="the pool's slots")
    parser.add_argument("--plain-moto", action="store_true", help="moto as shipped (slow)")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    figures = measure(sizes, args.admissions, args.arrivals, args.limit, args.plain_moto)
    if args.json:
        print(json.dumps(figures))
        return 0
    _print(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
