"""The scheduled jobs: one Fargate task definition, EventBridge rule and alarm per job.

Each job runs the platform image as ``riskctl jobs run NAME`` under its own task role, which gets
the S3 locations ``infra/storage.py`` lists for it and nothing else. Two things can go wrong:

- EventBridge cannot start the task (no capacity, a bad task definition, a missing image): the
  rule's ``FailedInvocations`` metric counts it and this module's alarm notifies the alarm topic;
- the task starts and the job fails or hangs: nothing in EventBridge sees that, so each job
  records its last success and Prometheus alerts when it is late (``infra/prometheus``).
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.image import SCHEDULED_JOBS, ScheduledJob
from infra.stacks.network import APP_SUBNETS
from infra.stacks.placement import TaskPlacement
from infra.stacks.spark import SPARK_JOB, FeatureBuildCluster
from infra.stacks.telemetry import add_collector
from infra.storage import S3_ACCESS

# A start that fails is retried for up to an hour, the period of the most frequent job.
RETRY_ATTEMPTS = 3
MAX_EVENT_AGE = cdk.Duration.hours(1)


class ScheduledJobs(Construct):
    """Every job of ``SCHEDULED_JOBS`` on the cluster, each with its own role and alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        placement: TaskPlacement,
        environment: Mapping[str, str],
        secrets: Mapping[str, ecs.Secret],
        log_group: logs.ILogGroup,
        alarm_topic: sns.ITopic,
        spark: FeatureBuildCluster | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._placement = placement
        self._spark = spark
        self._environment = dict(environment)
        self._secrets = dict(secrets)
        self._log_group = log_group
        self.tasks: dict[str, ecs.FargateTaskDefinition] = {}
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for job in SCHEDULED_JOBS:
            task = self._task(job)
            rule = events.Rule(
                self,
                f"{job.title}Schedule",
                description=job.description,
                schedule=events.Schedule.expression(job.schedule),
                targets=[
                    targets.EcsTask(
                        cluster=placement.cluster,
                        task_definition=task,
                        launch_type=ecs.LaunchType.FARGATE,
                        subnet_selection=APP_SUBNETS,
                        security_groups=[placement.security_group],
                        retry_attempts=RETRY_ATTEMPTS,
                        max_event_age=MAX_EVENT_AGE,
                    )
                ],
            )
            alarm = _failed_start_alarm(self, job, rule)
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarm_topic))
            self.tasks[job.name] = task
            self.alarms[job.name] = alarm

    def _task(self, job: ScheduledJob) -> ecs.FargateTaskDefinition:
        """The worker image running one job, with the worker's size and the job's own grants.

        With a Spark cluster, the feature build's task may also hand the build to it.
        """
        placement = self._placement
        spark = self._spark if job.name == SPARK_JOB else None
        task = ecs.FargateTaskDefinition(
            self,
            f"{job.title}Task",
            cpu=placement.config.worker_cpu,
            memory_limit_mib=placement.config.worker_memory_mib,
        )
        task.add_container(
            job.name,
            image=placement.image,
            command=list(job.command),
            environment={
                **self._environment,
                **(spark.submitter_environment() if spark else {}),
            },
            secrets=self._secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=job.name, log_group=self._log_group),
        )
        add_collector(task, log_group=self._log_group)
        for location, access in S3_ACCESS[job.name].items():
            placement.data.grant(task.task_role, location, access)
        if spark is not None:
            spark.allow_submission(task)
        return task


def _failed_start_alarm(scope: Construct, job: ScheduledJob, rule: events.Rule) -> cloudwatch.Alarm:
    """Alarm when EventBridge gave up starting the job's task (after its retries)."""
    failed = cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name="FailedInvocations",
        dimensions_map={"RuleName": rule.rule_name},
        statistic="Sum",
        period=cdk.Duration.minutes(5),
    )
    return cloudwatch.Alarm(
        scope,
        f"{job.title}FailedStart",
        alarm_description=f"EventBridge could not start `riskctl jobs run {job.name}`",
        metric=failed,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
