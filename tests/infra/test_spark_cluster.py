"""The managed Spark cluster of the feature build (EMR Serverless): absent unless an environment
sets ``spark_cluster``; when set, an application in the app subnets, an execution role holding
exactly its S3 locations, and a feature-build job that may start runs there and nothing more.

Read from synthesized templates: the three environments as configured (the session's
``templates``) and dev with the cluster switched on (this module's ``spark``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from infra.image import SCHEDULED_JOBS
from infra.storage import S3_ACCESS, SPARK_FEATURE_BUILD
from tests.infra.templates import (
    Templates,
    as_list,
    containers,
    expected_grants,
    exported_subnet_tiers,
    policy_statements,
    rendered,
    resources,
    role_statements,
    s3_grants,
    task_role_statements,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Typeguard cannot check")]

# The CDK loads when a test runs, never at collection (conftest.py): these mirror
# infra/stacks/spark.py, and a test checks that they agree.
SPARK_JOB = "features-build"
EXECUTION_SERVICE = "emr-serverless.amazonaws.com"
SUBMITTER_VARIABLES = {
    "RISK_EMR_APPLICATION_ID",
    "RISK_EMR_EXECUTION_ROLE_ARN",
    "RISK_SPARK_CODE_URI",
}
EMR_TYPES = ("AWS::EMRServerless::Application",)


@pytest.fixture(scope="module")
def spark() -> Templates:
    """Dev's templates with the cluster on, as an environment that sets it would have them."""
    from infra.environments import DEV, SparkCluster
    from tests.infra.templates import synthesize

    return synthesize([dataclasses.replace(DEV, spark_cluster=SparkCluster())])


def application(templates: Templates) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = templates["dev"]["service"].find_resources(EMR_TYPES[0]).items()
    return logical_id, resource["Properties"]


def execution_role(templates: Templates) -> tuple[str, dict[str, Any]]:
    roles = templates["dev"]["service"].find_resources("AWS::IAM::Role")
    (found,) = [
        (logical_id, role)
        for logical_id, role in roles.items()
        if EXECUTION_SERVICE in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    ]
    return found


def environment_of(container: dict[str, Any]) -> dict[str, Any]:
    return {v["Name"]: v["Value"] for v in container.get("Environment", [])}


def emr_or_pass_role(statement: dict[str, Any]) -> bool:
    """An EMR Serverless action, or passing a role to EMR Serverless (EventBridge's rules pass
    the jobs' task roles to ECS, which is not this)."""
    actions = as_list(statement["Action"])
    passes_to_emr = "iam:PassRole" in actions and EXECUTION_SERVICE in json.dumps(statement)
    return passes_to_emr or any(a.startswith("emr-serverless:") for a in actions)


def test_no_environment_has_the_cluster_by_default() -> None:
    from infra.environments import ENVIRONMENTS
    from infra.stacks import spark as spark_stack

    assert all(config.spark_cluster is None for config in ENVIRONMENTS.values())
    assert spark_stack.SPARK_JOB == SPARK_JOB
    assert spark_stack.EXECUTION_SERVICE == EXECUTION_SERVICE


@pytest.mark.parametrize("env", ("dev", "staging", "prod"))
def test_off_means_no_emr_resource_grant_or_variable(templates: Templates, env: str) -> None:
    parts = templates[env]

    for part, template in parts.items():
        assert not resources(template, EMR_TYPES[0]), f"{env}-{part} has an EMR application"
        assert not [s for s in policy_statements(template) if emr_or_pass_role(s)], part
        assert EXECUTION_SERVICE not in json.dumps(template.to_json())
    assert "Spark" not in json.dumps(parts["network"].find_resources("AWS::EC2::SecurityGroup"))
    assert "SparkLogs" not in json.dumps(parts["observability"].to_json())
    for name, container in containers(parts["service"]).items():
        assert not SUBMITTER_VARIABLES & set(environment_of(container)), name
    assert "SparkApplicationId" not in parts["service"].to_json().get("Outputs", {})


def test_the_application_runs_spark_4_in_the_app_subnets_and_stops_when_idle(
    spark: Templates,
) -> None:
    from infra.environments import SparkCluster
    from infra.stacks.spark import RELEASE_LABEL, RELEASE_SPARK_VERSION

    cluster = SparkCluster()
    _, properties = application(spark)
    network = properties["NetworkConfiguration"]
    tiers = exported_subnet_tiers(spark["dev"]["network"])
    subnet_tiers = {tiers[subnet["Fn::ImportValue"]] for subnet in network["SubnetIds"]}
    (group,) = network["SecurityGroupIds"]
    logging = properties["MonitoringConfiguration"]["CloudWatchLoggingConfiguration"]

    assert properties["Type"] == "SPARK"
    assert properties["ReleaseLabel"] == RELEASE_LABEL
    assert RELEASE_SPARK_VERSION.startswith("4."), "PySpark 4 is what the build is tested with"
    assert properties["AutoStartConfiguration"] == {"Enabled": True}
    assert properties["AutoStopConfiguration"] == {
        "Enabled": True,
        "IdleTimeoutMinutes": cluster.idle_minutes,
    }
    assert properties["MaximumCapacity"] == {
        "Cpu": cluster.max_cpu,
        "Memory": cluster.max_memory,
        "Disk": cluster.max_disk,
    }
    assert subnet_tiers == {"app"} and len(network["SubnetIds"]) == 2, subnet_tiers
    assert "SparkSecurityGroup" in json.dumps(group), "the workers' own group, not the tasks'"
    assert logging["Enabled"] is True
    assert "SparkLogs" in json.dumps(logging["LogGroupName"])
    logs = spark["dev"]["observability"].find_resources("AWS::Logs::LogGroup")
    retention = {
        k.rstrip("0123456789ABCDEF"): g["Properties"]["RetentionInDays"] for k, g in logs.items()
    }
    assert retention["SparkLogs"] == retention["WorkerLogs"], "kept as long as the jobs' logs"


