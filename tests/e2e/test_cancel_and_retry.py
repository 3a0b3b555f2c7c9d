"""`dropcut cancel` and `dropcut retry` against the real local stack (the jobs API's AWS_IAM
routes called as a user would, signed with the user's credentials and checked for real; the
real state machine, the slot line, the simulator): a cancelled job ends with a `cancelled`
report that says whether the provider bills it, leaves the line or gives its slot back, and
publishes one `cancelled` event; a retried job runs the same input version again as a new,
linked job, once; a caller who may not upload the input gets 403 and nothing changes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from typer.testing import CliRunner, Result

from devstack.local_app import LocalApp, local_app
from devstack.media import make_sample_video
from devstack.schema import JOB_EVENT_SCHEMA_PATH
from dropcut.model.jobs import job_id_for
from dropcut_cli.app import app as cli
from tests.e2e.conftest import code_root

pytestmark = [pytest.mark.own_app, pytest.mark.usefixtures("wide_console")]

#: One provider slot, so a second job waits in the backlog; a short deadline, so a task that never
#: ends gives its slot back within the test.
DEADLINE_SECONDS = 10
SCHEMA = json.loads(JOB_EVENT_SCHEMA_PATH.read_text())
runner = CliRunner()


@pytest.fixture(scope="module")
def one_slot_app() -> Iterator[LocalApp]:
    parameters = {
        "ProviderConcurrency": "1",
        "JobDeadlineSeconds": str(DEADLINE_SECONDS),
        "NotificationEmailFor": "job",  # the tests read each job's ending from the email rule
    }
    with local_app("evolink", parameters, code_root=code_root()) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(one_slot_app: LocalApp) -> None:
    one_slot_app.simulator.reset(config=True)
    one_slot_app.simulator.configure(task_seconds=1.5, queue_seconds=0.2)


#: The local stack's placeholder credentials: the account's root (devstack.iam_auth).
PLACEHOLDER = Credentials("test", "test")


def dropcut(app: LocalApp, *args: str, credentials: Credentials = PLACEHOLDER) -> Result:
    """The command line as a user with `credentials` runs it (only those: no profile, no
    session token from the environment)."""
    env = {
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        "AWS_SESSION_TOKEN": credentials.token,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return runner.invoke(cli, ["--endpoint-url", app.stack.endpoint_url, *map(str, args)], env=env)


def _record(app: LocalApp, job_id: str) -> dict[str, Any]:
    [found] = [job for job in app.jobs() if job["job_id"] == job_id]
    return found


def _cancelled_event(app: LocalApp, job_id: str) -> dict[str, Any]:
    [event] = app.wait_for_job_events(job_id, count=1)
    assert event["detail-type"] == "Job Cancelled"
    jsonschema.validate(event["detail"], SCHEMA)
    return dict(event["detail"])


def test_cancel_in_line_and_at_the_provider_then_the_slot_goes_to_the_next_job(
    one_slot_app: LocalApp, clip: bytes
) -> None:
    app = one_slot_app
    app.put("inbox/cancel/never.mp4", clip, metadata={"prompt": "sepia [sim:never]"})
    never = app.wait_for_job("inbox/cancel/never.mp4", lambda j: j.get("task_id") is not None)
    app.put("inbox/cancel/next.mp4", clip, metadata={"prompt": "sepia"})
    app.put("inbox/cancel/regret.mp4", clip, metadata={"prompt": "invert"})
    regret = app.wait_for_job("inbox/cancel/regret.mp4", lambda j: j["status"] == "queued")
    deadline = time.monotonic() + 30
    while len(app.jobs_queued()) < 2:
        assert time.monotonic() < deadline, "the two jobs were not queued"
        time.sleep(0.2)

    # Queued: nothing was sent to the provider, and it leaves the backlog.
    in_line = dropcut(app, "cancel", "cancel/regret.mp4")
    assert in_line.exit_code == 0, in_line.output
    assert "cancelled" in in_line.output and "nothing is billed" in in_line.output
    assert "errors/cancel/regret.mp4.error.json" in in_line.output
    assert regret["job_id"] not in app.jobs_queued()
    report = app.wait_for_ending("inbox/cancel/regret.mp4").error
    assert (report["status"], report["reason"]) == ("cancelled", "cancelled")
    detail = _cancelled_event(app, regret["job_id"])
    assert detail["reason"] == "cancelled" and "nothing is billed" in detail["advice"]
    assert _record(app, regret["job_id"])["cancel_requested_by"]

    # At the provider: the task keeps running (no provider documents a cancel) and is billed;
    # the report says so, and the slot stays held until the task can have ended.
    at_provider = dropcut(app, "cancel", never["job_id"], "--json")
    assert at_provider.exit_code == 0, at_provider.output
    answer = json.loads(at_provider.stdout)
    assert answer["cancel"]["outcome"] == "cancelled"
    assert answer["cancel"]["billed"] is True and answer["cancel"]["slot_held"] is True
    assert answer["report"]["status"] == "cancelled"
    assert "keeps running and is billed" in answer["report"]["advice"]
    assert never["task_id"] in answer["report"]["message"]
    assert _cancelled_event(app, never["job_id"])["provider"] == "evolink"
    assert app.slot_holders()[never["job_id"]].until is not None
    waiting = app.job("inbox/cancel/next.mp4")
    assert waiting is not None and app.jobs_queued() == [waiting["job_id"]]

    time.sleep(DEADLINE_SECONDS + 0.5)
    reconciled = app.stack.fire_schedule("ReconcileFunction")
    assert reconciled["slots_reclaimed"] == [never["job_id"]]
    assert app.wait_for_ending("inbox/cancel/next.mp4").succeeded
    assert app.simulator.stats()["tasks_created"] == 2  # never and next; regret cost nothing
    # One ending each: the reconciler found nothing more to end.
    assert reconciled["ended"] == []

    again = dropcut(app, "cancel", never["job_id"])
    assert again.exit_code == 1
    assert "not cancelled" in again.output and "ended already" in again.output


def test_retry_of_a_failed_job_creates_one_new_task_and_succeeds(
    one_slot_app: LocalApp, clip: bytes
) -> None:
    app = one_slot_app
    key = "inbox/retry/clip.mp4"
    app.simulator.configure(credits=0)  # an empty provider account: 402, no task
    put = app.put(key, clip, metadata={"prompt": "sepia"})
    failed = app.wait_for_ending(key)
    assert failed.error["reason"] == "provider_out_of_credits"
    old = app.job(key)
    assert old is not None
    app.simulator.configure(credits=None)  # the operator topped it up

    asked = dropcut(app, "retry", "retry/clip.mp4")
    assert asked.exit_code == 2
    assert "1 new paid task(s) at evolink" in asked.output and "--yes" in asked.output
    assert app.simulator.stats()["tasks_created"] == 0

    retried = dropcut(app, "retry", "retry/clip.mp4", "--yes", "--wait")
    assert retried.exit_code == 0, retried.output
    assert "outbox/retry/clip.edited.mp4" in retried.output
    assert app.simulator.stats()["tasks_created"] == 1
    new = app.job(key)
    assert new is not None and new["job_id"] == old["job_id"] + "-r2"
    assert (new["retry_of"], new["version"], new["status"]) == (
        old["job_id"],
        put["VersionId"],
        "succeeded",
    )
    assert _record(app, old["job_id"])["retried_by"] == new["job_id"]
    assert app.keys("inbox/retry/") == [key]  # nothing uploaded again

    twice = dropcut(app, "retry", old["job_id"], "--yes")
    assert twice.exit_code == 1 and "retried already" in twice.output
    after_success = dropcut(app, "retry", "retry/clip.mp4", "--yes")
    assert after_success.exit_code == 1 and "succeeded" in after_success.output
    assert app.simulator.stats()["tasks_created"] == 1


def test_a_part_id_is_refused_by_cancel_and_retry_with_its_jobs_id(
    one_slot_app: LocalApp, tmp_path: Path
) -> None:
    app = one_slot_app
    key = "inbox/parts/long.mp4"
    long_clip = Path(make_sample_video(tmp_path / "long.mp4", seconds=14.0, width=720, height=720))
    put = app.put(key, long_clip.read_bytes(), metadata={"prompt": "sepia"})
    job_id = job_id_for(app.bucket, key, put["VersionId"])
    job = app.wait_for_job(key, lambda j: len(j.get("part_ids") or []) > 1, timeout=120)
    part = job["part_ids"][0]

    cancelled = dropcut(app, "cancel", part)
    assert cancelled.exit_code == 1, cancelled.output
    assert f"dropcut cancel {job_id}" in cancelled.output
    retried = dropcut(app, "retry", part, "--yes")
    assert retried.exit_code == 1, retried.output
    assert f"dropcut retry {job_id}" in retried.output

    ending = app.wait_for_ending(key, timeout=180)  # the job went on, untouched
    assert ending.succeeded, ending.error
    assert [j["job_id"] for j in app.jobs() if j["key"] == key] == [job_id]


def test_retry_is_refused_while_the_job_runs_and_runs_a_cancelled_one(
    one_slot_app: LocalApp, clip: bytes
) -> None:
    app = one_slot_app
    key = "inbox/retry-running/clip.mp4"
    app.put(key, clip, metadata={"prompt": "sepia [sim:seconds=600]"})
    running = app.wait_for_job(key, lambda j: j.get("task_id") is not None)
    refused = dropcut(app, "retry", key, "--yes")
    assert refused.exit_code == 1
    assert "still running" in refused.output and "dropcut cancel" in refused.output

    assert dropcut(app, "cancel", key).exit_code == 0
    retried = dropcut(app, "retry", running["job_id"], "--yes", "--json")
    assert retried.exit_code == 0, retried.output
    new_id = json.loads(retried.stdout)["retry"]["new_job_id"]
    assert new_id == running["job_id"] + "-r2"
    # Its slot is still held for the cancelled task: the retry waits in the backlog, unpaid;
    # cancel it there, then the reconciler's pass gives the held slot back.
    app.wait_for_job(key, lambda j: j["job_id"] == new_id and j["status"] == "queued")
    assert dropcut(app, "cancel", new_id).exit_code == 0
    assert app.simulator.stats()["tasks_created"] == 1
    time.sleep(DEADLINE_SECONDS + 0.5)
    app.stack.fire_schedule("ReconcileFunction")
    assert app.slot_holders() == {}
    assert app.jobs_in_line() == [] and app.jobs_queued() == []


def _uploader(app: LocalApp, name: str, prefix: str) -> tuple[str, Credentials]:
    """An IAM user (in the local stack's moto) who may upload under `prefix`: its ARN and key."""
    iam = app.stack.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    statement = {
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{app.bucket}/{prefix}*",
    }
    iam.put_user_policy(
        UserName=name,
        PolicyName="upload",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def _post(url: str, credentials: Credentials | None) -> httpx.Response:
    request = AWSRequest(method="POST", url=url, data=b"")
    if credentials is not None:
        SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return httpx.post(url, headers=dict(request.headers.items()), content=b"")


def test_a_caller_outside_the_prefix_gets_403_from_cancel_and_retry_and_nothing_changes(
    one_slot_app: LocalApp, clip: bytes
) -> None:
    app = one_slot_app
    alice_arn, alice = _uploader(app, "alice", "inbox/actors/alice/")
    bob_arn, bob = _uploader(app, "bob", "inbox/actors/bob/")
    key = "inbox/actors/alice/clip.mp4"
    app.put(key, clip)  # no prompt: the job waits for its manifest (no slot, nothing paid)
    waiting = app.wait_for_job(key, lambda j: j["status"] == "waiting_for_manifest")
    job_id = waiting["job_id"]
    api = app.stack.outputs["JobsApiUrl"]
    assert api == app.stack.http_api.url  # type: ignore[union-attr]

    # Not signed, or signed with a wrong secret: API Gateway's 403; the function never runs.
    assert _post(f"{api}/jobs/{job_id}/cancel", None).status_code == 403
    wrong = Credentials(bob.access_key, "not-bobs-secret")
    answer = _post(f"{api}/jobs/{job_id}/cancel", wrong)
    assert answer.status_code == 403 and "signature" in answer.json()["message"]

    # Bob is who he says, but may not upload under alice/: 403 from cancel, nothing changes.
    refused = dropcut(app, "cancel", job_id, credentials=bob)
    assert refused.exit_code == 1, refused.output
    assert "refused (403)" in refused.output and bob_arn in refused.output
    as_json = dropcut(app, "cancel", key.removeprefix("inbox/"), "--json", credentials=bob)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["cancel"]["outcome"] == "refused"
    assert _record(app, job_id) == waiting
    assert app.keys("errors/actors/") == []
    assert not [e for e in app.job_events() if e["detail"]["job_id"] == job_id]

    # Alice may: the record names her as AWS authenticated her.
    cancelled = dropcut(app, "cancel", job_id, "--json", credentials=alice)
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(cancelled.stdout)["cancel"]["outcome"] == "cancelled"
    assert _record(app, job_id)["cancel_requested_by"] == alice_arn
    assert _cancelled_event(app, job_id)["message"].startswith(f"cancelled by {alice_arn}")

    # Retry: 403 for bob (no new job, the old one unclaimed); alice may (-r2).
    retry_refused = dropcut(app, "retry", job_id, "--yes", credentials=bob)
    assert retry_refused.exit_code == 1 and "refused (403)" in retry_refused.output
    after = _record(app, job_id)
    assert "retried_by" not in after and job_id + "-r2" not in {j["job_id"] for j in app.jobs()}
    # Alice's retry is admitted: the new job records her (it waits for its manifest again).
    dropcut(app, "retry", job_id, "--yes", credentials=alice)
    new = _record(app, job_id + "-r2")
    assert (new["retry_of"], new["retry_requested_by"]) == (job_id, alice_arn)
    assert _record(app, job_id)["retried_by"] == new["job_id"]
    assert app.simulator.stats()["tasks_created"] == 0


def test_an_input_deleted_while_its_job_waits_in_line_ends_input_gone_unpaid(
    one_slot_app: LocalApp, clip: bytes
) -> None:
    """Issue 26, item 5: the input checked right before its task is created; a deleted version
    and a deleted key (a delete marker: the version stays) both end the job, nothing sent."""
    app = one_slot_app
    app.put("inbox/gone/holder.mp4", clip, metadata={"prompt": "sepia [sim:seconds=60]"})
    app.wait_for_job("inbox/gone/holder.mp4", lambda j: j.get("task_id") is not None)
    waiting: dict[str, tuple[str, str]] = {}
    for name in ("version", "key"):
        key = f"inbox/gone/{name}.mp4"
        version = app.put(key, clip, metadata={"prompt": "sepia"})["VersionId"]
        waiting[name] = (key, version)
        app.wait_for_job(key, lambda j: j["status"] == "queued")
    app.s3.delete_object(
        Bucket=app.bucket, Key=waiting["version"][0], VersionId=waiting["version"][1]
    )
    app.s3.delete_object(Bucket=app.bucket, Key=waiting["key"][0])
    app.simulator.hurry()  # the holder's task ends: the slot goes to the deleted inputs' jobs

    for key, version in waiting.values():
        ending = app.wait_for_ending_of(job_id_for(app.bucket, key, version))
        report = ending.error
        assert (report["status"], report["reason"]) == ("failed", "input_gone"), report
        assert key in report["message"] and "nothing was sent" in report["message"]
        assert "upload the video again" in report["advice"]
    assert app.wait_for_ending("inbox/gone/holder.mp4").succeeded
    assert app.simulator.stats()["tasks_created"] == 1  # the holder's alone
