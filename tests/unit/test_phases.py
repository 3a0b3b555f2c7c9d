"""The stored phase: one table of moves (dropcut.model.phases.MOVES), walked here, enforced by the
jobs table's conditional write (JobStore.move_phase), and what the command line shows and
filters on."""

from __future__ import annotations

import itertools

import pytest

from dropcut.aws.job_store import JobStore
from dropcut.model.jobs import JobStatus
from dropcut.model.phases import ENDINGS, MOVES, JobPhase, parse_phase, sources_of

#: The way a job goes when all goes well, one part or several.
ONE_PART = [
    JobPhase.RECEIVED,
    JobPhase.IN_LINE,
    JobPhase.AT_PROVIDER,
    JobPhase.STORING,
    JobPhase.STITCHING,
    JobPhase.DONE,
]
SPLIT_JOB = [JobPhase.RECEIVED, JobPhase.PREPARING, JobPhase.EDITING, JobPhase.STITCHING]
A_PART = [JobPhase.RECEIVED, JobPhase.IN_LINE, JobPhase.AT_PROVIDER, JobPhase.STORING]


def test_the_table_covers_every_phase_and_every_ending_is_reachable_from_the_start():
    assert set(MOVES) == set(JobPhase)
    reached, frontier = {JobPhase.WAITING_FOR_MANIFEST, JobPhase.RECEIVED}, [JobPhase.RECEIVED]
    while frontier:
        for target in MOVES[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(JobPhase)
    for ending in ENDINGS - {JobPhase.FAILED}:
        assert not MOVES[ending], f"{ending} is an ending"


@pytest.mark.parametrize("phase", sorted(set(JobPhase) - ENDINGS))
def test_every_phase_that_has_not_ended_can_fail_or_be_cancelled(phase):
    assert {JobPhase.FAILED, JobPhase.CANCELLED} <= MOVES[phase]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (JobPhase.STITCHING, JobPhase.IN_LINE),
        (JobPhase.DONE, JobPhase.FAILED),
        (JobPhase.STORING, JobPhase.IN_LINE),
        (JobPhase.AT_PROVIDER, JobPhase.RECEIVED),
        (JobPhase.EDITED, JobPhase.AT_PROVIDER),
        (JobPhase.CANCELLED, JobPhase.RECEIVED),
    ],
)
def test_the_store_refuses_a_move_the_table_does_not_allow(stored_job, source, target):
    store, job_id = stored_job(phase=source)
    assert source not in sources_of(target)
    assert store.move_phase(job_id, target) is False
    assert store.require(job_id).phase is source


def test_the_store_walks_a_job_and_a_part_through_every_allowed_move(stored_job):
    store, job_id = stored_job()
    assert store.require(job_id).phase is JobPhase.RECEIVED  # from its status, at creation
    for phase in ONE_PART[1:]:
        assert store.move_phase(job_id, phase), phase
    assert store.require(job_id).phase is JobPhase.DONE
    for path in (SPLIT_JOB, A_PART):
        for source, target in itertools.pairwise(path):
            assert target in MOVES[source], (source, target)
    assert JobPhase.EDITED in MOVES[JobPhase.STORING]


def test_a_record_from_before_phases_may_move_and_an_unknown_job_is_not_created(jobs_table):
    store = JobStore(jobs_table)
    assert store.move_phase("job-" + "0" * 40, JobPhase.IN_LINE) is False
    assert store.get("job-" + "0" * 40) is None


def test_a_refused_job_restarted_by_a_new_manifest_is_received_again(stored_job):
    store, job_id = stored_job(status=JobStatus.FAILED, error_reason="input_invalid")
    assert store.require(job_id).phase is JobPhase.FAILED
    assert store.move_phase(job_id, JobPhase.RECEIVED)


def test_ls_takes_the_phase_as_ls_shows_it():
    assert parse_phase("in line") is parse_phase("in_line") is JobPhase.IN_LINE
    assert parse_phase("At Provider") is JobPhase.AT_PROVIDER
    assert parse_phase("succeeded") is JobPhase.DONE  # the status people know
    assert JobPhase.IN_LINE.label == "in line"
    with pytest.raises(ValueError, match="one of: waiting for manifest, queued, received"):
        parse_phase("running")


def test_in_status_reads_the_index_oldest_first_within_the_bounds_across_pages(jobs_table):
    """JobStore.in_status is the one home of the by_status query (the reconciler and the
    command line both read it); the index comes from template.yaml."""
    from dropcut.model.jobs import JobRecord, job_id_for

    store = JobStore(jobs_table)
    created = [1000.0 + n for n in range(30)]
    for n, at in enumerate(created):
        store.create(
            JobRecord(
                job_id=job_id_for("media", f"inbox/{n}.mp4", "v1"),
                status=JobStatus.FAILED if n % 3 == 0 else JobStatus.RECEIVED,
                bucket="media",
                key=f"inbox/{n}.mp4",
                version="v1",
                created_at=at,
            )
        )
    received = [r.created_at for r in store.in_status(JobStatus.RECEIVED)]
    assert received == [at for n, at in enumerate(created) if n % 3]
    assert [r.created_at for r in store.in_status(JobStatus.FAILED, created_before=1009.0)] == [
        1000.0,
        1003.0,
        1006.0,
    ]
    after = [r.created_at for r in store.in_status(JobStatus.FAILED, created_after=1020.0)]
    assert after == [1021.0, 1024.0, 1027.0]
    between = store.in_status(JobStatus.RECEIVED, created_after=1010.0, created_before=1013.0)
    assert [r.created_at for r in between] == [1010.0, 1011.0]
    # page by page: a page of 4 items still yields all of them
    jobs_table.meta.client.meta.events.register(
        "before-parameter-build.dynamodb.Query",
        lambda params, **_: params.setdefault("Limit", 4),
    )
    assert len(list(store.in_status(JobStatus.RECEIVED))) == 20
