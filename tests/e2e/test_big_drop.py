"""The big drop (`make soak`, about 20 minutes on 2 cores; not part of `make test`): 300 clips
across 3 folders (280, 10, 10), 3 provider slots, 1-2 s tasks. Every clip comes back edited;
the small folders finish long before the big one; a high-priority clip dropped last starts
within a few admissions; nobody waits in the slot line and AcquireSlot runs once a job; one batch
summary and one Batch Completed event per folder, the only emails; and the ETA each queued job
was given is compared with its real start (the distribution is printed).

Runs on 2 cores: every check passes but the ETA's. 301 clips back in 448-628 s, none failed.
The ETA (share of the jobs after the first 20 within 25 % of the real wait; jobs given none):
60 % (66 none), 42 % (62), 83 % (88), 54 % (2), 70 % (4), 51 % (8), as the estimator and this
drop changed. Nearly every job now gets one, and its place is right (the jobs admitted before
it are those counted, give or take the few uploads of a smaller folder that arrive after it).
What remains is this machine: the uploads and their Submits share its 2 cores with the
workflow, and the stack's pace doubles when the last upload is in (about 0.45 admissions a
second until then, 0.8 after), which no estimate from the pace measured so far can foresee
(issue 23's closing notes)."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack.burst_runner import where_stands
from devstack.local_app import LocalApp, local_app
from devstack.media import make_sample_video
from devstack.simulator import SimConfig
from tests.e2e.conftest import assert_took_turns, code_root

pytestmark = [
    pytest.mark.own_app,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        os.environ.get("DROPCUT_SOAK") != "1", reason="make soak runs it (about 20 minutes)"
    ),
]

LIMIT = 3
FOLDERS = {"archive": 280, "news": 10, "promo": 10}
QUIET = 30
#: The ETA's goal (issue 23): within 25 % of the real wait for 90 % of the jobs after the first 20.
ETA_TOLERANCE, ETA_SHARE, WARM_UP = 0.25, 0.90, 20


@pytest.fixture(scope="module")
def soak_app() -> Iterator[LocalApp]:
    with local_app(
        "evolink",
        {
            "ProviderConcurrency": str(LIMIT),
            "QueueWaitSeconds": "60",
            "BatchQuietSeconds": str(QUIET),
            "JobDeadlineSeconds": "120",
        },
        SimConfig(task_seconds=1.5, queue_seconds=0.1),
        code_root=code_root(),
    ) as app:
        yield app


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The smallest clip within every limit of the model: sent as it is."""
    path = tmp_path_factory.mktemp("soak") / "short.mp4"
    return Path(make_sample_video(path, seconds=3.0, width=720, height=720)).read_bytes()


class LineWatch(threading.Thread):
    """Samples the slot line while the backlog drains (one read of the slots item every 5 s):
    the most jobs ever seen in it."""

    def __init__(self, app: LocalApp) -> None:
        super().__init__(daemon=True)
        self.app, self.most, self.stop = app, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5.0):
            self.most = max(self.most, len(self.app.jobs_in_line()))


class Schedule(threading.Thread):
    """The reconciler on a clock, once a minute (as `make stack` runs it; a deployed stack every
    5 minutes): its pass gives queued jobs their first expected start once the pace is known."""

    def __init__(self, app: LocalApp) -> None:
        super().__init__(daemon=True)
        self.app, self.stop = app, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(60.0):
            self.app.stack.fire_schedule("ReconcileFunction")


def _until_ended(app: LocalApp, keys: list[str], timeout: float) -> None:
    """Wait until each input has a result manifest or an error report: two S3 listings every
    5 s (scanning the jobs table would hold moto's lock, in this same process, against the
    drop it measures)."""
    layout_outputs = {key: key.replace("inbox/", "outbox/", 1).removesuffix(".mp4") for key in keys}
    deadline = time.monotonic() + timeout
    while True:
        present = set(app.keys("outbox/")) | set(app.keys("errors/"))
        waiting = [
            key
            for key in keys
            if f"{layout_outputs[key]}.edited.result.json" not in present
            and f"errors/{key.removeprefix('inbox/')}.error.json" not in present
        ]
        if not waiting:
            return
        assert time.monotonic() < deadline, (
            f"{len(waiting)} inputs without an ending, e.g. "
            f"{ {key: where_stands(app, key) for key in waiting[:5]} }"
        )
        time.sleep(5.0)


def _eta_errors(jobs: list[dict[str, Any]]) -> tuple[list[float], int]:
    """For each job queued, after the first WARM_UP by arrival: how far its real start was from
    its expected start, as a share of its real wait (infinite for a job that was never given
    one: queued before the stack had a pace, and admitted before a reconciler pass gave it
    one); and how many were given none."""
    ordered = sorted(jobs, key=lambda job: float(job["created_at"]))[WARM_UP:]
    errors, without = [], 0
    for job in ordered:
        eta = job.get("eta") or {}
        if eta and eta.get("starts_at") is None:
            without += 1
            errors.append(float("inf"))
        if eta.get("starts_at") is None or job.get("admitted_at") is None:
            continue
        waited = float(job["admitted_at"]) - float(eta["estimated_at"])
        errors.append(abs(float(job["admitted_at"]) - float(eta["starts_at"])) / max(waited, 1.0))
    return errors, without


