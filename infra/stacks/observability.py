"""Where metrics, traces and logs go: Managed Prometheus, Managed Grafana and CloudWatch Logs.

The alert rules (``infra/alerts.py``, rendered for the runbook's base URL in the context
``runbook_base_url``) are loaded into the Prometheus workspace as one rule groups namespace.

The service's ``/metrics`` and its OTLP traces reach AWS through a collector sidecar (see
``infra/stacks/telemetry.py``); this stack owns the destinations and how long logs are kept.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_aps as aps
from aws_cdk import aws_grafana as grafana
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.alerts import DEFAULT_RUNBOOK_BASE_URL, render
from infra.environments import EnvironmentConfig

# `-c runbook_base_url=...`: where docs/runbook.md is published (the alerts' runbook_url links).
RUNBOOK_CONTEXT = "runbook_base_url"

# Read-only: Grafana queries the workspace; CloudWatch metrics and X-Ray have no resource ARNs.
PROMETHEUS_QUERY_ACTIONS = (
    "aps:QueryMetrics",
    "aps:GetSeries",
    "aps:GetLabels",
    "aps:GetMetricMetadata",
    "aps:DescribeWorkspace",
)
UNSCOPED_READ_ACTIONS = (
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "xray:GetTraceSummaries",
    "xray:BatchGetTraces",
    "xray:GetServiceGraph",
)


class ObservabilityStack(cdk.Stack):
    """Prometheus and Grafana workspaces, log groups, and the topic alarms notify."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        self.prometheus = aps.CfnWorkspace(self, "Prometheus", alias=config.stack_prefix)
        self.alert_rules = aps.CfnRuleGroupsNamespace(
            self,
            "AlertRules",
            workspace=self.prometheus.attr_arn,
            name=f"{config.stack_prefix}-alerts",
            data=render(self.node.try_get_context(RUNBOOK_CONTEXT) or DEFAULT_RUNBOOK_BASE_URL),
        )
        self.grafana = grafana.CfnWorkspace(
            self,
            "Grafana",
            name=config.stack_prefix,
            description=f"Dashboards for {config.stack_prefix}",
            account_access_type="CURRENT_ACCOUNT",
            authentication_providers=["AWS_SSO"],
            permission_type="CUSTOMER_MANAGED",
            role_arn=self._grafana_role().role_arn,
            data_sources=["PROMETHEUS", "CLOUDWATCH", "XRAY"],
        )
        self.api_logs = self._log_group("ApiLogs")
        self.worker_logs = self._log_group("WorkerLogs")
        self.tracking_logs = self._log_group("TrackingLogs")
        self.gateway_logs = self._log_group("GatewayAccessLogs")
        # EMR Serverless driver and executor logs of the Spark feature build, when it is on.
        self.spark_logs = self._log_group("SparkLogs") if config.spark_cluster else None
        # CloudWatch alarms (a scheduled job that could not start) notify this topic; subscribe
        # the on-call address or pager to it. Unencrypted: CloudWatch cannot publish to a topic
        # under the AWS-managed SNS key, and an alarm names a job, never data.
        self.alarm_topic = sns.Topic(
            self, "Alarms", display_name=f"{config.stack_prefix} alarms", enforce_ssl=True
        )

    @property
    def remote_write_url(self) -> str:
        return f"{self.prometheus.attr_prometheus_endpoint}api/v1/remote_write"

    def _grafana_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "GrafanaRole",
            assumed_by=iam.ServicePrincipal(
                "grafana.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            ),
            description="Lets Managed Grafana read this environment's metrics and traces",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=list(PROMETHEUS_QUERY_ACTIONS), resources=[self.prometheus.attr_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=list(UNSCOPED_READ_ACTIONS), resources=["*"])
        )
        return role

    def _log_group(self, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            name,
            retention=self._config.log_retention,
            removal_policy=self._config.removal_policy,
        )
