"""The job state machine's executions: one per job, named by the job id."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


@dataclass(frozen=True)
class Executions:
    """The job state machine's executions, named by job id."""

    sfn: SFNClient
    state_machine_arn: str

    def arn(self, job_id: str) -> str:
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{prefix}:{job_id}"

    def status(self, job_id: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None when it never started."""
        try:
            return str(self.sfn.describe_execution(executionArn=self.arn(job_id))["status"])
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return None

    def start(self, job_id: str) -> None:
        """Start the job's execution; nothing if it exists (a name runs once, ever)."""
        with contextlib.suppress(self.sfn.exceptions.ExecutionAlreadyExists):
            self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=job_id,
                input=json.dumps({"job_id": job_id}),
            )

    def stop(self, job_id: str, error: str, cause: str) -> bool:
        """Stop the job's execution (StopExecution with `error` and `cause`, each cut to the
        API's 256 and 32,768 characters); False when it never started. Stopping an execution
        that is already over changes nothing."""
        try:
            self.sfn.stop_execution(
                executionArn=self.arn(job_id), error=error[:256], cause=cause[:32768]
            )
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return False
        return True
