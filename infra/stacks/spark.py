"""The managed Spark cluster of the feature build: an EMR Serverless application (ADR 0011).

Created only when the environment's ``spark_cluster`` is set. The application holds no code: a
job run names the packed virtual environment and the entry file under ``spark/features-build/``
in the artifacts bucket (docs/deploy.md). It runs under its own execution role, which gets the
locations ``infra/storage.py`` lists for ``features-build-spark`` and its log group, nothing
else; the ``features-build`` job's task role may start runs on this application and pass that
role to EMR Serverless, and nothing more.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_emrserverless as emrserverless
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.stacks.network import APP_SUBNET_GROUP
from infra.stacks.placement import TaskPlacement
from infra.storage import S3_ACCESS, SPARK_FEATURE_BUILD, Location

# No EMR release ships Spark 4.1 yet; emr-spark-8.0.0 ships 4.0.2 while the `spark` extra pins
# PySpark 4.1. Before a first run either move the extra to 4.0 or take a release with Spark 4.1
# (ADR 0011, "Not yet").
RELEASE_LABEL = "emr-spark-8.0.0"
RELEASE_SPARK_VERSION = "4.0.2"
# The packed environment is built on x86-64 Amazon Linux (docs/deploy.md); ARM64 needs it
# rebuilt there.
ARCHITECTURE = "X86_64"
EXECUTION_SERVICE = "emr-serverless.amazonaws.com"
# The scheduled job that may hand its build to the cluster.
SPARK_JOB = "features-build"
# What the job's task role may do with the application: start a run, follow it, cancel it.
SUBMIT_ACTIONS = ("emr-serverless:StartJobRun",)
FOLLOW_ACTIONS = ("emr-serverless:GetJobRun", "emr-serverless:CancelJobRun")
# Where EMR Serverless writes the driver's and executors' output; it looks the group up first.
LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
LOG_LOOKUP_ACTIONS = ("logs:DescribeLogGroups",)
Application = emrserverless.CfnApplication


class FeatureBuildCluster(Construct):
    """The EMR Serverless application, its execution role and what the submitter may do."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        placement: TaskPlacement,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        cluster = placement.config.spark_cluster
        if cluster is None:
            raise ValueError(f"{placement.config.name}: spark_cluster is not set")
        stack = cdk.Stack.of(self)
        self._placement = placement
        self.application = Application(
            self,
            "Application",
            name=f"{placement.config.stack_prefix}-features",
            type="SPARK",
            release_label=RELEASE_LABEL,
            architecture=ARCHITECTURE,
            auto_start_configuration=Application.AutoStartConfigurationProperty(enabled=True),
            auto_stop_configuration=Application.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=cluster.idle_minutes
            ),
            maximum_capacity=Application.MaximumAllowedResourcesProperty(
                cpu=cluster.max_cpu, memory=cluster.max_memory, disk=cluster.max_disk
            ),
            network_configuration=Application.NetworkConfigurationProperty(
                subnet_ids=vpc.select_subnets(subnet_group_name=APP_SUBNET_GROUP).subnet_ids,
                security_group_ids=[security_group.security_group_id],
            ),
            monitoring_configuration=Application.MonitoringConfigurationProperty(
                cloud_watch_logging_configuration=Application.CloudWatchLoggingConfigurationProperty(
                    enabled=True,
                    log_group_name=log_group.log_group_name,
                    log_stream_name_prefix=SPARK_JOB,
                )
            ),
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal(
                EXECUTION_SERVICE,
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": self.application.attr_arn},
                },
            ),
            description="Runs the Spark feature build on EMR Serverless",
        )
        for location, access in S3_ACCESS[SPARK_FEATURE_BUILD].items():
            placement.data.grant(self.execution_role, location, access)
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=list(LOG_WRITE_ACTIONS),
                resources=[log_group.log_group_arn],
            )
        )
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=list(LOG_LOOKUP_ACTIONS),
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )

    @property
    def job_runs_arn(self) -> str:
        return f"{self.application.attr_arn}/jobruns/*"

    def submitter_environment(self) -> dict[str, str]:
        """What a submitter needs to start the build on the cluster; none of it is a secret."""
        return {
            "RISK_EMR_APPLICATION_ID": self.application.attr_application_id,
            "RISK_EMR_EXECUTION_ROLE_ARN": self.execution_role.role_arn,
            "RISK_SPARK_CODE_URI": self._placement.data.s3_url(Location.SPARK_JOB_CODE),
        }

    def allow_submission(self, task: ecs.FargateTaskDefinition) -> None:
        """Let ``task`` start, follow and cancel runs here under the execution role, only."""
        task.add_to_task_role_policy(
            iam.PolicyStatement(actions=list(SUBMIT_ACTIONS), resources=[self.application.attr_arn])
        )
        task.add_to_task_role_policy(
            iam.PolicyStatement(actions=list(FOLLOW_ACTIONS), resources=[self.job_runs_arn])
        )
        task.add_to_task_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": EXECUTION_SERVICE}},
            )
        )
