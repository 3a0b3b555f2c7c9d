"""Provider slots: at most `limit` holders, the line served oldest job first, hand-overs resume
the waiting execution's token, and nothing is lost when a wait ends or a step repeats."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from dropcut.aws.slots import SlotPool, settle_slot
from dropcut.errors import SlotWaitTimedOut
from dropcut.model.jobs import JobRecord, JobStatus


def test_the_limit_holds_and_a_release_hands_the_slot_to_the_next_in_line(pool, tokens):
    assert pool.acquire("job-a", 1.0, "tok-a", 3600) is True
    assert pool.acquire("job-b", 2.0, "tok-b", 3600) is True
    assert pool.acquire("job-c", 3.0, "tok-c", 3600) is False
    assert tokens.resumed == ["tok-a", "tok-b"]
    assert set(pool.holders()) == {"job-a", "job-b"}
    assert [w.job_id for w in pool.waiters()] == ["job-c"]

    assert pool.release("job-a") is True
    assert tokens.resumed == ["tok-a", "tok-b", "tok-c"]
    assert set(pool.holders()) == {"job-b", "job-c"}
    assert pool.waiters() == []


def test_the_line_is_served_oldest_job_first(pool, tokens):
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    pool.acquire("job-late", 50.0, "tok-late", 3600)  # joins first, but is the newer job
    pool.acquire("job-early", 10.0, "tok-early", 3600)
    pool.release("job-a")
    assert tokens.resumed[-1] == "tok-early"
    pool.release("job-b")
    assert tokens.resumed[-1] == "tok-late"


def test_releasing_twice_or_a_slot_never_held_frees_nothing_extra(pool, tokens):
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    pool.acquire("job-c", 3.0, "tok-c", 3600)
    pool.acquire("job-d", 4.0, "tok-d", 3600)
    assert pool.release("job-a") is True
    assert pool.release("job-a") is False  # a retried Finalize
    assert pool.release("job-x") is False
    assert set(pool.holders()) == {"job-b", "job-c"}
    assert [w.job_id for w in pool.waiters()] == ["job-d"]


def test_a_waiter_that_joins_again_is_resumed_on_its_new_token(pool, tokens):
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    pool.acquire("job-c", 3.0, "tok-c1", 3600)
    tokens.ended.add("tok-c1")  # its heartbeat expired: the execution joins again
    pool.acquire("job-c", 3.0, "tok-c2", 3600)
    assert len(pool.waiters()) == 1  # the same place in line, not a second one
    pool.release("job-a")
    assert tokens.resumed[-1] == "tok-c2"


def test_a_hand_over_to_an_ended_wait_is_kept_for_the_job_when_it_joins_again(pool, tokens):
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    pool.acquire("job-c", 3.0, "tok-c1", 3600)
    tokens.ended.add("tok-c1")
    pool.release("job-a")  # the slot is job-c's, but its wait had ended: resume fails quietly
    assert "job-c" in pool.holders() and "tok-c1" not in tokens.resumed
    assert pool.acquire("job-c", 3.0, "tok-c2", 3600) is True
    assert tokens.resumed[-1] == "tok-c2"
    assert len(pool.holders()) == 2


def test_a_job_in_line_longer_than_the_queue_wait_leaves_it_with_slot_wait_timed_out(pool):
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    pool.acquire("job-c", 3.0, "tok-c1", 3600)
    time.sleep(0.05)
    with pytest.raises(SlotWaitTimedOut, match="2 slots for evolink"):
        pool.acquire("job-c", 3.0, "tok-c2", max_wait_seconds=0.01)
    assert pool.waiters() == []


def _ended_job(**fields) -> JobRecord:
    return JobRecord(
        job_id="job-a",
        status=JobStatus.FAILED,
        bucket="b",
        key="inbox/a.mp4",
        version="1",
        **fields,
    )


#: A create whose answer was lost, sent 100 s before the test runs.
SENT = "sent 100 s ago"


@pytest.mark.parametrize(
    ("fields", "kept"),
    [
        ({}, False),  # refused or failed before any task
        ({"task_id": "t1", "task_finished_seen_at": 5.0}, False),  # its end was seen
        ({"task_id": "t1", "callback_outcome": "failed"}, False),  # a confirmed callback
        ({"task_id": "t1"}, True),  # timed out: the task may still run
        ({"creating_since": SENT}, True),  # creation answer lost: a task may exist
    ],
    ids=["no-task", "seen-ended", "callback-ended", "still-running", "creation-uncertain"],
)
def test_an_ending_gives_the_slot_back_unless_the_task_may_still_run(pool, fields, kept):
    if fields.get("creating_since") == SENT:
        fields = {"creating_since": time.time() - 100}
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    assert settle_slot(pool, _ended_job(**fields), hold_seconds=600) is not kept
    holders = pool.holders()
    assert ("job-a" in holders) is kept
    if kept:
        # Held for the hold from when the task may have started: the create's sending.
        started = fields.get("creating_since") or time.time()
        assert holders["job-a"].until == pytest.approx(started + 600, abs=5)


class RaceOnJoin:
    """The slots table, with `race()` run just before the first wait entry is written: another
    function's release landing between a re-join's holder check and its write."""

    def __init__(self, table, race) -> None:
        self._table = table
        self._race = race

    def __getattr__(self, name):
        return getattr(self._table, name)

    def update_item(self, **kwargs):
        if self._race and kwargs["Key"]["entry"].startswith("wait#"):
            race, self._race = self._race, None
            race()
        return self._table.update_item(**kwargs)


def test_a_hand_over_that_lands_while_the_job_joins_again_is_not_lost(slots_table, pool, tokens):
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    pool.acquire("job-c", 3.0, "tok-c1", 3600)
    tokens.ended.add("tok-c1")  # its heartbeat expired: the execution joins again
    # Meanwhile job-a's release hands job-c the slot, on the token whose wait had ended.
    joining = SlotPool(
        RaceOnJoin(slots_table, lambda: pool.release("job-a")), tokens, "evolink", limit=2
    )
    assert joining.acquire("job-c", 3.0, "tok-c2", 3600) is True
    assert tokens.resumed[-1] == "tok-c2"  # not left holding a slot nobody uses
    assert set(pool.holders()) == {"job-b", "job-c"} and pool.waiters() == []


def test_a_throttled_hand_over_does_not_fail_the_release_and_is_served_later(pool, tokens):
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    pool.acquire("job-c", 3.0, "tok-c", 3600)
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendTaskSuccess"
    )
    real_send = tokens.send_task_success

    def throttle(**kwargs):
        raise throttled

    tokens.send_task_success = throttle
    assert pool.release("job-a") is True  # the job giving the slot back goes on
    tokens.send_task_success = real_send
    assert "tok-c" not in tokens.resumed
    pool.release("job-b")  # the next release (or the reconciler's dispatch) serves job-c
    assert "tok-c" in tokens.resumed
    assert set(pool.holders()) == {"job-c"} and pool.waiters() == []


def test_a_half_written_line_entry_never_stops_a_release_or_the_line(pool, tokens, slots_table):
    # The chaos test's cause of `internal_error` after a paid task: the local stack's DynamoDB
    # let a reader see a waiter whose update had stored only its key, and dispatch raised
    # KeyError inside Finalize's release. The line now skips what is not a whole waiter.
    pool.acquire("job-a", 1.0, "tok-a", 3600)
    pool.acquire("job-b", 2.0, "tok-b", 3600)
    slots_table.put_item(Item={"pool": "evolink", "entry": "wait#00000000002.500000#job-x"})
    pool.acquire("job-c", 3.0, "tok-c", 3600)
    assert [w.job_id for w in pool.waiters()] == ["job-c"]
    assert pool.release("job-a") is True
    assert "tok-c" in tokens.resumed and set(pool.holders()) == {"job-b", "job-c"}


def test_a_bug_in_the_hand_over_never_fails_the_job_that_gives_its_slot_back(pool, monkeypatch):
    pool.acquire("job-a", 1.0, "tok-a", 3600)

    def broken_dispatch():
        raise KeyError("job_id")

    monkeypatch.setattr(pool, "dispatch", broken_dispatch)
    assert pool.release("job-a") is True
    assert pool.holders() == {}