def test_a_drop_of_300_clips_comes_back_whole_and_fair(
    soak_app: LocalApp, short_clip: bytes
) -> None:
    app = soak_app
    acquire = app.stack.pool("AcquireSlotFunction")
    keys = {folder: [f"inbox/{folder}/{n:03d}.mp4" for n in range(count)] for folder, count in FOLDERS.items()}  # fmt: skip
    urgent = "inbox/archive/urgent.mp4"
    everything = [*(key for folder in FOLDERS for key in keys[folder]), urgent]
    started = time.time()
    watch, schedule = LineWatch(app), Schedule(app)
    watch.start()
    schedule.start()
    # One drop of all 300, the three folders' uploads mixed as three teams' would be (a fixed
    # order: every 15th upload is a small folder's).
    small_keys = iter(keys["news"] + keys["promo"])
    drop: list[str] = []
    for n, key in enumerate(keys["archive"], start=1):
        drop.append(key)
        if n % 14 == 0:
            drop.append(next(small_keys))
    drop.extend(small_keys)
    with ThreadPoolExecutor(8) as uploads:
        list(uploads.map(lambda key: app.put(key, short_clip, metadata={"prompt": "sepia"}), drop))
    app.put_manifest(urgent, {"prompt": "sepia", "priority": "high"})
    app.put(urgent, short_clip)
    _until_ended(app, everything, timeout=1200)
    watch.stop.set()
    schedule.stop.set()
    schedule.join()
    took = time.time() - started
    time.sleep(2.0)  # the record's status is written right after the output

    jobs = {job["key"]: job for job in app.jobs()}
    if dump := os.environ.get("DROPCUT_SOAK_DUMP"):  # the job records, for a closer look
        Path(dump).write_text(json.dumps(list(jobs.values()), default=str))
    assert set(jobs) == set(everything)
    errors, without = _eta_errors(list(jobs.values()))
    within = sum(1 for error in errors if error <= ETA_TOLERANCE) / max(len(errors), 1)
    given = [error for error in errors if error != float("inf")]
    quantiles = statistics.quantiles(given, n=10) if len(given) > 1 else given
    print(
        f"\n{len(jobs)} clips in {took:.0f} s ({len(jobs) / took * 3600:.0f} an hour); "
        f"{len(errors)} queued jobs after the first {WARM_UP}, {without} of them never given "
        f"an ETA (queued before the stack had a pace, admitted before a reconciler pass): "
        f"{within:.1%} within {ETA_TOLERANCE:.0%} of the real wait; deciles of the others' error "
        + ", ".join(f"{q:.0%}" for q in quantiles)
    )
    failed = {
        key: job.get("error_reason") for key, job in jobs.items() if job["status"] != "succeeded"
    }
    assert not failed, failed
    # The small folders took turns with the backfill from their arrival in the backlog, and
    # finished long before it.
    small = keys["news"] + keys["promo"]
    assert_took_turns(jobs, small, keys["archive"])
    ended = {key: float(job["updated_at"]) for key, job in jobs.items()}
    archive_done = sorted(ended[key] for key in keys["archive"])
    assert max(ended[key] for key in small) < archive_done[len(archive_done) // 2]
    # The urgent clip, dropped last, started within a few admissions of its arrival.
    order = sorted(jobs, key=lambda key: float(jobs[key]["admitted_at"]))
    arrived = float(jobs[urgent]["created_at"])
    admitted_before = sum(1 for job in jobs.values() if float(job["admitted_at"]) < arrived)
    assert order.index(urgent) - admitted_before <= 3 + LIMIT
    # Waiting cost nothing.
    assert watch.most == 0
    assert acquire.invocations == len(jobs)
    stats = app.simulator.stats()
    assert stats["tasks_created"] == len(jobs) and stats["max_in_flight"] <= LIMIT
    # One batch per folder, one summary and one event each, the only emails.
    time.sleep(
        max(0.0, max(float(j["created_at"]) for j in jobs.values()) + QUIET + 1 - time.time())
    )
    app.stack.fire_schedule("ReconcileFunction")
    delivered = app.job_events()
    assert {event["detail-type"] for event in delivered} == {"Batch Completed"}
    by_folder = {event["detail"]["folder"]: event["detail"] for event in delivered}
    assert sorted(by_folder) == sorted(FOLDERS) and len(delivered) == len(FOLDERS)
    for folder, detail in by_folder.items():
        assert detail["jobs"] == detail["succeeded"] == FOLDERS[folder] + (folder == "archive")
        assert len(app.read_json(str(detail["summary_key"]))["jobs"]) == detail["jobs"]

    assert within >= ETA_SHARE
