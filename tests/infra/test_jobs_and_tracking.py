"""The scheduled jobs, their alarms, the MLflow tracking server and who may touch what in S3.

Read from the synthesized templates (the session's ``templates`` fixture): a job that would not
start, a role that could read another's prefix or a tracking server the API Gateway could reach
fails here rather than in an account.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
import yaml

from infra.image import MLFLOW_HEALTH_PATH, MLFLOW_PORT, SCHEDULED_JOBS
from infra.storage import S3_ACCESS, Location
from tests.infra.templates import (
    Templates,
    as_list,
    containers,
    expected_grants,
    rendered,
    resources,
    s3_grants,
    task_definition_of,
    task_role_statements,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Typeguard cannot check")]

ENVIRONMENTS = ("dev", "staging", "prod")
JOB_NAMES = [job.name for job in SCHEDULED_JOBS]
# The workloads whose task roles S3_ACCESS describes, by the container that runs each.
WORKLOADS = ("api", "worker", "mlflow", *JOB_NAMES)


def rule_for(templates: Templates, env: str, description: str) -> tuple[str, dict[str, Any]]:
    rules = templates[env]["service"].find_resources("AWS::Events::Rule")
    (found,) = [
        (logical_id, rule)
        for logical_id, rule in rules.items()
        if rule["Properties"]["Description"] == description
    ]
    return found


def environment_of(container: dict[str, Any]) -> dict[str, Any]:
    return {v["Name"]: v["Value"] for v in container.get("Environment", [])}


def test_the_jobs_are_the_five_of_the_contract_on_their_periods() -> None:
    periods = {job.name: job.period_seconds for job in SCHEDULED_JOBS}

    assert periods == {
        "features-build": 86400,
        "materialize-incremental": 3600,
        "retrain": 7 * 86400,
        "drift": 86400,
        "outcomes": 86400,
    }
    assert {job.command for job in SCHEDULED_JOBS} == {("jobs", "run", n) for n in periods}


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("job", SCHEDULED_JOBS, ids=JOB_NAMES)
def test_each_job_runs_its_own_task_on_its_schedule(templates: Templates, env: str, job) -> None:
    service = templates[env]["service"]
    _, rule = rule_for(templates, env, job.description)
    task_id, task = task_definition_of(service, job.name)
    api_image = containers(service)["api"]["Image"]

    assert rule["Properties"]["ScheduleExpression"] == job.schedule
    (target,) = rule["Properties"]["Targets"]
    parameters = target["EcsParameters"]
    assert parameters["LaunchType"] == "FARGATE"
    assert parameters["TaskDefinitionArn"] == {"Ref": task_id}, "each job has its own task"
    overrides = json.loads(target.get("Input", "{}")).get("containerOverrides")
    assert not overrides, "the command lives in the task definition, not in an override"
    network = parameters["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    (container,) = [c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == job.name]
    assert container["Command"] == ["jobs", "run", job.name]
    assert "EntryPoint" not in container, "the image's entry point, riskctl, runs the job"
    assert container["Image"] == api_image, "jobs run the platform image at the deployed tag"
    assert task["Properties"]["RequiresCompatibilities"] == ["FARGATE"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_job_alarms_when_its_task_cannot_be_started(templates: Templates, env: str) -> None:
    service = templates[env]["service"]
    alarms = resources(service, "AWS::CloudWatch::Alarm")
    alarmed_rules = {
        json.dumps(dimension["Value"])
        for alarm in alarms
        for dimension in alarm["Properties"]["Dimensions"]
        if dimension["Name"] == "RuleName"
    }

    for job in SCHEDULED_JOBS:
        rule_id, _ = rule_for(templates, env, job.description)
        assert json.dumps({"Ref": rule_id}) in alarmed_rules, f"{job.name} has no alarm"
    for alarm in alarms:
        properties = alarm["Properties"]
        assert (properties["Namespace"], properties["MetricName"]) == (
            "AWS/Events",
            "FailedInvocations",
        )
        assert properties["Threshold"] == 1
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        (action,) = properties["AlarmActions"]
        assert "Alarms" in json.dumps(action), "alarms notify the observability stack's topic"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_tracking_server_proxies_artifacts_to_its_prefix(
    templates: Templates, env: str
) -> None:
    service = templates[env]["service"]
    mlflow = containers(service)["mlflow"]
    arguments = [rendered(argument) for argument in mlflow["Command"]]

    assert mlflow["EntryPoint"] == ["mlflow"]
    assert arguments[0] == "server"
    options = {
        option: value
        for option, value in pairwise(arguments)
        if option.startswith("--") and not value.startswith("--")
    }
    assert "--serve-artifacts" in arguments
    assert options["--artifacts-destination"] == "s3://<Artifacts>/mlflow"
    assert (options["--host"], options["--port"]) == ("0.0.0.0", str(MLFLOW_PORT))
    (backend,) = mlflow["Secrets"]
    assert backend["Name"] == "MLFLOW_BACKEND_STORE_URI"
    assert backend["ValueFrom"]["Fn::Join"][1][-1] == ":mlflow_url::", "the PostgreSQL URL"
    allowed = rendered(environment_of(mlflow)["MLFLOW_SERVER_ALLOWED_HOSTS"]).split(",")
    assert f"*:{MLFLOW_PORT}" in allowed, "requests through the ALB's name are accepted"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_tracking_server_sits_behind_the_internal_alb_only(
    templates: Templates, env: str
) -> None:
    service, network = templates[env]["service"], templates[env]["network"]
    listeners = {
        listener["Properties"]["Port"]: (logical_id, listener)
        for logical_id, listener in service.find_resources(
            "AWS::ElasticLoadBalancingV2::Listener"
        ).items()
    }
    ecs_services = resources(service, "AWS::ECS::Service")
    tracking = [
        s for s in ecs_services if s["Properties"]["LoadBalancers"][0]["ContainerName"] == "mlflow"
    ]

    assert MLFLOW_PORT in listeners, "no MLflow listener"
    (tracking_service,) = tracking
    assert tracking_service["Properties"]["LoadBalancers"][0]["ContainerPort"] == MLFLOW_PORT
    service.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"Port": MLFLOW_PORT, "HealthCheckPath": MLFLOW_HEALTH_PATH},
    )
    # API Gateway's integration goes to the API listener, never to MLflow's
    (integration,) = resources(service, "AWS::ApiGatewayV2::Integration")
    mlflow_listener_id, _ = listeners[MLFLOW_PORT]
    assert mlflow_listener_id not in json.dumps(integration["Properties"]["IntegrationUri"])
    # only the task security group may open the MLflow port on the load balancer
    sources = {
        json.dumps(rule["Properties"].get("SourceSecurityGroupId"))
        for template in (network, service)
        for rule in resources(template, "AWS::EC2::SecurityGroupIngress")
        if rule["Properties"]["FromPort"] <= MLFLOW_PORT <= rule["Properties"]["ToPort"]
        and "LoadBalancer" in json.dumps(rule["Properties"]["GroupId"])
    }
    assert sources and all("Tasks" in source for source in sources), sources


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_tasks_reach_mlflow_through_the_server(templates: Templates, env: str) -> None:
    task_containers = containers(templates[env]["service"])

    for name in ("api", "worker", *JOB_NAMES):
        environment = environment_of(task_containers[name])
        url = rendered(environment["RISK_MLFLOW_URL"])
        assert url == f"http://*:{MLFLOW_PORT}", f"{name}: RISK_MLFLOW_URL is {url}"
        assert "LoadBalancer" in json.dumps(environment["RISK_MLFLOW_URL"])
        # experiments put their artifacts where the server proxies them
        assert environment["RISK_ARTIFACT_URI"].startswith("mlflow-artifacts:/")


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_each_task_role_gets_exactly_its_s3_locations(
    templates: Templates, env: str, workload: str
) -> None:
    statements = task_role_statements(templates[env]["service"], workload)

    assert s3_grants(statements) == expected_grants(workload)
    listings = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    for statement in listings:
        prefixes = set(statement["Condition"]["StringLike"]["s3:prefix"])
        allowed = {p for location in S3_ACCESS[workload] for p in location.list_prefixes}
        assert prefixes <= allowed, f"{workload} may list {prefixes - allowed}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_s3_access_follows_what_each_workload_does(templates: Templates, env: str) -> None:
    service = templates[env]["service"]
    grants = {w: s3_grants(task_role_statements(service, w)) for w in WORKLOADS}
    artifacts = {w for w, g in grants.items() if any("<Artifacts>" in r for _, r in g)}
    data_writers = {w for w, g in grants.items() if ("s3:PutObject", "<Data>/data/*") in g}
    feature_writers = {
        w for w, g in grants.items() if ("s3:PutObject", "<Data>/data/features/*") in g
    }
    report_writers = {
        w for w, g in grants.items() if ("s3:PutObject", "<Data>/data/monitoring/*") in g
    }
    registry_writers = {
        w for w, g in grants.items() if ("s3:PutObject", "<Data>/feast/registry.db") in g
    }
    anchor_writers = {
        w for w, g in grants.items() if ("s3:PutObject", "<AuditAnchor>/checkpoints/*") in g
    }

    assert artifacts == {"mlflow"}, "only the tracking server touches MLflow's artifacts"
    assert data_writers == {"worker"}, "uploads come from the one-off task only"
    assert feature_writers == {"features-build"}
    assert report_writers == {"drift", "outcomes"}
    assert registry_writers == {"worker", "materialize-incremental"}
    assert anchor_writers == {"api", "worker"}, "jobs never write checkpoints"
    assert not [a for g in grants.values() for a, _ in g if a.startswith("s3:Delete")]
    assert {location for access in S3_ACCESS.values() for location in access} == set(Location)


def collector_configs(templates: Templates, env: str) -> list[dict[str, Any]]:
    return [
        yaml.safe_load(environment_of(c)["AOT_CONFIG_CONTENT"])
        for task in resources(templates[env]["service"], "AWS::ECS::TaskDefinition")
        for c in task["Properties"]["ContainerDefinitions"]
        if c["Name"] == "collector"
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_collector_keeps_the_job_label_of_the_job_gauges(
    templates: Templates, env: str
) -> None:
    scrapes = [
        scrape
        for config in collector_configs(templates, env)
        if "prometheus" in config["receivers"]
        for scrape in config["receivers"]["prometheus"]["config"]["scrape_configs"]
    ]

    (scrape,) = scrapes
    assert scrape["job_name"] == "risk-service", "the `up` alerts select this job"
    assert scrape["honor_labels"] is True, 'else job="drift" becomes exported_job="drift"'


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_api_collector_labels_its_series_with_the_task(templates: Templates, env: str) -> None:
    from infra.collector import collector_config
    from infra.image import API_PORT

    (metrics_config,) = [
        c for c in collector_configs(templates, env) if "metrics" in c["service"]["pipelines"]
    ]

    assert metrics_config == yaml.safe_load(collector_config(API_PORT))


LOCATION_VARIABLES = {
    "RISK_DATA_URI": Location.DATA,
    "RISK_FEATURES_URI": Location.FEATURES,
    "RISK_REPORTS_URI": Location.REPORTS,
    "RISK_FEAST_REGISTRY_URI": Location.FEAST_REGISTRY,
    "RISK_AUDIT_ANCHOR_URI": Location.AUDIT_ANCHOR,
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tasks_are_pointed_at_the_locations_they_are_granted(
    templates: Templates, env: str
) -> None:
    task_containers = containers(templates[env]["service"])

    for name in ("api", "worker", *JOB_NAMES):
        environment = environment_of(task_containers[name])
        for variable, location in LOCATION_VARIABLES.items():
            expected = f"s3://<{location.bucket}>/{location.value}"
            assert rendered(environment[variable]) == expected, f"{name}: {variable}"
