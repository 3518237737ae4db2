"""The AWS Distro for OpenTelemetry collector, run as a sidecar beside each platform container.

The service exports traces to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the sidecar on localhost) and serves
Prometheus metrics on ``/metrics``; the sidecar forwards traces to X-Ray and, where a metrics port
is given, scrapes it and remote-writes to Managed Prometheus with SigV4, each series labelled
with the ECS task it came from (the configuration: ``infra/collector.py``).
"""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from infra.collector import collector_config
from infra.image import COLLECTOR_IMAGE

# X-Ray accepts no resource ARN for writes, so these are the one unscoped grant a task holds.
TRACE_WRITE_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)


def add_collector(
    task_definition: ecs.FargateTaskDefinition,
    *,
    log_group: logs.ILogGroup,
    metrics_port: int | None = None,
    remote_write_url: str | None = None,
    workspace_arn: str | None = None,
) -> ecs.ContainerDefinition:
    """Add the sidecar and grant the task role exactly what it forwards to."""
    environment = {"AOT_CONFIG_CONTENT": collector_config(metrics_port)}
    if metrics_port is not None:
        if remote_write_url is None or workspace_arn is None:
            raise ValueError("a metrics port needs a Prometheus workspace to write to")
        environment["PROMETHEUS_REMOTE_WRITE_URL"] = remote_write_url
        task_definition.add_to_task_role_policy(
            iam.PolicyStatement(actions=["aps:RemoteWrite"], resources=[workspace_arn])
        )
    task_definition.add_to_task_role_policy(
        iam.PolicyStatement(actions=list(TRACE_WRITE_ACTIONS), resources=["*"])
    )
    return task_definition.add_container(
        "collector",
        image=ecs.ContainerImage.from_registry(COLLECTOR_IMAGE),
        essential=False,
        environment=environment,
        logging=ecs.LogDrivers.aws_logs(stream_prefix="collector", log_group=log_group),
        memory_reservation_mib=256,
    )
