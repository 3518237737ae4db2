"""The AWS Distro for OpenTelemetry collector's configuration: plain Python, no CDK import.

Traces go to X-Ray; where a container serves ``/metrics`` the collector scrapes it and remote-writes
to Managed Prometheus with SigV4, each series labelled with the ECS task it came from
(``ecs_task_id``, ``ecs_task_family``), so the series of several tasks stay apart.
``infra/stacks/telemetry.py`` puts it in each task's sidecar; the tests read it without the CDK.
"""

from __future__ import annotations

from typing import Any

import yaml

from infra.image import METRICS_JOB, METRICS_PATH, OTLP_HTTP_PORT

# Labels every remote-written series carries, so the series of several tasks stay apart in
# Managed Prometheus (each task scrapes itself as 127.0.0.1, so `instance` cannot tell them apart).
TASK_ID_LABEL = "ecs_task_id"
TASK_FAMILY_LABEL = "ecs_task_family"
# The ECS detector reads the task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4, on Fargate too).
TASK_DETECTOR = "resourcedetection/ecs"
TASK_LABELS = "resource/ecs_task"
# Task id: the last part of arn:aws:ecs:<region>:<account>:task/<cluster>/<id>.
TASK_ARN_PATTERN = r"^arn:[^:]+:ecs:[^:]*:[^:]*:task/[^/]+/(?P<ecs_task_id>[^/]+)$"
# Resource attributes that would otherwise become labels too: everything the ECS detector adds
# and the scrape's own, except service.name and service.instance.id (`job` and `instance`).
UNLABELLED_ATTRIBUTES = (
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.id",
    "aws.ecs.task.revision",
    "aws.ecs.cluster.arn",
    "aws.ecs.launchtype",
    "aws.log.group.names",
    "aws.log.group.arns",
    "aws.log.stream.names",
    "aws.log.stream.arns",
    "cloud.provider",
    "cloud.platform",
    "cloud.account.id",
    "cloud.region",
    "cloud.availability_zone",
    "server.port",
    "url.scheme",
    "net.host.port",
    "http.scheme",
)


def task_label_processors() -> dict[str, Any]:
    """Processors that turn the ECS task's metadata into the two task labels and drop the rest."""
    return {
        TASK_DETECTOR: {"detectors": ["ecs"], "timeout": "5s", "override": False},
        TASK_LABELS: {
            "attributes": [
                {"key": "aws.ecs.task.arn", "pattern": TASK_ARN_PATTERN, "action": "extract"},
                {
                    "key": TASK_FAMILY_LABEL,
                    "from_attribute": "aws.ecs.task.family",
                    "action": "insert",
                },
                *({"key": key, "action": "delete"} for key in UNLABELLED_ATTRIBUTES),
            ]
        },
    }


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
        config["processors"] = task_label_processors()
        config["exporters"]["prometheusremotewrite"] = {
            "endpoint": "${env:PROMETHEUS_REMOTE_WRITE_URL}",
            "auth": {"authenticator": "sigv4auth"},
            # The resource attributes left (the task labels) become labels of every series.
            "resource_to_telemetry_conversion": {"enabled": True},
        }
        config["service"]["extensions"].append("sigv4auth")
        pipelines["metrics"] = {
            "receivers": ["prometheus"],
            "processors": [TASK_DETECTOR, TASK_LABELS],
            "exporters": ["prometheusremotewrite"],
        }
    return yaml.safe_dump(config, sort_keys=False)
