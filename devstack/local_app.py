"""The whole dropcut application on this machine: provider simulator + local stack from
template.yaml, with the API key secret in place. Used by `make demo`, `make stack`, the
end-to-end tests and the benchmarks."""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from pydantic import SecretStr

from devstack.s3_notifications import s3_event_key
from devstack.simulator import SimConfig, Simulator
from devstack.stack import DevStack
from dropcut.aws.backlog import Backlog
from dropcut.aws.executions import Executions
from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import Admission, Holder, SlotPool
from dropcut.model.callbacks import CallbackSigner
from dropcut.model.jobs import JobStatus, is_job_id, job_id_for
from dropcut.model.layout import BucketLayout

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "sim-key"
SECRET_NAME = "dropcut/provider-api-key"
# A partial ARN (no random suffix): Secrets Manager resolves it by name, so it can be a
# template parameter before the secret exists.
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET_NAME}"
FAST_POLLING = {
    "PollInitialSeconds": "1",
    "PollMaxSeconds": "2",
    "PollGrowthPercent": "150",
    "JobDeadlineSeconds": "60",
    "CallbackSilenceSeconds": "5",
    "InboxRetrySeconds": "30",
}
#: The local stack has an email subscriber, so the template's job endings rule exists; moto
#: sends no email, and the rule's events go to a stand-in queue (`LocalApp.job_events`).
LOCAL_NOTIFICATION_EMAIL = "operator@example.com"
#: The job statuses that are an ending (wait_for_ending).
ENDED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


@dataclass(frozen=True)
class JobEnding:
    """How one input ended: the edited video and its manifest, or an error report."""

    key: str
    output_key: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error_key: str | None = None
    error: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.output_key is not None


