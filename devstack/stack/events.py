"""The functions' SAM event sources, wired locally once every resource exists:

- S3: bucket notification configurations (S3 -> Lambda, delivered by `devstack.s3_notifications`);
- SQS: a poller per event source, as Lambda's event source mappings poll (`devstack.sqs_events`);
- HttpApi: routes on the local HTTP API (`devstack.http_api`);
- Schedule / ScheduleV2: recorded, not run on a clock: tests and tools fire them
  (`DevStack.fire_schedule`), so runs are ordered.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.exceptions import ClientError

from devstack import http_api as http_api_module
from devstack import sqs_events
from devstack.stack.resources import key_filter
from devstack.template import TemplateError

if TYPE_CHECKING:
    from devstack.stack.provision import Provisioner

LOG = logging.getLogger("devstack.stack")

Wire = Callable[["EventSources", "Provisioner", str, str, dict[str, Any]], None]


class EventHost(Protocol):
    """What the event sources need of the stack (`devstack.stack.DevStack` is one): its account
    and region, its local HTTP API once started, boto3 settings for the pollers' own clients and
    the in-process invoke they deliver batches with."""

    region: str
    account_id: str
    http_api: http_api_module.LocalHttpApi | None

    def boto_settings(
        self, *, read_timeout: float, max_pool_connections: int | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for a boto3 client on the stack's endpoint."""
        ...

    def invoke_direct(self, function_arn: str, event: dict[str, Any]) -> tuple[str, bool]:
        """Invoke by ARN in this process: (payload text, errored)."""
        ...


