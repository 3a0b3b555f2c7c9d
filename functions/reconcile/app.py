"""Reconcile (scheduled): drive stuck jobs to an ending, return leaked slots, publish gauges
(dropcut.steps.reconcile)."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inputs import ScheduledEvent
from dropcut.observability import typed_handler
from dropcut.settings import JobEventSettings, ReconcileSettings, Settings
from dropcut.steps.reconcile import ReconcileDeps, reconcile

settings = Settings.from_env()
reconcile_settings = ReconcileSettings.from_env()
deps = ReconcileDeps(
    s3=wiring.s3_client(),
    store=wiring.job_store(settings),
    layout=settings.layout,
    executions=wiring.executions(settings),
    slots=wiring.slot_pool(settings),
    manifest_wait_seconds=reconcile_settings.manifest_wait_seconds,
    lost_task_hold_seconds=settings.slots.lost_task_hold_seconds,
    events=wiring.job_events(settings, JobEventSettings.from_env()),
    batches=wiring.batches(settings, JobEventSettings.from_env()),
    inbox=wiring.inbox_queues(reconcile_settings),
)


@typed_handler(ScheduledEvent)
def handler(event: ScheduledEvent, context: LambdaContext) -> dict[str, Any]:
    return asdict(reconcile(deps))
