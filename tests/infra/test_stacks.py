"""The synthesized templates: every service present, data locked down, secrets kept secret, roles
scoped, prod stricter than dev, and the containers given what the `aws` profile reads.

Every environment is synthesized once per session (the ``templates`` fixture, ``conftest.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from infra.image import API_COMMAND, API_PORT, READINESS_PATH, SCHEDULED_JOBS
from tests.infra.settings_contract import REPO, required_variables
from tests.infra.templates import (
    Templates,
    as_list,
    containers,
    exported_subnet_tiers,
    only,
    policy_statements,
    resources,
)

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Typeguard cannot check")]

ENVIRONMENTS = ("dev", "staging", "prod")
EXPECTED_RESOURCES: dict[str, dict[str, int]] = {
    "network": {"AWS::EC2::VPC": 1, "AWS::EC2::FlowLog": 1, "AWS::EC2::VPCEndpoint": 1},
    "data": {
        "AWS::KMS::Key": 1,
        "AWS::RDS::DBInstance": 1,
        "AWS::ElastiCache::ReplicationGroup": 1,
        "AWS::OpenSearchService::Domain": 1,
        "AWS::S3::Bucket": 3,
        "AWS::SecretsManager::Secret": 6,
    },
    "observability": {
        "AWS::APS::Workspace": 1,
        "AWS::APS::RuleGroupsNamespace": 1,
        "AWS::Grafana::Workspace": 1,
        "AWS::Logs::LogGroup": 4,
        "AWS::SNS::Topic": 1,
    },
    "service": {
        "AWS::ECS::Cluster": 1,
        # the API and the tracking server
        "AWS::ECS::Service": 2,
        # API, worker, tracking server and one per scheduled job
        "AWS::ECS::TaskDefinition": 3 + len(SCHEDULED_JOBS),
        "AWS::ElasticLoadBalancingV2::Listener": 2,
        "AWS::ElasticLoadBalancingV2::LoadBalancer": 1,
        "AWS::ApiGatewayV2::Api": 1,
        "AWS::ApiGatewayV2::VpcLink": 1,
        "AWS::ApplicationAutoScaling::ScalingPolicy": 2,
        "AWS::Events::Rule": len(SCHEDULED_JOBS),
        "AWS::CloudWatch::Alarm": len(SCHEDULED_JOBS),
        "AWS::SecretsManager::Secret": 1,
    },
}
# Environment variables whose values carry a password, token or key.
CREDENTIAL_VARIABLES = {
    "RISK_AUDIT_URL",
    "MLFLOW_BACKEND_STORE_URI",
    "RISK_OPERATIONS_URL",
    "RISK_REDIS_URL",
    "RISK_FEAST_REDIS",
    "RISK_API_KEYS",
    "RISK_AUDIT_OWNER_URL",
    "RISK_AUDIT_SIGNING_KEY",
}
# Services whose permissions reach data or credentials: never granted on "*".
SENSITIVE_SERVICES = {
    "s3",
    "kms",
    "secretsmanager",
    "es",
    "aps",
    "rds",
    "elasticache",
    "iam",
    "ecs",
    "emr-serverless",
}
# Jobs neither migrate, sign checkpoints nor serve the API.
JOBS_WITHOUT = {"RISK_AUDIT_OWNER_URL", "RISK_AUDIT_SIGNING_KEY", "RISK_API_KEYS"}
DELETION_POLICY_RANK = {"Delete": 0, "Snapshot": 1, "Retain": 2}


def data_route_tables(network: Template) -> set[str]:
    """The route tables of the ``data`` subnets, as JSON of their references."""
    data_subnets = {
        logical_id
        for logical_id, resource in network.to_json()["Resources"].items()
        if resource["Type"] == "AWS::EC2::Subnet"
        and {"Key": "aws-cdk:subnet-name", "Value": "data"} in resource["Properties"]["Tags"]
    }
    return {
        json.dumps(association["Properties"]["RouteTableId"])
        for association in resources(network, "AWS::EC2::SubnetRouteTableAssociation")
        if association["Properties"]["SubnetId"]["Ref"] in data_subnets
    }


def test_the_app_has_exactly_the_three_environments() -> None:
    from infra.app import selected_environments

    assert [config.name for config in selected_environments(None)] == list(ENVIRONMENTS)
    assert [config.name for config in selected_environments("prod")] == ["prod"]
    with pytest.raises(SystemExit, match="unknown env"):
        selected_environments("qa")


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("part", EXPECTED_RESOURCES)
def test_each_environment_has_every_service(templates: Templates, env: str, part: str) -> None:
    for resource_type, count in EXPECTED_RESOURCES[part].items():
        found = len(resources(templates[env][part], resource_type))
        assert found == count, f"{env}-{part}: {found} {resource_type}, expected {count}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_is_encrypted_at_rest_and_in_transit(templates: Templates, env: str) -> None:
    from aws_cdk.assertions import Match

    data = templates[env]["data"]
    data.all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    data.all_resources_properties(
        "AWS::RDS::DBInstance", {"StorageEncrypted": True, "KmsKeyId": Match.any_value()}
    )
    data.has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Parameters": {"rds.force_ssl": "1"}}
    )
    data.all_resources_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "AtRestEncryptionEnabled": True,
            "KmsKeyId": Match.any_value(),
            "TransitEncryptionEnabled": True,
            "AuthToken": Match.any_value(),
        },
    )
    data.all_resources_properties(
        "AWS::OpenSearchService::Domain",
        {
            "EncryptionAtRestOptions": {"Enabled": True, "KmsKeyId": Match.any_value()},
            "NodeToNodeEncryptionOptions": {"Enabled": True},
            "DomainEndpointOptions": {
                "EnforceHTTPS": True,
                "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07",
            },
        },
    )
    data.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_database_or_bucket_is_public(templates: Templates, env: str) -> None:
    data = templates[env]["data"]
    data.all_resources_properties("AWS::RDS::DBInstance", {"PubliclyAccessible": False})
    data.all_resources_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }
        },
    )
    policies = resources(data, "AWS::S3::BucketPolicy")
    assert len(policies) == len(resources(data, "AWS::S3::Bucket")), "every bucket has a policy"
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ), "buckets refuse requests without TLS"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_services_sit_in_subnets_without_a_route_out(templates: Templates, env: str) -> None:
    network, data = templates[env]["network"], templates[env]["data"]
    tiers = exported_subnet_tiers(network)
    subnet_lists = [
        only(data, "AWS::RDS::DBSubnetGroup")["Properties"]["SubnetIds"],
        only(data, "AWS::ElastiCache::SubnetGroup")["Properties"]["SubnetIds"],
        only(data, "AWS::OpenSearchService::Domain")["Properties"]["VPCOptions"]["SubnetIds"],
    ]
    used = {tiers[subnet["Fn::ImportValue"]] for subnets in subnet_lists for subnet in subnets}
    assert used == {"data"}, f"data services placed in subnet groups {used}"
    routed = {
        json.dumps(r["Properties"]["RouteTableId"]) for r in resources(network, "AWS::EC2::Route")
    }
    assert not data_route_tables(network) & routed, "a data subnet has a route out of the VPC"
    for rule in resources(data, "AWS::EC2::SecurityGroupIngress"):
        assert "SourceSecurityGroupId" in rule["Properties"], f"ingress by address: {rule}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_api_is_reached_only_through_api_gateway(templates: Templates, env: str) -> None:
    service, network = templates[env]["service"], templates[env]["network"]
    service.all_resources_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"}
    )
    service.all_resources_properties(
        "AWS::ECS::Service",
        {"NetworkConfiguration": {"AwsvpcConfiguration": {"AssignPublicIp": "DISABLED"}}},
    )
    service.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {"ConnectionType": "VPC_LINK", "IntegrationType": "HTTP_PROXY"},
    )
    for group in resources(network, "AWS::EC2::SecurityGroup"):
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") != "0.0.0.0/0", "no security group is open to the internet"
    service.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"Port": API_PORT, "HealthCheckPath": READINESS_PATH},
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_log_group_keeps_logs_for_a_set_time(templates: Templates, env: str) -> None:
    groups = [g for part in templates[env].values() for g in resources(part, "AWS::Logs::LogGroup")]
    assert groups, "no log groups"
    assert all("RetentionInDays" in g["Properties"] for g in groups), "a log group keeps forever"
    for name, container in containers(templates[env]["service"]).items():
        assert container["LogConfiguration"]["LogDriver"] == "awslogs", f"{name} logs nowhere"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_credentials_reach_containers_only_as_secrets(templates: Templates, env: str) -> None:
    task_containers = containers(templates[env]["service"])
    for name, container in task_containers.items():
        plain = {variable["Name"] for variable in container.get("Environment", [])}
        assert not plain & CREDENTIAL_VARIABLES, f"{name} gets credentials in plain: {plain}"
        assert "{{resolve:" not in json.dumps(container.get("Environment", []))
    secrets = {n: {s["Name"] for s in c.get("Secrets", [])} for n, c in task_containers.items()}
    platform = CREDENTIAL_VARIABLES - {"MLFLOW_BACKEND_STORE_URI"}
    assert secrets["api"] == platform - {"RISK_AUDIT_OWNER_URL"}, "the API never migrates"
    assert secrets["worker"] == platform - {"RISK_API_KEYS"}, "the worker serves no API"
    for job in SCHEDULED_JOBS:
        assert secrets[job.name] == platform - JOBS_WITHOUT, f"{job.name}: {secrets[job.name]}"
    assert secrets["mlflow"] == {"MLFLOW_BACKEND_STORE_URI"}, "only the server holds the DB URL"
    for part in ("data", "service"):
        for secret in resources(templates[env][part], "AWS::SecretsManager::Secret"):
            properties = secret["Properties"]
            composed = "{{resolve:secretsmanager:" in json.dumps(properties.get("SecretString"))
            assert "GenerateSecretString" in properties or composed, (
                "every secret is generated or built from references to generated ones"
            )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_containers_get_what_the_aws_profile_reads(templates: Templates, env: str) -> None:
    task_containers = containers(templates[env]["service"])
    required = required_variables("aws")
    shared: dict[str, str] = {}
    for name in ("api", "worker", *(job.name for job in SCHEDULED_JOBS)):
        container = task_containers[name]
        plain = {v["Name"]: v["Value"] for v in container["Environment"]}
        from_secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
        given = set(plain) | set(from_secrets)
        assert plain["RISK_ENV"] == "aws"
        assert required <= given, f"{name} lacks {required - given}"
        # consistently: a variable has the same value (or secret field) in every task
        for variable, value in {**plain, **from_secrets}.items():
            text = json.dumps(value, sort_keys=True)
            assert shared.setdefault(variable, text) == text, f"{name} sets {variable} otherwise"
    assert task_containers["api"]["Command"] == list(API_COMMAND)
    assert task_containers["api"]["PortMappings"][0]["ContainerPort"] == API_PORT


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_roles_grant_sensitive_actions_on_named_resources_only(
    templates: Templates, env: str
) -> None:
    for part, template in templates[env].items():
        for statement in policy_statements(template):
            actions = as_list(statement["Action"])
            sensitive = [a for a in actions if a.split(":")[0] in SENSITIVE_SERVICES]
            if not sensitive or statement["Effect"] != "Allow":
                continue
            assert "*" not in as_list(statement["Resource"]), f"{env}-{part}: {sensitive} on *"
            assert not [a for a in sensitive if a.endswith(":*")], f"{env}-{part}: {sensitive}"
        for role in resources(template, "AWS::IAM::Role"):
            assert "ManagedPolicyArns" not in role["Properties"], "roles carry only their grants"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_api_scales_on_cpu_and_request_count(templates: Templates, env: str) -> None:
    service = templates[env]["service"]
    metrics = {
        policy["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]
        for policy in resources(service, "AWS::ApplicationAutoScaling::ScalingPolicy")
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    target = only(service, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert target["MinCapacity"] < target["MaxCapacity"]


def _database(t: dict[str, Template]) -> dict[str, Any]:
    return only(t["data"], "AWS::RDS::DBInstance")


def _cache(t: dict[str, Template]) -> dict[str, Any]:
    return only(t["data"], "AWS::ElastiCache::ReplicationGroup")["Properties"]


def _search(t: dict[str, Template]) -> dict[str, Any]:
    return only(t["data"], "AWS::OpenSearchService::Domain")["Properties"]["ClusterConfig"]


def _shortest_log_retention(t: dict[str, Template]) -> int:
    return min(
        g["Properties"]["RetentionInDays"]
        for part in t.values()
        for g in resources(part, "AWS::Logs::LogGroup")
    )


def _load_balancer_protected(t: dict[str, Template]) -> bool:
    attributes = only(t["service"], "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    return {"Key": "deletion_protection.enabled", "Value": "true"} in attributes[
        "LoadBalancerAttributes"
    ]


def _fewest_buckets_kept(t: dict[str, Template]) -> int:
    return min(
        DELETION_POLICY_RANK[b["DeletionPolicy"]] for b in resources(t["data"], "AWS::S3::Bucket")
    )


STRICTER_IN_PROD: dict[str, Callable[[dict[str, Template]], Any]] = {
    "database deletion protection": lambda t: _database(t)["Properties"]["DeletionProtection"],
    "database multi-AZ": lambda t: _database(t)["Properties"]["MultiAZ"],
    "database backup days": lambda t: _database(t)["Properties"]["BackupRetentionPeriod"],
    "database kept on delete": lambda t: DELETION_POLICY_RANK[_database(t)["DeletionPolicy"]],
    "cache multi-AZ": lambda t: _cache(t)["MultiAZEnabled"],
    "cache replicas": lambda t: _cache(t)["ReplicasPerNodeGroup"],
    "cache snapshot days": lambda t: _cache(t)["SnapshotRetentionLimit"],
    "search zone awareness": lambda t: _search(t)["ZoneAwarenessEnabled"],
    "search dedicated masters": lambda t: _search(t)["DedicatedMasterEnabled"],
    "buckets kept on delete": _fewest_buckets_kept,
    "log retention days": _shortest_log_retention,
    "load balancer deletion protection": _load_balancer_protected,
    "api minimum tasks": lambda t: only(
        t["service"], "AWS::ApplicationAutoScaling::ScalableTarget"
    )["Properties"]["MinCapacity"],
}


@pytest.mark.parametrize("setting", STRICTER_IN_PROD)
def test_prod_is_stricter_than_dev(templates: Templates, setting: str) -> None:
    read = STRICTER_IN_PROD[setting]
    dev, prod = read(templates["dev"]), read(templates["prod"])
    assert prod > dev, f"{setting}: prod {prod!r} is not stricter than dev {dev!r}"


def test_compose_runs_the_engine_versions_deployed(templates: Templates) -> None:
    compose = yaml.safe_load((REPO / "infra" / "docker" / "compose.yaml").read_text())
    local = {name: s["image"].split(":")[1] for name, s in compose["services"].items()}
    data = templates["dev"]["data"]
    deployed = {
        "postgres": only(data, "AWS::RDS::DBInstance")["Properties"]["EngineVersion"],
        "redis": _cache(templates["dev"])["EngineVersion"],
        "opensearch": only(data, "AWS::OpenSearchService::Domain")["Properties"][
            "EngineVersion"
        ].removeprefix("OpenSearch_"),
    }
    for name, version in deployed.items():
        major = version.split(".")[0]
        assert local[name].split(".")[0].split("-")[0] == major, (
            f"{name}: {local[name]} vs {version}"
        )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_audit_checkpoints_go_to_a_bucket_nobody_can_delete_from(
    templates: Templates, env: str
) -> None:
    from infra.environments import ENVIRONMENTS as CONFIGS

    locked = [
        bucket
        for bucket in resources(templates[env]["data"], "AWS::S3::Bucket")
        if bucket["Properties"].get("ObjectLockEnabled")
    ]
    assert len(locked) == 1, "one bucket, the audit anchor, has Object Lock"
    (anchor,) = locked
    rule = anchor["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert rule == {"Mode": "COMPLIANCE", "Days": CONFIGS[env].audit_anchor_retention_days}
    assert anchor["DeletionPolicy"] == "Retain", "checkpoints outlive the stack"
    for statement in policy_statements(templates[env]["service"]):
        deletes = [a for a in as_list(statement["Action"]) if a.startswith("s3:Delete")]
        assert not deletes or "AuditAnchor" not in json.dumps(statement["Resource"]), (
            f"a task may delete checkpoints: {deletes}"
        )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_alert_rules_are_loaded_into_managed_prometheus(templates: Templates, env: str) -> None:
    observability = templates[env]["observability"]
    (workspace_id,) = observability.find_resources("AWS::APS::Workspace")
    namespace = only(observability, "AWS::APS::RuleGroupsNamespace")["Properties"]
    committed = (REPO / "infra" / "prometheus" / "alerts.yml").read_text()

    assert namespace["Workspace"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    assert namespace["Data"] == committed, (
        "the namespace holds other rules than infra/prometheus/alerts.yml (python -m infra.alerts)"
    )
