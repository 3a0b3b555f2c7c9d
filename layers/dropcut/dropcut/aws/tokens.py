"""Resuming a Step Functions wait (`.waitForTaskToken`): the one place that knows which errors
mean "that wait is already over"."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

#: What SendTaskSuccess answers for a token whose wait is over (heartbeat or timeout expired,
#: execution ended, or the token already used). Step Functions API reference, SendTaskSuccess.
STALE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


def resume_wait(sfn: SFNClient, task_token: str, output: dict[str, Any]) -> bool:
    """Resume the wait holding `task_token` with `output` as its result.

    Returns False when that wait had already ended (nothing to resume); raises ClientError for
    anything else (throttling, access denied), which the caller's retry handles.
    """
    try:
        sfn.send_task_success(taskToken=task_token, output=json.dumps(output))
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in STALE_TOKEN_ERRORS:
            raise
        return False
    return True
