"""The collector's metrics pipeline: every series leaves a task labelled with that task.

The ECS detector's attributes and the resource processor's actions are applied here to a task's
metadata as the collector applies them, so a wrong pattern or a forgotten attribute fails here
rather than as series of several tasks sharing their labels in Managed Prometheus. Plain Python:
no synthesis, no collector binary (the sidecar image is not run here).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from infra.collector import TASK_FAMILY_LABEL, TASK_ID_LABEL, collector_config
from infra.image import API_PORT

TASK_ID = "0f3c2b9a4e5d4c7f8a1b2c3d4e5f6a7b"
# What the ECS detector reports for a Fargate task of the API, plus the scrape's own attributes.
API_TASK_RESOURCE = {
    "service.name": "risk-service",
    "service.instance.id": "127.0.0.1:3000",
    "server.port": "3000",
    "url.scheme": "http",
    "cloud.provider": "aws",
    "cloud.platform": "aws_ecs",
    "cloud.account.id": "123456789012",
    "cloud.region": "eu-west-1",
    "cloud.availability_zone": "eu-west-1a",
    "aws.ecs.cluster.arn": "arn:aws:ecs:eu-west-1:123456789012:cluster/risk-prod",
    "aws.ecs.task.arn": f"arn:aws:ecs:eu-west-1:123456789012:task/risk-prod/{TASK_ID}",
    "aws.ecs.task.family": "riskprodserviceApiTask",
    "aws.ecs.task.id": TASK_ID,
    "aws.ecs.task.revision": "42",
    "aws.ecs.launchtype": "fargate",
    "aws.log.group.names": "risk-prod-ApiLogs",
    "aws.log.stream.names": "api/api/0f3c",
}


def apply_resource_actions(actions: list[dict[str, Any]], attributes: dict[str, str]) -> dict:
    """The resource processor's insert, extract and delete, in order (Go's and Python's named
    groups read alike: ``(?P<name>...)``)."""
    result = dict(attributes)
    for action in actions:
        key, kind = action["key"], action["action"]
        if kind == "insert" and key not in result and action["from_attribute"] in result:
            result[key] = result[action["from_attribute"]]
        elif kind == "extract" and key in result:
            match = re.match(action["pattern"], result[key])
            result |= match.groupdict() if match else {}
        elif kind == "delete":
            result.pop(key, None)
        elif kind not in {"insert", "extract", "delete"}:
            raise AssertionError(f"action {kind} is not simulated here")
    return result


def test_metrics_pass_the_task_detector_then_the_label_processor() -> None:
    config = yaml.safe_load(collector_config(API_PORT))
    metrics = config["service"]["pipelines"]["metrics"]
    (detector, labels) = metrics["processors"]

    assert config["processors"][detector]["detectors"] == ["ecs"]
    assert set(config["processors"]) == {detector, labels}
    assert config["exporters"]["prometheusremotewrite"]["resource_to_telemetry_conversion"] == {
        "enabled": True
    }, "the resource attributes left must become labels"
    assert "processors" not in config["service"]["pipelines"]["traces"]


def test_a_task_s_series_carry_its_id_and_family_and_nothing_else_of_its_metadata() -> None:
    config = yaml.safe_load(collector_config(API_PORT))
    (_, labels) = config["service"]["pipelines"]["metrics"]["processors"]

    left = apply_resource_actions(config["processors"][labels]["attributes"], API_TASK_RESOURCE)

    assert left == {
        "service.name": "risk-service",
        "service.instance.id": "127.0.0.1:3000",
        TASK_ID_LABEL: TASK_ID,
        TASK_FAMILY_LABEL: "riskprodserviceApiTask",
    }


def test_two_tasks_of_one_service_get_different_labels() -> None:
    config = yaml.safe_load(collector_config(API_PORT))
    actions = config["processors"]["resource/ecs_task"]["attributes"]
    other = "9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
    second = API_TASK_RESOURCE | {
        "aws.ecs.task.arn": API_TASK_RESOURCE["aws.ecs.task.arn"].replace(TASK_ID, other),
        "aws.ecs.task.id": other,
    }

    first_labels = apply_resource_actions(actions, API_TASK_RESOURCE)
    second_labels = apply_resource_actions(actions, second)

    assert first_labels != second_labels, "the series of two API tasks would share their labels"
    assert second_labels[TASK_ID_LABEL] == other


def test_collectors_without_metrics_are_unchanged() -> None:
    config = yaml.safe_load(collector_config(None))

    assert "processors" not in config, "traces-only collectors need no task labels"
    assert set(config["service"]["pipelines"]) == {"traces"}