def test_the_workers_group_admits_nothing_and_reaches_out_over_https_only(
    spark: Templates,
) -> None:
    network = spark["dev"]["network"]
    groups = network.find_resources("AWS::EC2::SecurityGroup")
    ((group_id, group),) = [(k, g) for k, g in groups.items() if k.startswith("SparkSecurityGroup")]
    ingress = [
        rule
        for template in spark["dev"].values()
        for rule in resources(template, "AWS::EC2::SecurityGroupIngress")
        if group_id in json.dumps(rule["Properties"]["GroupId"])
    ]

    assert not group["Properties"].get("SecurityGroupIngress") and not ingress
    (egress,) = group["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    for template in spark["dev"].values():
        for rule in resources(template, "AWS::EC2::SecurityGroupIngress"):
            source = json.dumps(rule["Properties"].get("SourceSecurityGroupId"))
            assert group_id not in source, "no data service or load balancer admits the workers"


def test_only_emr_serverless_of_this_account_and_application_assumes_the_role(
    spark: Templates,
) -> None:
    application_id, _ = application(spark)
    _, role = execution_role(spark)

    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": EXECUTION_SERVICE}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [application_id, "Arn"]}},
    }
    assert "ManagedPolicyArns" not in role["Properties"]


def test_the_execution_role_holds_exactly_its_s3_locations(spark: Templates) -> None:
    role_id, _ = execution_role(spark)
    statements = role_statements(spark["dev"]["service"], role_id)

    assert s3_grants(statements) == expected_grants(SPARK_FEATURE_BUILD)
    allowed = {p for location in S3_ACCESS[SPARK_FEATURE_BUILD] for p in location.list_prefixes}
    for statement in statements:
        if "s3:ListBucket" in as_list(statement["Action"]):
            prefixes = set(statement["Condition"]["StringLike"]["s3:prefix"])
            assert prefixes <= allowed, f"the build may list {prefixes - allowed}"
    writes = {r for a, r in s3_grants(statements) if a == "s3:PutObject"}
    assert writes == {"<Data>/data/features/*"}, "it writes the feature tables, nothing else"
    services = {a.split(":")[0] for s in statements for a in as_list(s["Action"])}
    assert services == {"s3", "kms", "logs"}, services


def test_no_statement_grants_a_wildcard_action_or_emr_and_iam_on_everything(
    spark: Templates,
) -> None:
    for part, template in spark["dev"].items():
        for statement in policy_statements(template):
            actions = as_list(statement["Action"])
            assert not [a for a in actions if a == "*" or a.endswith(":*")], f"{part}: {actions}"
            if "*" in as_list(statement["Resource"]):
                assert not [a for a in actions if a.split(":")[0] in {"emr-serverless", "iam"}]
                assert not [a for a in actions if a.split(":")[0] in {"s3", "kms", "logs"}]


def test_the_feature_build_task_may_start_runs_there_under_the_role_only(
    spark: Templates,
) -> None:
    service = spark["dev"]["service"]
    application_id, _ = application(spark)
    role_id, _ = execution_role(spark)
    granted = [s for s in task_role_statements(service, SPARK_JOB) if emr_or_pass_role(s)]
    by_action = {a: s for s in granted for a in as_list(s["Action"])}
    application_arn = {"Fn::GetAtt": [application_id, "Arn"]}
    job_runs = {"Fn::Join": ["", [application_arn, "/jobruns/*"]]}

    assert set(by_action) == {
        "emr-serverless:StartJobRun",
        "emr-serverless:GetJobRun",
        "emr-serverless:CancelJobRun",
        "iam:PassRole",
    }
    assert by_action["emr-serverless:StartJobRun"]["Resource"] == application_arn
    assert by_action["emr-serverless:GetJobRun"]["Resource"] == job_runs
    assert by_action["emr-serverless:CancelJobRun"]["Resource"] == job_runs
    pass_role = by_action["iam:PassRole"]
    assert pass_role["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": EXECUTION_SERVICE}}
    environment = environment_of(containers(service)[SPARK_JOB])
    assert environment["RISK_EMR_APPLICATION_ID"] == {
        "Fn::GetAtt": [application_id, "ApplicationId"]
    }
    assert environment["RISK_EMR_EXECUTION_ROLE_ARN"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert rendered(environment["RISK_SPARK_CODE_URI"]) == "s3://<Artifacts>/spark/features-build"


def test_no_other_task_may_submit_or_see_the_cluster(spark: Templates) -> None:
    service = spark["dev"]["service"]
    others = ["api", "worker", "mlflow", *(j.name for j in SCHEDULED_JOBS if j.name != SPARK_JOB)]

    for name in others:
        assert not [s for s in task_role_statements(service, name) if emr_or_pass_role(s)], name
        assert not SUBMITTER_VARIABLES & set(environment_of(containers(service)[name])), name


def test_the_outputs_name_the_application_and_the_role(spark: Templates) -> None:
    application_id, _ = application(spark)
    role_id, _ = execution_role(spark)
    outputs = spark["dev"]["service"].to_json()["Outputs"]

    assert outputs["SparkApplicationId"]["Value"] == {
        "Fn::GetAtt": [application_id, "ApplicationId"]
    }
    assert outputs["SparkExecutionRoleArn"]["Value"] == {"Fn::GetAtt": [role_id, "Arn"]}
