"""A job and a part are two types on one table: JobRecord is a PartRecord (a job that is not
split is its own one part) with the job's own fields; the steps inside the Map read parts."""

from __future__ import annotations

import inspect

import pytest

from dropcut.aws.job_store import JobStore
from dropcut.model.jobs import JobRecord, JobStatus, PartRecord
from dropcut.steps import acquire_slot, arm_callback, check_status, finalize, start_task, webhook

#: What only a job has: its plan and parts, its output or report, its manifest, cancel, retry.
JOB_ONLY = {
    "manifest_version",
    "output_key",
    "result_manifest_key",
    "error_report_key",
    "problems",
    "notices",
    "plan",
    "part_ids",
    "prepared",
    "contact_sheet_key",
    "cancel_requested_by",
    "cancel_requested_at",
    "retry_of",
    "retried_by",
    "retry_requested_by",
    "eta",
    "batch_id",
    "start_deadline",
}


def test_a_job_is_its_one_part_plus_the_jobs_own_fields():
    assert issubclass(JobRecord, PartRecord)
    assert set(JobRecord.model_fields) - set(PartRecord.model_fields) == JOB_ONLY


def test_a_one_part_job_reads_as_its_part_and_a_split_jobs_part_as_itself(stored_job):
    store, job_id = stored_job(task_id="task-1", plan={"kind": "as_is"})
    part = store.require_part(job_id)
    assert type(part) is PartRecord
    assert (part.job_id, part.task_id) == (job_id, "task-1")
    assert not hasattr(part, "plan")
    split = PartRecord(
        job_id=f"{job_id}-p01",
        status=JobStatus.RECEIVED,
        bucket="media",
        key="inbox/a.mp4",
        version="v1",
        part_of=job_id,
        part_index=1,
    )
    assert store.create(split) and not store.create(split)
    assert store.require_part(split.job_id).part_of == job_id
    with pytest.raises(LookupError):
        store.require_part(f"{job_id}-p02")


@pytest.mark.parametrize(
    "module", [acquire_slot, arm_callback, start_task, check_status, finalize, webhook]
)
def test_the_steps_inside_the_map_read_parts_not_jobs(module):
    source = inspect.getsource(module)
    assert "require_part(" in source or "store.part(" in source
    assert "JobRecord" not in source
    assert ".require(" not in source


def test_records_written_before_the_rename_still_read(jobs_table):
    store = JobStore(jobs_table)
    jobs_table.put_item(
        Item={
            "job_id": "job-" + "0" * 40,
            "status": "running",
            "bucket": "media",
            "key": "inbox/a.mp4",
            "version": "v1",
            "units": ["job-" + "0" * 40 + "-p00", "job-" + "0" * 40 + "-p01"],
        }
    )
    assert store.require("job-" + "0" * 40).part_ids == [
        "job-" + "0" * 40 + "-p00",
        "job-" + "0" * 40 + "-p01",
    ]
