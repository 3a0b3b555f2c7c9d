"""Unit tests run in-process with no network: sockets are blocked (moto mocks need none)."""

import pytest
from botocore.exceptions import ClientError
from pytest_socket import disable_socket, enable_socket

# Powertools' Tracer opens X-Ray's UDP emitter socket when it is first built: build it here, at
# collection, before sockets are blocked, whichever test first imports a module that logs.
import dropcut.observability  # noqa: F401
from dropcut.settings import BatchSettings, Settings, SlotSettings


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


def _create_from_template(dynamodb, logical_id: str, name: str):
    """A table in moto with the properties template.yaml gives `logical_id`."""
    from devstack.tables import table_from_template

    return table_from_template(dynamodb, logical_id, name)


@pytest.fixture(autouse=True)
def _metrics_namespace(monkeypatch):
    """The namespace the template gives every function (count_failure's single metric needs it)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "dropcut")


@pytest.fixture
def aws():
    """moto in-process (no sockets): yields a DynamoDB resource."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.resource("dynamodb", region_name="us-east-1")


@pytest.fixture
def jobs_table(aws):
    """The jobs table, created in moto (in-process) from template.yaml's JobsTable properties."""
    return _create_from_template(aws, "JobsTable", "jobs")


@pytest.fixture
def batches_table(aws):
    """The batches table, created in moto from template.yaml's BatchesTable properties."""
    return _create_from_template(aws, "BatchesTable", "batches")


@pytest.fixture
def slots_table(aws):
    """The slots table, from template.yaml's SlotsTable properties."""
    return _create_from_template(aws, "SlotsTable", "slots")


@pytest.fixture
def stored_job(jobs_table):
    """`stored_job(**fields)`: put the job of inbox/a.mp4 (version v1, evolink, prompt "sepia"),
    with `fields` changed, in the jobs table; returns (store, job id)."""
    from dropcut.aws.job_store import JobStore
    from dropcut.model.jobs import JobRecord, JobSpec, JobStatus, job_id_for

    def store_one(**fields):
        store = JobStore(jobs_table)
        record = JobRecord(
            **{
                "job_id": job_id_for("media", "inbox/a.mp4", "v1"),
                "status": JobStatus.RECEIVED,
                "bucket": "media",
                "key": "inbox/a.mp4",
                "version": "v1",
                "spec": JobSpec(prompt="sepia"),
                "provider": "evolink",
                **fields,
            }
        )
        store.create(record)
        return store, record.job_id

    return store_one


class StepFunctionsTokens:
    """Step Functions' task tokens as SendTaskSuccess sees them: each can be resumed once; a
    token whose wait ended answers TaskTimedOut. Executions started (an admission from the
    backlog, Submit's restart) are recorded by name in `started`; a name starts once."""

    class exceptions:
        class ExecutionAlreadyExists(Exception): ...

    def __init__(self) -> None:
        self.resumed: list[str] = []
        self.ended: set[str] = set()
        self.started: list[str] = []

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> None:
        if name in self.started:
            raise self.exceptions.ExecutionAlreadyExists(name)
        self.started.append(name)

    def send_task_success(self, taskToken: str, output: str) -> None:
        if taskToken in self.ended or taskToken in self.resumed:
            raise ClientError(
                {"Error": {"Code": "TaskTimedOut", "Message": "expired"}}, "SendTaskSuccess"
            )
        self.resumed.append(taskToken)


@pytest.fixture
def tokens() -> StepFunctionsTokens:
    return StepFunctionsTokens()


@pytest.fixture
def pool(slots_table, jobs_table, tokens, settings):
    """The evolink slot pool, 2 slots, in moto, with its backlog; hand-overs resume tokens in
    `tokens`, admissions start executions recorded in `tokens.started`."""
    from dropcut.aws.backlog import Backlog
    from dropcut.aws.executions import Executions
    from dropcut.aws.job_store import JobStore
    from dropcut.aws.slots import Admission, SlotPool

    admission = Admission(
        Backlog(slots_table, "evolink"),
        JobStore(jobs_table),
        Executions(tokens, settings.state_machine_arn),  # type: ignore[arg-type]
        settings.layout,
    )
    return SlotPool(slots_table, tokens, "evolink", limit=2, admission=admission)


@pytest.fixture
def settings() -> Settings:
    """The stack's settings: bucket "media", table "jobs", evolink (never reached: no network)."""
    return Settings(
        bucket="media",
        jobs_table="jobs",
        inbox_prefix="inbox/",
        outbox_prefix="outbox/",
        errors_prefix="errors/",
        provider="evolink",
        provider_base_url="https://provider.invalid",
        provider_model=None,
        provider_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:key",
        allow_insecure_urls=False,
        slots=SlotSettings(
            table="slots", limit=2, max_wait_seconds=3600, lost_task_hold_seconds=600
        ),
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:stack-job",
        batches=BatchSettings(table="batches", quiet_seconds=600),
    )


@pytest.fixture
def media_bucket(aws, settings):
    """The media bucket (versioned, as the template makes it) in moto; yields an S3 client."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=settings.bucket)
    s3.put_bucket_versioning(Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"})
    return s3


@pytest.fixture
def uploaded_job(stored_job, media_bucket):
    """`uploaded_job(**fields)`: stored_job's job, with its input inbox/a.mp4 uploaded to the
    media bucket and the record pinned to that upload's version (steps that send or read the
    input check that it is still there: dropcut.aws.storage.input_absence)."""

    def store_one(**fields):
        answer = media_bucket.put_object(Bucket="media", Key="inbox/a.mp4", Body=b"input")
        return stored_job(**{"version": answer["VersionId"], **fields})

    return store_one


@pytest.fixture
def submit_deps_of(jobs_table, media_bucket, settings, pool):
    """`submit_deps_of(**fields)`: Submit's dependencies on moto (the media bucket, the jobs
    table, `pool` and its backlog; executions started land in `tokens.started`), with `fields`
    changed; no default prompt, no DNS (sockets are blocked), no job events."""
    from dropcut.aws.job_events import NO_JOB_EVENTS
    from dropcut.aws.job_store import JobStore
    from dropcut.settings import PlanSettings
    from dropcut.steps.submit import SubmitDeps

    def no_lookups(host: str, port: int) -> list[str]:
        raise OSError("no DNS here")

    def build(**fields):
        admission = pool.admission
        defaults = {
            "s3": media_bucket,
            "store": JobStore(jobs_table),
            "executions": admission.executions,
            "slots": pool,
            "settings": settings,
            "default_prompt": "",
            "resolve": no_lookups,
            "events": NO_JOB_EVENTS,
            "plan": PlanSettings(),
            "batches": None,
        }
        return SubmitDeps(**{**defaults, **fields})

    return build