class EventSources:
    """The stack's event sources: SQS pollers and schedules (S3 and HTTP routes live in moto
    and the local HTTP API once wired)."""

    def __init__(self, stack: EventHost) -> None:
        self.stack = stack
        #: Scheduled functions and their expressions (run them with `DevStack.fire_schedule`).
        self.schedules: dict[str, str] = {}
        #: SQS event source pollers, by "FunctionLogicalId.EventId" (started after deploy).
        self.sqs_pollers: dict[str, sqs_events.SqsPoller] = {}

    def wire(self, p: Provisioner) -> None:
        """Read every function's Events and set them up; apply the buckets' notifications."""
        for logical_id in p.pools:
            props = p.template["Resources"][logical_id].get("Properties") or {}
            for event_id, event in (props.get("Events") or {}).items():
                wire = _WIRES.get(event.get("Type"))
                if wire is None:
                    LOG.warning(
                        "%s: event source %s of type %s is not emulated locally",
                        logical_id,
                        event_id,
                        event.get("Type"),
                    )
                    continue
                wire(self, p, logical_id, event_id, event.get("Properties") or {})
        s3 = p.client("s3")
        for bucket, config in p.bucket_notifications.items():
            if config:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket, NotificationConfiguration=config
                )

    def start_pollers(self) -> None:
        """Start polling the queues of the enabled SQS event sources."""
        for poller in self.sqs_pollers.values():
            if poller.source.enabled:
                poller.start()

    def stop_pollers(self, timeout: float = 2.0) -> None:
        """Stop every poller: no new batches; a batch in flight ends when its pool closes."""
        for poller in self.sqs_pollers.values():
            poller.signal_stop()
        deadline = time.monotonic() + timeout
        for poller in self.sqs_pollers.values():
            poller.stop(timeout=max(0.0, deadline - time.monotonic()))

    def busy(self) -> list[str]:
        """What the polled queues still hold or run (empty when they are drained)."""
        busy = []
        for poller in self.sqs_pollers.values():
            if poller.polling:
                reason = poller.busy()
                if reason:
                    busy.append(reason)
        return busy

    def scheduled_event(self, logical_id: str) -> dict[str, Any]:
        """The event EventBridge Scheduler gives a scheduled function, now."""
        region, account = self.stack.region, self.stack.account_id
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "account": account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": region,
            "resources": [f"arn:aws:scheduler:{region}:{account}:schedule/{logical_id}"],
            "detail": {},
        }

    # -- one per event source type ----------------------------------------------------------

    def _s3(self, p: Provisioner, logical_id: str, event_id: str, props: dict[str, Any]) -> None:
        bucket_ref = props.get("Bucket")
        if not (isinstance(bucket_ref, dict) and "Ref" in bucket_ref):
            raise TemplateError(f"{logical_id}.{event_id}: S3 event Bucket must be a !Ref")
        bucket = p.lookup(bucket_ref["Ref"], "Ref")
        events = p.resolver.resolve(props["Events"])
        config: dict[str, Any] = {
            "Id": f"{logical_id}{event_id}",
            "LambdaFunctionArn": p.lookup(logical_id, "Arn"),
            "Events": [events] if isinstance(events, str) else list(events),
        }
        rules = p.resolver.resolve(props.get("Filter", {})).get("S3Key", {}).get("Rules", [])
        if rules:
            config["Filter"] = key_filter(rules)
        notifications = p.bucket_notifications.setdefault(bucket, {})
        notifications.setdefault("LambdaFunctionConfigurations", []).append(config)

    def _sqs(self, p: Provisioner, logical_id: str, event_id: str, props: dict[str, Any]) -> None:
        # A poller like Lambda's event source mapping (not moto's own, which runs inside
        # SendMessage and ignores partial batch responses); started once the stack is deployed.
        where = f"{logical_id}.{event_id}"
        props = p.resolver.resolve(props)
        queue_arn = props.get("Queue")
        if not isinstance(queue_arn, str) or not queue_arn.startswith("arn:aws:sqs:"):
            raise TemplateError(f"{where}: SQS event Queue must be a queue ARN, got {queue_arn!r}")
        if props.get("FilterCriteria"):
            LOG.warning(
                "%s: FilterCriteria is not applied locally: every message is delivered", where
            )
        for unsupported in ("MetricsConfig", "ProvisionedPollerConfig"):
            if unsupported in props:
                LOG.info("%s: %s is ignored locally", where, unsupported)
        try:
            queue_name = queue_arn.rsplit(":", 1)[-1]
            queue_url = p.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
        except ClientError as exc:
            raise TemplateError(f"{where}: queue {queue_arn} does not exist locally") from exc
        response_types = props.get("FunctionResponseTypes") or []
        unknown = set(response_types) - {sqs_events.REPORT_BATCH_ITEM_FAILURES}
        if unknown:
            raise TemplateError(f"{where}: unknown FunctionResponseTypes {sorted(unknown)}")
        scaling = props.get("ScalingConfig") or {}
        pool = p.pools[logical_id]
        try:
            if "MaximumConcurrency" in scaling:
                sqs_events.check_maximum_concurrency(int(scaling["MaximumConcurrency"]))
            source = sqs_events.SqsEventSource(
                function_arn=p.lookup(logical_id, "Arn"),
                queue_arn=queue_arn,
                queue_url=queue_url,
                batch_size=int(props.get("BatchSize", 10)),
                batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures=bool(response_types),
                max_concurrency=int(scaling.get("MaximumConcurrency", pool.max_workers)),
                enabled=props.get("Enabled", True) not in (False, "false", "False"),
            )
            source.validate()
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"{where}: {exc}") from None
        if source.max_concurrency > pool.max_workers:
            LOG.info(
                "%s: MaximumConcurrency %d, but %s has %d workers: batches beyond them wait for "
                "one (as Lambda throttles them)",
                where,
                source.max_concurrency,
                logical_id,
                pool.max_workers,
            )
        # Its own client: connections for every batch in flight, plus the receiver.
        client = boto3.client(
            "sqs",
            **self.stack.boto_settings(
                read_timeout=30, max_pool_connections=source.max_concurrency + 2
            ),
        )
        self.sqs_pollers[where] = sqs_events.SqsPoller(
            where,
            source,
            sqs_client=client,
            invoke=self.stack.invoke_direct,
            region=self.stack.region,
        )

    def _http_api(
        self, p: Provisioner, logical_id: str, event_id: str, props: dict[str, Any]
    ) -> None:
        http_api = self.stack.http_api
        assert http_api is not None
        default_authorizer = _default_authorizer(p, props.get("ApiId"))
        props = p.resolver.resolve(props)
        path = props.get("Path")
        method = props.get("Method")
        if not path or not method:
            raise TemplateError(f"{logical_id}.{event_id}: HttpApi events need Path and Method")
        api_id = str(props.get("ApiId") or "ServerlessHttpApi")
        authorizer = str((props.get("Auth") or {}).get("Authorizer") or default_authorizer)
        if authorizer not in http_api_module.AUTHORIZERS:
            raise TemplateError(
                f"{logical_id}.{event_id}: authorizer {authorizer} is not served locally "
                f"(only {', '.join(http_api_module.AUTHORIZERS)})"
            )
        http_api.add_route(method, path, logical_id, api_id, authorizer)

    def _schedule(
        self, p: Provisioner, logical_id: str, event_id: str, props: dict[str, Any]
    ) -> None:
        self.schedules[logical_id] = str(p.resolver.resolve(props.get("ScheduleExpression")))


def _default_authorizer(p: Provisioner, api_ref: Any) -> str:
    """The HttpApi resource's `Auth.DefaultAuthorizer` (what a route without `Auth` gets)."""
    if isinstance(api_ref, dict) and isinstance(api_ref.get("Ref"), str):
        api = p.template["Resources"].get(api_ref["Ref"]) or {}
        auth = (api.get("Properties") or {}).get("Auth") or {}
        return str(p.resolver.resolve(auth.get("DefaultAuthorizer") or "NONE"))
    return "NONE"


_WIRES: dict[str, Wire] = {
    "S3": EventSources._s3,
    "SQS": EventSources._sqs,
    "HttpApi": EventSources._http_api,
    "Schedule": EventSources._schedule,
    "ScheduleV2": EventSources._schedule,
}
