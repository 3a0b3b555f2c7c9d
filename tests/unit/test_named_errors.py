"""Every error a step raises has a name the state machine handles: a transient AWS failure is
AwsUnavailable (retried), anything else keeps its own name; RecordFailure reports each by
reason, and only an unnamed error is an internal error."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dropcut.errors import AwsUnavailable
from dropcut.observability import named_aws_errors
from dropcut.services.error_reports import describe_step_error


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "UpdateItem",
    )


def _raising(error: Exception):
    def handler(event, context):
        raise error

    return named_aws_errors(handler)


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ProvisionedThroughputExceededException", 400),
        _client_error("ThrottlingException", 400),
        _client_error("InternalServerError", 500),
        _client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
)
def test_a_transient_aws_failure_is_raised_as_aws_unavailable(error):
    with pytest.raises(AwsUnavailable) as raised:
        _raising(error)({}, None)
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [_client_error("AccessDeniedException", 400), _client_error("ValidationException", 400)],
)
def test_a_permanent_aws_failure_keeps_its_own_name(error):
    with pytest.raises(ClientError):
        _raising(error)({}, None)


def test_an_aws_failure_that_outlasts_the_retries_is_reported_by_its_reason():
    failure = describe_step_error(
        {"Error": "AwsUnavailable", "Cause": '{"errorType": "AwsUnavailable", "errorMessage": "x"}'}
    )
    assert failure.reason == "aws_unavailable" and "AWS" in failure.advice
