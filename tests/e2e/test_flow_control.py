"""Flow control on the real template: the inbox queue's partial batch failures, the provider
slots (jobs beyond the limit wait in the backlog at no cost), and the reconciler's repairs."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from devstack.local_app import LocalApp
from dropcut.model.jobs import job_id_for


def test_a_bad_message_in_a_batch_is_reported_alone(app: LocalApp, clip):
    key = "inbox/flow/batch.mp4"
    put = app.put(key, clip, metadata={"prompt": "warm"})
    batch = app.submit_event(app.inbox_event(key, put["VersionId"]))
    bad = {**batch["Records"][0], "messageId": "bad-message", "body": "{not json"}
    batch["Records"].append(bad)
    answer = app.stack.invoke("SubmitFunction", batch)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad-message"}]}
    assert app.wait_for_ending(key).succeeded


def test_jobs_beyond_the_limit_wait_in_the_backlog_without_an_execution(app: LocalApp, clip):
    limit = int(app.stack.function_env("AcquireSlotFunction")["PROVIDER_CONCURRENCY"])
    keys = [f"inbox/flow/line-{i}.mp4" for i in range(limit + 3)]
    app.simulator.configure(task_seconds=3600.0)  # the tasks stay open until hurried below
    acquire = app.stack.pool("AcquireSlotFunction")
    before = acquire.invocations
    for key in keys:
        app.put(key, clip, metadata={"prompt": "sepia"})

    # Busy to the limit, the rest queued.
    deadline = time.monotonic() + 120
    while not (app.simulator.stats()["in_flight"] == limit and len(app.jobs_queued()) == 3):
        assert time.monotonic() < deadline, (app.simulator.stats()["in_flight"], app.jobs_queued())
        time.sleep(0.2)
    # Queued jobs have no execution (no state, no Lambda, no clock), and none waits in line.
    sfn = app.stack.client("stepfunctions")
    prefix = app.stack.state_machine_arns()["JobStateMachine"].replace(
        ":stateMachine:", ":execution:"
    )
    for job_id in app.jobs_queued():
        with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
            sfn.describe_execution(executionArn=f"{prefix}:{job_id}")
    assert app.jobs_in_line() == []
    app.simulator.configure(task_seconds=0.5)
    app.simulator.hurry()

    endings = [app.wait_for_ending(key, timeout=120) for key in keys]
    assert all(ending.succeeded for ending in endings), [e.error for e in endings]
    stats = app.simulator.stats()
    assert stats["tasks_created"] == len(keys)
    assert stats["max_in_flight"] == limit  # never over the limit
    # Each job's AcquireSlot ran once, finding its slot taken for it at admission.
    assert acquire.invocations - before == len(keys)
    assert app.slot_holders() == {}
    assert app.jobs_queued() == []


def test_the_reconciler_starts_a_job_whose_execution_never_started(app: LocalApp, clip):
    key = "inbox/flow/orphan.mp4"
    # Submit recorded the job, then died before StartExecution: the record is all there is.
    with app.stack.pool("SubmitFunction").held():
        put = app.put(key, clip, metadata={"prompt": "sepia"})
        job_id = job_id_for(app.bucket, key, put["VersionId"])
        table = app.stack.physical_ids["JobsTable"]
        app.stack.client("dynamodb").put_item(
            TableName=table,
            Item={
                "job_id": {"S": job_id},
                "status": {"S": "received"},
                "bucket": {"S": app.bucket},
                "key": {"S": key},
                "version": {"S": put["VersionId"]},
                "provider": {"S": "evolink"},
                "spec": {"M": {"prompt": {"S": "sepia"}}},
                "created_at": {"N": str(Decimal(time.time() - 600))},
                "updated_at": {"N": str(Decimal(time.time() - 600))},
            },
        )
        report = app.stack.fire_schedule("ReconcileFunction")
        assert report["restarted"] == [job_id]
        assert app.wait_for_ending(key).succeeded
    app.stack.drain()  # Submit, let in late, finds the job already done
    assert app.simulator.stats()["tasks_created"] == 1


def test_a_cancelled_job_gets_a_report_and_its_slot_comes_back(app: LocalApp, clip):
    key = "inbox/flow/cancelled.mp4"
    put = app.put(key, clip, metadata={"prompt": "sepia [sim:never]"})
    job = app.wait_for_job(key, lambda j: j.get("task_id") is not None)
    sfn = app.stack.client("stepfunctions")
    execution_arn = (
        app.stack.state_machine_arns()["JobStateMachine"].replace(":stateMachine:", ":execution:")
        + ":"
        + job["job_id"]
    )
    sfn.stop_execution(executionArn=execution_arn, cause="operator cancelled")
    # moto stops an execution when its current wait ends (and calls it FAILED, not ABORTED).
    deadline = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not stop"
        time.sleep(0.5)
    # Young jobs are left alone for a minute (they may be on their way): age this one.
    app.stack.client("dynamodb").update_item(
        TableName=app.stack.physical_ids["JobsTable"],
        Key={"job_id": {"S": job["job_id"]}},
        UpdateExpression="SET created_at = :old",
        ExpressionAttributeValues={":old": {"N": str(time.time() - 600)}},
    )
    report = app.stack.fire_schedule("ReconcileFunction")
    assert report["ended"] == [job["job_id"]]
    ending = app.wait_for_ending(key)
    assert ending.error["reason"] == "execution_ended"
    assert f"({status})" in ending.error["message"]
    assert ending.error["input_version"] == put["VersionId"]
    # Its task never ended at the provider: the slot is kept for the job deadline.
    assert app.slot_holders()[job["job_id"]].until is not None
    time.sleep(float(app.stack.function_env("AcquireSlotFunction")["JOB_DEADLINE_SECONDS"]) + 0.5)
    report = app.stack.fire_schedule("ReconcileFunction")
    assert report["slots_reclaimed"] == [job["job_id"]]
    assert app.slot_holders() == {}
    assert report["slots_in_use"] == 0
