"""What cfn-lint and sam validate miss: runtimes, GetAtt targets in DefinitionSubstitutions,
the ASL's placeholders, Task timeouts, error names, the env each handler reads, log groups and
their retention, and the webhook's access log format. IAM: test_iam.py."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from cfnlint.decode import decode

from devstack.template import Resolver, load_template
from dropcut import errors

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE, _ = decode(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"]
GLOBAL_FUNCTION = TEMPLATE["Globals"]["Function"]
# Lambda runtimes this project may use (python3.12+ are supported well past 2026).
SUPPORTED_RUNTIMES = {"python3.12", "python3.13", "python3.14"}
GETATT_ATTRIBUTES = {
    "AWS::Serverless::Function": {"Arn"},
    "AWS::Serverless::StateMachine": {"Arn", "Name"},
    "AWS::DynamoDB::Table": {"Arn", "StreamArn"},
    "AWS::S3::Bucket": {"Arn", "DomainName", "RegionalDomainName"},
    "AWS::SQS::Queue": {"Arn", "QueueName", "QueueUrl"},
    "AWS::Logs::LogGroup": {"Arn"},
}
FUNCTIONS = {
    name: resource
    for name, resource in RESOURCES.items()
    if resource["Type"] == "AWS::Serverless::Function"
}
LAYERS = {
    name: resource
    for name, resource in RESOURCES.items()
    if resource["Type"] == "AWS::Serverless::LayerVersion"
}
LAYER_MAKEFILE = ROOT / "layers" / "Makefile"
STATE_MACHINES = {
    name: resource
    for name, resource in RESOURCES.items()
    if resource["Type"] == "AWS::Serverless::StateMachine"
}


def function_property(name: str, prop: str):
    return FUNCTIONS[name]["Properties"].get(prop, GLOBAL_FUNCTION.get(prop))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_uses_a_supported_runtime_matching_the_layer(name):
    runtime = function_property(name, "Runtime")
    assert runtime in SUPPORTED_RUNTIMES, f"{name}: runtime {runtime!r} is not supported"
    for layer in LAYERS.values():
        assert runtime in layer["Properties"]["CompatibleRuntimes"]
    # The layers are built by layers/Makefile (wheels and bytecode for LAMBDA_PYTHON).
    built_for = re.search(r"^LAMBDA_PYTHON := (\S+)$", LAYER_MAKEFILE.read_text(), re.M)
    assert built_for is not None and runtime == f"python{built_for[1]}"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_is_built_by_the_layers_makefile(name):
    metadata = LAYERS[name]["Metadata"]
    assert metadata["BuildMethod"] == "makefile"
    assert ROOT / metadata["ContextPath"] / "Makefile" == LAYER_MAKEFILE
    assert f"\nbuild-{name}:" in LAYER_MAKEFILE.read_text()


def _intrinsic_targets(value):
    """Every (kind, logical id, attribute) that Ref/GetAtt inside `value` points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            yield "Ref", value["Ref"], None
        elif "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            resource, attribute = target if isinstance(target, list) else target.split(".", 1)
            yield "GetAtt", resource, attribute
        else:
            for item in value.values():
                yield from _intrinsic_targets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _intrinsic_targets(item)


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_definition_substitutions_point_at_real_resources_and_attributes(name):
    substitutions = STATE_MACHINES[name]["Properties"]["DefinitionSubstitutions"]
    for kind, target, attribute in _intrinsic_targets(substitutions):
        if kind == "Ref":
            assert target in RESOURCES or target in TEMPLATE["Parameters"], target
            continue
        assert target in RESOURCES, f"GetAtt names missing resource {target}"
        allowed = GETATT_ATTRIBUTES[RESOURCES[target]["Type"]]
        assert attribute in allowed, f"{target}.{attribute} is not one of {allowed}"


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_asl_placeholders_and_substitutions_match(name):
    properties = STATE_MACHINES[name]["Properties"]
    text = (ROOT / properties["DefinitionUri"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders == set(properties["DefinitionSubstitutions"])


def _states(definition):
    for state_name, state in definition["States"].items():
        yield state_name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        if "Iterator" in state or "ItemProcessor" in state:
            yield from _states(state.get("ItemProcessor") or state["Iterator"])


KNOWN_PREFIXES = ("States.", "Lambda.", "Sandbox.", "Runtime.")


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_every_task_has_a_timeout_a_result_path_and_known_error_names(name):
    definition = json.loads(
        (ROOT / STATE_MACHINES[name]["Properties"]["DefinitionUri"]).read_text()
    )
    tasks = [(n, s) for n, s in _states(definition) if s["Type"] == "Task"]
    assert tasks
    for state_name, state in tasks:
        assert "TimeoutSeconds" in state or "TimeoutSecondsPath" in state, state_name
        assert "ResultPath" in state, state_name
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                assert error.startswith(KNOWN_PREFIXES) or errors.error_class(error), (
                    f"{state_name}: {error} matches no dropcut.errors class"
                )
        for rule in state.get("Retry", []):
            assert rule["MaxAttempts"] <= 10, "retries are bounded"
            assert rule.get("BackoffRate", 1) >= 1.5 or rule["MaxAttempts"] <= 2
    waits = [s for _, s in _states(definition) if s["Type"] == "Wait"]
    assert all("SecondsPath" in s or "Seconds" in s for s in waits)
    assert definition.get("TimeoutSeconds"), "the whole execution has a time limit"


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_a_media_step_that_ran_out_of_time_is_tried_once_more_at_most(name):
    """Issue 26, item 7: a file too heavy for Prepare's or Stitch's 900 s was retried 6 times
    (about 1.5 h of a 3 GB function); a crashed worker is still retried as before."""
    definition = json.loads(
        (ROOT / STATE_MACHINES[name]["Properties"]["DefinitionUri"]).read_text()
    )
    for state_name, state in _states(definition):
        if state_name not in ("Prepare", "Stitch"):
            continue
        first = next(r for r in state["Retry"] if "Sandbox.Timedout" in r["ErrorEquals"])
        assert first["MaxAttempts"] <= 1, state_name
        crashed = next(r for r in state["Retry"] if "Runtime.ExitError" in r["ErrorEquals"])
        assert crashed["MaxAttempts"] >= 3, state_name


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_every_step_retries_a_transient_aws_failure(name):
    # Handlers raise throttling, 5xx and unreachable AWS services as AwsUnavailable
    # (observability.named_aws_errors); every step is safe to repeat, so each retries it.
    definition = json.loads(
        (ROOT / STATE_MACHINES[name]["Properties"]["DefinitionUri"]).read_text()
    )
    for state_name, state in _states(definition):
        if state["Type"] != "Task":
            continue
        retried = {error for rule in state.get("Retry", []) for error in rule["ErrorEquals"]}
        assert retried & {"AwsUnavailable", "States.ALL"}, state_name


def test_an_execution_outlives_the_longest_line_wait_plus_the_job_deadline():
    # The execution's own time limit must never end a job the parameters still allow to run:
    # the longest wait in line (plus one more AcquireSlot round), the longest job deadline, and
    # the steps after it (Finalize, RecordFailure), with an hour to spare for retries.
    params = TEMPLATE["Parameters"]
    definition = json.loads(
        (ROOT / STATE_MACHINES["JobStateMachine"]["Properties"]["DefinitionUri"]).read_text()
    )
    states = dict(_states(definition))
    needed = (
        params["QueueWaitSeconds"]["MaxValue"]
        + states["AcquireSlot"]["TimeoutSeconds"]
        + params["JobDeadlineSeconds"]["MaxValue"]
        + states["Finalize"]["TimeoutSeconds"]
        + states["RecordFailure"]["TimeoutSeconds"]
        + 3600
    )
    assert definition["TimeoutSeconds"] >= needed


#: An environment read in settings.py: os.environ["X"] or one of its helpers _int("X"), _flag("X").
ENV_READ = re.compile(r"(?:os\.environ\[|_int\(|_flag\()\"([A-Z0-9_]+)\"")
SHARED_CONFIG = ROOT / "layers/dropcut/dropcut/settings.py"


def _settings_classes() -> dict[str, str]:
    """Source of each settings class in settings.py (with the helpers its reads go through)."""
    import ast

    text = SHARED_CONFIG.read_text()
    tree = ast.parse(text)
    return {
        node.name: ast.get_source_segment(text, node) or ""
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and "from_env" in {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
    }


SHARED_SETTINGS = _settings_classes()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_environment_variable_a_handler_reads_is_set_by_the_template(name):
    code_dir = ROOT / FUNCTIONS[name]["Properties"]["CodeUri"]
    source = (code_dir / "app.py").read_text()
    assert "os.environ" not in source, "settings are read in dropcut/settings.py only"
    needed: set[str] = set()
    pending = [source]
    while pending:  # a settings class may read another's (StartTaskSettings -> CallbackSettings)
        text = pending.pop()
        for settings_class, class_source in SHARED_SETTINGS.items():
            if re.search(rf"\b{settings_class}\.from_env", text) and not (
                set(ENV_READ.findall(class_source)) <= needed
            ):
                needed |= set(ENV_READ.findall(class_source))
                pending.append(class_source)
    env = dict(GLOBAL_FUNCTION["Environment"]["Variables"])
    env.update(FUNCTIONS[name]["Properties"].get("Environment", {}).get("Variables", {}))
    assert needed, "the handler reads its configuration from the environment"
    assert needed <= set(env), (
        f"{name} reads {sorted(needed - set(env))} which the template never sets"
    )


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_a_retried_error_is_retried_with_all_its_subclasses(name):
    # Step Functions matches error names, not classes: ProviderAnswerLost is a
    # ProviderUnavailable in Python, but a Retry naming only the latter lets it through.
    definition = json.loads(
        (ROOT / STATE_MACHINES[name]["Properties"]["DefinitionUri"]).read_text()
    )
    for state_name, state in _states(definition):
        for rule in state.get("Retry", []):
            for error in rule["ErrorEquals"]:
                pending = [errors.error_class(error)] if errors.error_class(error) else []
                while pending:
                    cls = pending.pop()
                    assert cls.__name__ in rule["ErrorEquals"], f"{state_name}: {cls.__name__}"
                    pending.extend(c for c in cls.__subclasses__())


def test_outputs_can_never_trigger_the_pipeline_again():
    env = GLOBAL_FUNCTION["Environment"]["Variables"]
    inbox = env["INBOX_PREFIX"]
    for other in (env["OUTBOX_PREFIX"], env["ERRORS_PREFIX"]):
        assert not other.startswith(inbox) and not inbox.startswith(other)
    notifications = RESOURCES["MediaBucket"]["Properties"]["NotificationConfiguration"]
    triggers = [
        *notifications.get("QueueConfigurations", []),
        *notifications.get("LambdaConfigurations", []),
        *notifications.get("TopicConfigurations", []),
        *(
            event["Properties"]
            for function in FUNCTIONS.values()
            for event in function["Properties"].get("Events", {}).values()
            if event["Type"] == "S3"
        ),
    ]
    assert triggers
    for trigger in triggers:
        rules = trigger["Filter"]["S3Key"]["Rules"]
        assert {"Name": "prefix", "Value": inbox} in rules


def test_the_inbox_queue_buffers_events_with_a_dead_letter_queue_and_partial_failures():
    queue = RESOURCES["InboxQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["InboxDeadLetterQueue", "Arn"]
    }
    assert 2 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    retry = TEMPLATE["Parameters"]["InboxRetrySeconds"]
    submit_timeout = function_property("SubmitFunction", "Timeout")
    # Lambda refuses an event source whose queue hides a message for less than the timeout.
    assert retry["MinValue"] >= submit_timeout and retry["Default"] >= 6 * submit_timeout
    (event,) = FUNCTIONS["SubmitFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "DependsOn" in RESOURCES["MediaBucket"]  # S3 checks it may send to the queue


def test_no_function_reads_its_api_key_from_the_environment():
    for name in FUNCTIONS:
        env = FUNCTIONS[name]["Properties"].get("Environment", {}).get("Variables", {})
        env = {**GLOBAL_FUNCTION["Environment"]["Variables"], **env}
        assert not [k for k in env if "API_KEY" in k and not k.endswith("_SECRET_ARN")]


# IAM (least privilege per function, no wildcard actions): tests/unit/test_iam.py, on the
# template as the SAM transform expands it.

#: The values CloudWatch Logs accepts for a log group's RetentionInDays.
CLOUDWATCH_RETENTION_DAYS = {
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
}  # fmt: skip
LOG_GROUPS = {
    name: resource
    for name, resource in RESOURCES.items()
    if resource["Type"] == "AWS::Logs::LogGroup"
}


def test_every_log_group_keeps_events_for_the_retention_parameter():
    retention = TEMPLATE["Parameters"]["LogRetentionDays"]
    assert set(retention["AllowedValues"]) == CLOUDWATCH_RETENTION_DAYS
    assert retention["Default"] == 30
    assert LOG_GROUPS
    for name, group in LOG_GROUPS.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_logs_to_its_own_declared_log_group(name):
    # Without a declared group Lambda creates /aws/lambda/<name> itself, kept forever.
    config = FUNCTIONS[name]["Properties"]["LoggingConfig"]
    group = config["LogGroup"]["Ref"]
    assert group in LOG_GROUPS, f"{name} logs to {group}, which the template does not declare"
    assert group == f"{name}Logs"
    assert LOG_GROUPS[group]["Properties"]["LogGroupName"] == {
        "Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{name}"
    }


def test_the_webhook_access_log_never_records_the_query_string():
    # The callback URL's capability travels in the query string (?cap=...): a log line with the
    # query, the raw path or a query parameter would hand it to anyone who reads the logs.
    from dropcut.model.callbacks import CAPABILITY_PARAM

    settings = RESOURCES["WebhookApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["WebhookApiAccessLogs", "Arn"]}
    assert "WebhookApiAccessLogs" in LOG_GROUPS
    log_format: str = settings["Format"]
    variables = set(re.findall(r"\$[\w.]+", log_format))
    assert "$context.routeKey" in variables, "the route template (no job id, no query)"
    for variable in variables:
        assert variable.startswith("$context."), variable
        lowered = variable.lower()
        assert "query" not in lowered and "path" not in lowered, variable
        assert "requestoverride" not in lowered and "request." not in lowered, variable
        assert CAPABILITY_PARAM not in variable.split("."), variable
    # One JSON object per request (CloudWatch Logs Insights parses its fields).
    assert isinstance(json.loads(re.sub(r"\$[\w.]+", "x", log_format)), dict)


DASHBOARD_BODY: str = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]


def _dashboard() -> dict:
    """The dashboard body as CloudWatch gets it, with every ${...} filled by a stand-in."""
    return json.loads(
        re.sub(
            r"\$\{([^}!]+)\}",
            lambda m: "7" if m[1] in ("ProviderConcurrency", "DailyCreditBudget") else "x",
            DASHBOARD_BODY,
        )
    )


def _dashboard_dropcut_metrics(dashboard: dict) -> set[str]:
    shown: set[str] = set()
    for widget in dashboard["widgets"]:
        previous: list = []
        for row in widget["properties"].get("metrics", []):
            fields = [f for f in row if not isinstance(f, dict)]
            # "." repeats the field of the row above (the console's shorthand).
            fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
            previous = fields
            if fields and fields[0] == "dropcut":
                shown.add(fields[1])
            for options in (f for f in row if isinstance(f, dict)):
                shown.update(re.findall(r'MetricName=\\?"(\w+)\\?"', options.get("expression", "")))
    return shown


def _published_metrics() -> set[str]:
    published: set[str] = set()
    for source in [*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("app.py")]:
        text = source.read_text()
        published.update(re.findall(r'(?:add_metric|single_metric)\(\s*name="(\w+)"', text))
        table = re.search(r"OUTCOME_METRICS = \{(.*?)\}", text, re.S)
        if table:
            published.update(re.findall(r':\s*"(\w+)"', table[1]))
    return published


def test_the_dashboard_shows_every_metric_dropcut_publishes_and_no_other():
    dashboard = _dashboard()
    published = _published_metrics()
    assert {"JobsFailedByReason", "JobsSubmitted", "SlotsInUse"} <= published  # the scan works
    assert _dashboard_dropcut_metrics(dashboard) == published
    alarms = {
        name for name, resource in RESOURCES.items() if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {a for a in alarms if f"${{{a}.Arn}}" in DASHBOARD_BODY} == alarms, "every alarm on it"
    (logs,) = [widget for widget in dashboard["widgets"] if widget["type"] == "log"]
    # The stand-ins hide which log group each SOURCE names: count them, then name them. A
    # function that exists only under a condition (NotifyFunction) cannot be named there.
    always = {name: f for name, f in FUNCTIONS.items() if "Condition" not in f}
    assert logs["properties"]["query"].count("SOURCE '") == len(always)
    sources = set(re.findall(r"SOURCE '\$\{(\w+)\}'", DASHBOARD_BODY))
    function_groups = {f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in always.values()}
    assert sources == function_groups, "every function's log group in the log widget"


def test_work_objects_live_as_long_as_a_retry_counts_on_them():
    from dropcut.model.layout import WORK_KEEP_DAYS, WORK_PREFIX

    bucket = next(r for r in RESOURCES.values() if r["Type"] == "AWS::S3::Bucket")
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    work = next(rule for rule in rules if rule.get("Prefix") == WORK_PREFIX)
    assert work["ExpirationInDays"] == WORK_KEEP_DAYS


def test_a_single_clamped_credit_correction_raises_the_credit_corrections_alarm():
    alarm = RESOURCES["CreditCorrectionsAlarm"]["Properties"]
    assert alarm["MetricName"] in _published_metrics()  # what BudgetLedger.charge counts
    assert (alarm["Namespace"], alarm["MetricName"]) == ("dropcut", "CreditCorrectionsClamped")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["TreatMissingData"] == "notBreaching"


def template_resolver(overrides: dict[str, str] | None = None, *, resource: str = "") -> Resolver:
    """template.yaml's intrinsic functions resolved as a deployed stack would: parameters take
    their defaults (the two without one get sample values) or `overrides`; a resource's Ref and
    GetAtt are `resource` when given, else the logical id (and `.attribute`)."""
    return Resolver(
        load_template(ROOT / "template.yaml"),
        parameter_overrides={
            "ProviderBaseUrl": "https://api.example.com",
            "ProviderApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:key",
            **(overrides or {}),
        },
        stack_name="dropcut",
        region="us-east-1",
        account_id="123456789012",
        ref_resource=lambda logical_id: resource or logical_id,
        getatt_resource=lambda logical_id, attribute: resource or f"{logical_id}.{attribute}",
    )


def test_a_breaker_trip_raises_the_provider_outage_alarm():
    from dropcut.aws.breaker import Breaker

    alarm = RESOURCES["ProviderOutageAlarm"]["Properties"]
    assert alarm["MetricName"] == "ProviderOutages" in _published_metrics()
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert 'name="ProviderOutages"' in Path(inspect.getfile(Breaker)).read_text()  # at a trip