@dataclass
class LocalApp:
    stack: DevStack
    simulator: Simulator
    #: The job events read so far from the endings rule's target (see `job_events`).
    delivered_events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bucket(self) -> str:
        return str(self.stack.outputs["MediaBucketName"])

    @property
    def s3(self) -> Any:
        return self.stack.client("s3")

    def put(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {}
        )
        return answer

    def put_manifest(self, video_key: str, manifest: dict[str, Any]) -> dict[str, Any]:
        return self.put(video_key + ".json", json.dumps(manifest).encode())

    def inbox_event(self, key: str, version: str) -> dict[str, Any]:
        """The S3 notification S3 sends to the inbox queue for one object version."""
        event = json.loads((ROOT / "events" / "inbox_notification.json").read_text())
        record = event["Records"][0]["s3"]
        record["bucket"].update(name=self.bucket, arn=f"arn:aws:s3:::{self.bucket}")
        record["object"].update(key=s3_event_key(key), versionId=version)
        document: dict[str, Any] = event
        return document

    def redeliver(self, key: str, version: str, copies: int = 1, delay_seconds: int = 0) -> None:
        """Deliver an object's event to the inbox queue again, as S3's at-least-once delivery may."""
        queue_url = self.stack.physical_ids["InboxQueue"]
        body = json.dumps(self.inbox_event(key, version))
        for _ in range(copies):
            self.stack.client("sqs").send_message(
                QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay_seconds
            )

    def submit_event(self, *notifications: dict[str, Any]) -> dict[str, Any]:
        """The event Lambda gives Submit for a batch of inbox queue messages (for direct invokes)."""
        template = json.loads((ROOT / "events" / "submit.json").read_text())["Records"][0]
        records = [
            {**template, "messageId": str(uuid.uuid4()), "body": json.dumps(notification)}
            for notification in notifications
        ]
        return {"Records": records}

    def slot_pool(self) -> SlotPool:
        """The provider slots of the stack's provider and their backlog, read and written as
        the product does (dropcut.wiring.slot_pool, on the local stack's endpoint)."""
        env = self.stack.function_env("AcquireSlotFunction")
        dynamodb = self.stack.resource("dynamodb")
        table = dynamodb.Table(env["SLOTS_TABLE"])
        sfn = self.stack.client("stepfunctions")
        admission = Admission(
            Backlog(table, env["PROVIDER"]),
            JobStore(dynamodb.Table(env["JOBS_TABLE"])),
            Executions(sfn, env["STATE_MACHINE_ARN"]),
            BucketLayout(
                self.bucket, env["INBOX_PREFIX"], env["OUTBOX_PREFIX"], env["ERRORS_PREFIX"]
            ),
        )
        return SlotPool(
            table, sfn, env["PROVIDER"], int(env["PROVIDER_CONCURRENCY"]), admission=admission
        )

    def slot_holders(self) -> dict[str, Holder]:
        """Jobs holding a provider slot of the stack's provider, by job id."""
        return self.slot_pool().holders()

    def jobs_in_line(self) -> list[str]:
        """Jobs waiting in line for a provider slot, oldest first."""
        return [waiter.job_id for waiter in self.slot_pool().waiters()]

    def jobs_queued(self) -> list[str]:
        """Jobs in the backlog (status queued: no execution yet), oldest first: the product's
        query of the by_status index, not a scan of the table."""
        table = self.stack.resource("dynamodb").Table(str(self.stack.outputs["JobsTableName"]))
        queued = JobStore(table).in_status(JobStatus.QUEUED)
        return [record.job_id for record in queued if record.part_of is None]

    def jobs(self) -> list[dict[str, Any]]:
        """Every job record in the stack's jobs table, as plain Python values (a split job's
        part records are not jobs: see `parts`)."""
        return [record for record in self._records() if "part_of" not in record]

    def parts(self, job_id: str) -> list[dict[str, Any]]:
        """The part records of a split job, in order."""
        found = [record for record in self._records() if record.get("part_of") == job_id]
        return sorted(found, key=lambda record: int(record["part_index"]))

    def job_statuses(self) -> dict[str, tuple[str, str]]:
        """Every job's (input key, status), by job id: a scan that reads only those fields, for
        waits that poll a large table (a burst's) without loading every record."""
        records = self._records("job_id", "key", "status", "part_of")
        return {r["job_id"]: (r["key"], r["status"]) for r in records if "part_of" not in r}

    def _records(self, *attributes: str) -> list[dict[str, Any]]:
        """The jobs table's records (only `attributes` of each, if given)."""
        name = str(self.stack.outputs["JobsTableName"])
        scan: dict[str, Any] = {"TableName": name}
        if attributes:  # each a placeholder: "key" and "status" are reserved words
            scan["ProjectionExpression"] = ", ".join(f"#a{i}" for i in range(len(attributes)))
            scan["ExpressionAttributeNames"] = {f"#a{i}": a for i, a in enumerate(attributes)}
        pages = self.stack.client("dynamodb").get_paginator("scan").paginate(**scan)
        items = [item for page in pages for item in page["Items"]]
        return [_plain(item) for item in items if is_job_id(item["job_id"]["S"])]

    def job(self, video_key: str) -> dict[str, Any] | None:
        """The most recent job record of `video_key`, if there is one."""
        found = self.jobs_of(video_key)
        return max(found, key=lambda job: job["created_at"]) if found else None

    def jobs_of(self, video_key: str) -> list[dict[str, Any]]:
        """The job records of `video_key`: each version's (its id is the product's,
        dropcut.model.jobs.job_id_for) and the retries that followed it (`retried_by`). Read
        by key, not by a scan: tests poll this while the stack works, in the same process as
        moto, and a scan of every record at each poll took a core from the stack under test."""
        pages = self.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=video_key
        )
        versions = [
            version["VersionId"]
            for page in pages
            for version in page.get("Versions", [])
            if version["Key"] == video_key
        ]
        found: list[dict[str, Any]] = []
        for version in versions:
            job_id: str | None = job_id_for(self.bucket, video_key, version)
            while job_id is not None and len(found) < 100:  # a retry chain, bounded
                record = self.record(job_id)
                if record is None:
                    break
                found.append(record)
                job_id = record.get("retried_by")
        return found

    def record(self, job_id: str) -> dict[str, Any] | None:
        """The record of a job (or a part) by its id, as plain Python values."""
        item = self.stack.client("dynamodb").get_item(
            TableName=str(self.stack.outputs["JobsTableName"]), Key={"job_id": {"S": job_id}}
        )
        return _plain(item["Item"]) if "Item" in item else None

    def wait_for_job(
        self, video_key: str, until: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until the job record of `video_key` satisfies `until`; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(video_key)
            if job is not None and until(job):
                return job
            time.sleep(0.2)
        raise TimeoutError(f"the job of {video_key} did not get there within {timeout} s")

    def callback_signer(self) -> CallbackSigner:
        """The stack's callback signer (what StartTask uses), for forging and checking URLs."""
        arn = self.stack.physical_ids["CallbackSigningSecret"]
        secret = self.stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        assert self.stack.http_api is not None
        return CallbackSigner(base_url=self.stack.http_api.url, secret=SecretStr(secret))

    def wait_for_ending(self, video_key: str, timeout: float = 90.0) -> JobEnding:
        """Wait until a job of `video_key` has ended; return how (the newest ending, when
        several versions or retries have one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = [job for job in self.jobs_of(video_key) if job["status"] in ENDED]
            for job in sorted(ended, key=lambda job: job["created_at"], reverse=True):
                return self._ending(job)
            time.sleep(0.2)
        raise TimeoutError(f"no ending for {video_key} within {timeout} s")

    def wait_for_ending_of(self, job_id: str, timeout: float = 90.0) -> JobEnding:
        """Wait until the job `job_id` has ended; return how (for a job whose input version
        is gone, which jobs_of can no longer find)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.record(job_id)
            if job is not None and job["status"] in ENDED:
                return self._ending(job)
            time.sleep(0.2)
        raise TimeoutError(f"no ending for the job {job_id} within {timeout} s")

    def _ending(self, job: dict[str, Any]) -> JobEnding:
        if job["status"] == "succeeded":
            return JobEnding(
                job["key"],
                output_key=job["output_key"],
                result=self.read_json(job["result_manifest_key"]),
            )
        return JobEnding(
            job["key"],
            error_key=job["error_report_key"],
            error=self.read_json(job["error_report_key"]),
        )

    def job_events(self) -> list[dict[str, Any]]:
        """Every job or batch event mailed to NotificationEmail so far, in the order they
        came, as EventBridge sends them (envelope and detail). On the local stack what the
        address would get lands in stand-in queues, read and emptied here: the endings rule's
        (its topic target, in batch mode: moto delivers to SQS targets only) and the topic's
        email subscription's (per job, NotifyFunction publishes to the topic)."""
        deployment = self.stack.deployment
        urls = [
            url
            for url in (
                deployment.event_rule_queues.get("JobEndingsRule", {}).get("email"),
                deployment.topic_email_queues.get("JobEndingsTopic"),
            )
            if url is not None
        ]
        sqs = self.stack.client("sqs")
        for url in urls:
            while messages := sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", []):
                for message in messages:
                    self.delivered_events.append(json.loads(message["Body"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return list(self.delivered_events)

    def wait_for_job_events(
        self, job_id: str, count: int = 1, timeout: float = 15.0, settle: float = 1.0
    ) -> list[dict[str, Any]]:
        """The job events of `job_id` delivered by the endings rule, once there are `count`
        (and `settle` seconds more have brought no other). TimeoutError if fewer come."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.job_events() if e["detail"].get("job_id") == job_id]
            if len(found) >= count:
                time.sleep(settle)
                return [e for e in self.job_events() if e["detail"].get("job_id") == job_id]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} job events of {job_id} came")
            time.sleep(0.1)

    def read_json(self, key: str) -> dict[str, Any]:
        """A JSON object of the media bucket (a report, a summary)."""
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        document: dict[str, Any] = json.loads(body)
        return document

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (low-level shape) as plain Python values."""
    deserializer = TypeDeserializer()
    return {k: deserializer.deserialize(v) for k, v in item.items()}


@contextmanager
def local_app(
    provider: str = "evolink",
    parameters: dict[str, str] | None = None,
    sim_config: SimConfig | None = None,
    *,
    port: int = 0,
    simulator_port: int = 0,
    code_root: Path | None = None,
) -> Iterator[LocalApp]:
    """Start the simulator and the stack (fast polling unless `parameters` say otherwise)."""
    config = sim_config or SimConfig(task_seconds=2.0, queue_seconds=0.3, strict=True)
    config.api_keys = {API_KEY}
    # The local webhook is http://127.0.0.1 (AllowInsecureUrls): a real provider would refuse it.
    config.allow_insecure_callbacks = True
    with Simulator(config, port=simulator_port) as simulator:
        overrides = {
            **FAST_POLLING,
            "Provider": provider,
            "ProviderBaseUrl": simulator.url,
            "ProviderApiKeySecretArn": SECRET_ARN,
            "AllowInsecureUrls": "true",
            "NotificationEmail": LOCAL_NOTIFICATION_EMAIL,
            **(parameters or {}),
        }
        with DevStack(ROOT / "template.yaml", overrides, port=port, code_root=code_root) as stack:
            stack.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=API_KEY)
            yield LocalApp(stack, simulator)


def _in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:`port` (TCP; a closed socket still in
    TIME_WAIT does not count, as the servers themselves bind with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """`make stack`: the local app in the foreground, for manual use from another terminal."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(prog="python -m devstack.local_app", description=main.__doc__)
    parser.add_argument("--port", type=int, default=4566, help="AWS endpoint (moto) port")
    parser.add_argument("--simulator-port", type=int, default=8765)
    parser.add_argument("--provider", choices=["aimlapi", "evolink"], default="evolink")
    parser.add_argument("--task-seconds", type=float, default=5.0, help="simulated edit time")
    parser.add_argument("--param", action="append", default=[], metavar="Key=Value")
    args = parser.parse_args(argv)
    busy = [port for port in (args.port, args.simulator_port) if port and _in_use(port)]
    if busy:
        print(
            f"port {' and '.join(map(str, busy))} already in use on 127.0.0.1 (another "
            f"`make stack`?): stop it, or pick others: make stack PORT=4567 SIMULATOR_PORT=8766 "
            f"(then: dropcut --endpoint-url http://127.0.0.1:4567 ...)",
            file=sys.stderr,
        )
        return 2
    parameters = dict(item.split("=", 1) for item in args.param)
    config = SimConfig(task_seconds=args.task_seconds, queue_seconds=1.0, strict=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with local_app(
        args.provider, parameters, config, port=args.port, simulator_port=args.simulator_port
    ) as app:
        endpoint = app.stack.endpoint_url
        print(
            f"dropcut local stack ready\n"
            f"  AWS endpoint     {endpoint}  (any credentials, region us-east-1)\n"
            f"  jobs API         {app.stack.outputs['JobsApiUrl']}  (cancel, retry: SigV4 "
            f"checked; test/test is the account's root)\n"
            f"  provider ({args.provider}) simulator  {app.simulator.url}\n"
            f"  media bucket     {app.bucket}\n"
            f"  jobs table       {app.stack.outputs['JobsTableName']}\n"
            f"  state machine    {app.stack.outputs['JobStateMachineArn']}\n"
            f"try, from another terminal:\n"
            f"  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1\n"
            f"  aws --endpoint-url {endpoint} s3 cp clip.mp4 s3://{app.bucket}/inbox/clip.mp4 "
            f'--metadata prompt="monochrome"\n'
            f"  aws --endpoint-url {endpoint} s3 ls --recursive s3://{app.bucket}/outbox/\n"
            f"Ctrl-C stops it.",
            flush=True,
        )
        # Scheduled functions (the reconciler) on a clock, once a minute here.
        while not stopped.wait(60):
            for function in app.stack.schedules:
                try:
                    app.stack.fire_schedule(function)
                except Exception as exc:  # keep the stack up; the next run may work
                    print(f"scheduled {function} failed: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
