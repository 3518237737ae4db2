"""The AWS Distro for OpenTelemetry collector, run as a sidecar beside each platform container.

The service exports traces to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the sidecar on localhost) and serves
Prometheus metrics on ``/metrics``; the sidecar forwards traces to X-Ray and, where a metrics port
is given, scrapes it and remote-writes to Managed Prometheus with SigV4.
"""

from __future__ import annotations

from typing import Any

import yaml
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from infra.image import COLLECTOR_IMAGE, METRICS_JOB, METRICS_PATH, OTLP_HTTP_PORT

# X-Ray accepts no resource ARN for writes, so these are the one unscoped grant a task holds.
TRACE_WRITE_ACTIONS = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)


def collector_config(metrics_port: int | None) -> str:
    """Collector YAML: traces always, metrics only for a container that serves ``/metrics``.

    Endpoints come from the sidecar's environment (``${env:...}``), so the text is the same in
    every environment and stays readable in the task definition.
    """
    pipelines: dict[str, Any] = {"traces": {"receivers": ["otlp"], "exporters": ["awsxray"]}}
    config: dict[str, Any] = {
        "extensions": {"health_check": {}},
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{OTLP_HTTP_PORT}"}}}},
        "exporters": {"awsxray": {}},
        "service": {"extensions": ["health_check"], "pipelines": pipelines},
    }
    if metrics_port is not None:
        config["receivers"]["prometheus"] = {
            "config": {
                "scrape_configs": [
                    {
                        "job_name": METRICS_JOB,
                        # Keep the `job` label the service sets on its job gauges
                        # (risk_job_last_success_timestamp_seconds{job="drift"}); without this
                        # Prometheus renames it to `exported_job` and the job alerts never match.
                        "honor_labels": True,
                        "scrape_interval": "30s",
                        "metrics_path": METRICS_PATH,
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                    }
                ]
            }
        }
        config["extensions"]["sigv4auth"] = {"region": "${env:AWS_REGION}", "service": "aps"}
        config["exporters"]["prometheusremotewrite"] = {
            "endpoint": "${env:PROMETHEUS_REMOTE_WRITE_URL}",
            "auth": {"authenticator": "sigv4auth"},
        }
        config["service"]["extensions"].append("sigv4auth")
        pipelines["metrics"] = {
            "receivers": ["prometheus"],
            "exporters": ["prometheusremotewrite"],
        }
    return yaml.safe_dump(config, sort_keys=False)


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
