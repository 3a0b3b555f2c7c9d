"""CheckStatus: a task seen ended at the provider gives its slot to the next job at once (it no
longer counts there); a task still running keeps its slot."""

from __future__ import annotations

import time

import pytest

from dropcut.errors import TaskFailed
from dropcut.jobs import JobStatus
from dropcut.providers import ProviderTask, TaskState
from dropcut.tasks import PollPlan, TaskProgress, check_task

PLAN = PollPlan(initial_seconds=1, max_seconds=60, deadline_seconds=600)


class ProviderAnswering:
    """A provider whose status query answers `state`."""

    name = "evolink"

    def __init__(self, state: TaskState) -> None:
        self.state = state

    def get_task(self, task_id: str) -> ProviderTask:
        return ProviderTask(task_id=task_id, state=self.state, provider_status=self.state.value)


def _progress() -> TaskProgress:
    return TaskProgress(
        task_id="task-1",
        provider="evolink",
        state=TaskState.RUNNING,
        wait_seconds=5,
        interval_seconds=5,
        deadline=time.time() + 600,
    )


@pytest.mark.parametrize(
    ("state", "released"),
    [(TaskState.SUCCEEDED, True), (TaskState.FAILED, True), (TaskState.RUNNING, False)],
    ids=["succeeded", "failed", "running"],
)
def test_a_task_seen_ended_hands_its_slot_to_the_next_job(
    stored_job, pool, tokens, state, released
):
    store, job_id = stored_job(status=JobStatus.RUNNING, task_id="task-1")
    pool.acquire(job_id, 1.0, "token-job", 3600)
    pool.acquire("job-b", 2.0, "token-b", 3600)
    pool.acquire("job-c", 3.0, "token-c", 3600)  # in line: the pool has 2 slots

    def check() -> TaskProgress:
        return check_task(
            store, pool, lambda _: ProviderAnswering(state), PLAN, job_id, _progress()
        )

    if state is TaskState.FAILED:
        with pytest.raises(TaskFailed):
            check()
    else:
        assert check().state is state

    assert (job_id in pool.holders()) is not released
    assert ("token-c" in tokens.resumed) is released
    record = store.require(job_id)
    assert record.task_may_be_running is not released  # the job's ending settles the same way
