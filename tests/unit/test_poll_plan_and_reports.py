"""The polling schedule and how Step Functions errors become error reports."""

import json

import pytest

from dropcut.model.follow import PollPlan
from dropcut.services.error_reports import describe_step_error


def test_without_an_estimate_waits_grow_from_the_initial_wait_to_the_cap():
    plan = PollPlan(initial_seconds=15, max_seconds=60, growth_percent=150)
    assert plan.waits_for(240) == [15, 23, 35, 53, 60, 60]


def test_an_estimate_sets_the_first_wait_then_checks_resume_at_the_first_step():
    plan = PollPlan(initial_seconds=15, max_seconds=60, growth_percent=150)
    assert plan.waits_for(250, estimated_seconds=240) == [240, 15]
    assert plan.first_wait(10**6) == plan.deadline_seconds  # never past the deadline


def test_intervals_never_drop_below_one_second_or_exceed_the_cap():
    plan = PollPlan(initial_seconds=1, max_seconds=3, growth_percent=100)
    assert [plan.next_interval(i) for i in (0, 1, 2, 3, 99)] == [1, 1, 2, 3, 3]


def lambda_cause(error_type, message):
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": ["x"]})


@pytest.mark.parametrize(
    ("error", "reason", "advice_word"),
    [
        (
            {"Error": "TaskFailed", "Cause": lambda_cause("TaskFailed", "bad")},
            "provider_task_failed",
            "prompt",
        ),
        (
            {"Error": "JobTimedOut", "Cause": lambda_cause("JobTimedOut", "late")},
            "job_timed_out",
            "JobDeadlineSeconds",
        ),
        (
            {"Error": "ProviderThrottled", "Cause": lambda_cause("ProviderThrottled", "429")},
            "provider_throttled",
            "rate",
        ),
        (
            {"Error": "ProviderOutOfCredits", "Cause": lambda_cause("ProviderOutOfCredits", "402")},
            "provider_out_of_credits",
            "top up",
        ),
        (
            {
                "Error": "RequestInvalid",
                "Cause": lambda_cause("RequestInvalid", "prompt: too long"),
            },
            "request_invalid",
            "Fix",
        ),
        (
            {"Error": "ResultUnavailable", "Cause": lambda_cause("ResultUnavailable", "403")},
            "result_unavailable",
            "no new task",
        ),
        ({"Error": "States.Timeout", "Cause": ""}, "step_timed_out", "time limit"),
        (
            {"Error": "KeyError", "Cause": lambda_cause("KeyError", "'x'")},
            "internal_error",
            "operator",
        ),
    ],
)
def test_step_errors_map_to_a_reason_and_advice_without_stack_traces(error, reason, advice_word):
    failure = describe_step_error(error)
    assert failure.error_type == error["Error"]
    assert failure.reason == reason
    assert advice_word in failure.advice
    assert "stackTrace" not in failure.message and failure.message
