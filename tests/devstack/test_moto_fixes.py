"""The local stack's corrections to moto keep the guarantees dropcut relies on."""

from __future__ import annotations

import threading

import boto3
from moto import mock_aws

from devstack import moto_fixes


def test_a_reader_never_sees_an_item_an_update_is_still_creating(monkeypatch):
    # moto's UpdateItem stores a new item's bare key before it applies the update expression;
    # the chaos test's slot line once read such a half-made waiter (KeyError: 'job_id').
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor

    moto_fixes.install()
    stored, release = threading.Event(), threading.Event()
    original_execute = UpdateExpressionExecutor.execute

    def slow_execute(self, *args):
        stored.set()  # the bare key is in the table now
        release.wait(timeout=10)
        return original_execute(self, *args)

    monkeypatch.setattr(UpdateExpressionExecutor, "execute", slow_execute)
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="slots",
            KeySchema=[
                {"AttributeName": "pool", "KeyType": "HASH"},
                {"AttributeName": "entry", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pool", "AttributeType": "S"},
                {"AttributeName": "entry", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        writer = threading.Thread(
            target=table.update_item,
            kwargs={
                "Key": {"pool": "p", "entry": "wait#1"},
                "UpdateExpression": "SET job_id = :job",
                "ExpressionAttributeValues": {":job": "job-1"},
            },
        )
        writer.start()
        assert stored.wait(timeout=10)
        seen: list[list[dict]] = []
        reader = threading.Thread(
            target=lambda: seen.append(
                table.query(
                    KeyConditionExpression="#p = :p",
                    ExpressionAttributeNames={"#p": "pool"},
                    ExpressionAttributeValues={":p": "p"},
                )["Items"]
            )
        )
        reader.start()
        reader.join(timeout=1.0)  # with the fix the query waits for the update to finish
        release.set()
        reader.join(timeout=10)
        writer.join(timeout=10)
    assert seen, "the query answered"
    assert all("job_id" in item for item in seen[0]), seen


#: A state whose Catch goes back to the state itself (as AcquireSlot's heartbeat timeout does):
#: the first attempt fails, the second (with the caught error in `$.tried`) succeeds.
CATCH_TO_ITSELF = {
    "StartAt": "Try",
    "States": {
        "Try": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.tried", "IsPresent": True, "Next": "Ok"}],
                            "Default": "Boom",
                        },
                        "Boom": {"Type": "Fail", "Error": "Boom", "Cause": "first attempt"},
                        "Ok": {"Type": "Succeed"},
                    },
                }
            ],
            "ResultPath": "$.result",
            "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.tried", "Next": "Try"}],
            "Next": "After",
        },
        "After": {"Type": "Pass", "End": True},
    },
}


def test_a_catch_that_names_its_own_state_enters_it_again():
    # On AWS a Catcher's Next is followed whatever it names. moto 5.2.5 (State._set_next) took
    # "next is still this state" for "no Catch fired" and went on to the state's own Next: an
    # AcquireSlot wait whose heartbeat ran out went to StartTask without a slot (the 429s of
    # the 200-clip burst).
    import json
    import time

    moto_fixes.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="catch-to-itself",
            definition=json.dumps(CATCH_TO_ITSELF),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        for _ in range(200):  # the execution runs on moto's thread: wait for its end
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.05)
        events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]
    assert described["status"] == "SUCCEEDED", described
    assert [name for name in entered if name in ("Try", "After")] == ["Try", "Try", "After"]
    assert "tried" in json.loads(described["output"])


def test_step_functions_reuses_one_lambda_client_per_moto_server(monkeypatch):
    monkeypatch.setenv("MOTO_PORT", "5123")
    moto_fixes.install()
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    first = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda")
    again = lambda_eval_utils.boto_client_for("us-east-1", "lambda", object())
    other = lambda_eval_utils.boto_client_for(region="eu-west-1", service="lambda")
    assert first is again
    assert other is not first and other.meta.region_name == "eu-west-1"
    # moto's own settings kept: one attempt per invocation, its (long) read timeout
    assert first.meta.config.retries["total_max_attempts"] == 1
    assert first.meta.config.read_timeout > 900
    assert first.meta.config.max_pool_connections == 64
    assert first.meta.endpoint_url == "http://localhost:5123"
    # a later stack in the same process (the next test module) has its own server and port
    monkeypatch.setenv("MOTO_PORT", "5124")
    later = lambda_eval_utils.boto_client_for(region="us-east-1", service="lambda")
    assert later is not first and later.meta.endpoint_url == "http://localhost:5124"


def test_iam_simulates_a_principals_identity_policies():
    # dropcut.services.actors asks SimulatePrincipalPolicy whether a caller may upload a job's input;
    # moto 5.2.5 has no such call: the local stack evaluates the principal's policies itself.
    import json

    moto_fixes.install()

    def document(effect: str, resource: str) -> str:
        statement = {"Effect": effect, "Action": "s3:PutObject", "Resource": resource}
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_group(GroupName="editors")
        iam.put_group_policy(
            GroupName="editors",
            PolicyName="up",
            PolicyDocument=document("Allow", "arn:aws:s3:::b/*"),
        )
        arn = iam.create_user(UserName="dana", Path="/team/")["User"]["Arn"]
        iam.add_user_to_group(GroupName="editors", UserName="dana")
        deny = iam.create_policy(
            PolicyName="no-secret", PolicyDocument=document("Deny", "arn:aws:s3:::b/secret/*")
        )["Policy"]["Arn"]
        iam.attach_user_policy(UserName="dana", PolicyArn=deny)
        iam.create_role(RoleName="idle", AssumeRolePolicyDocument="{}")

        def decisions(source: str, *keys: str) -> list[str]:
            answer = iam.simulate_principal_policy(
                PolicySourceArn=source,
                ActionNames=["s3:PutObject"],
                ResourceArns=[f"arn:aws:s3:::b/{key}" for key in keys],
            )
            return [result["EvalDecision"] for result in answer["EvaluationResults"]]

        assert decisions(arn, "inbox/a.mp4", "secret/a.mp4") == ["allowed", "explicitDeny"]
        assert decisions("arn:aws:iam::123456789012:role/idle", "inbox/a.mp4") == ["implicitDeny"]
        try:
            decisions("arn:aws:iam::123456789012:user/nobody", "inbox/a.mp4")
        except iam.exceptions.NoSuchEntityException:
            pass
        else:
            raise AssertionError("an unknown principal is NoSuchEntity, as on AWS")
