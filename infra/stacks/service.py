"""The platform on ECS Fargate: the risk API behind an internal ALB and API Gateway, and the worker.

Request path: HTTP API (public, TLS, throttled, access-logged) → VPC link → internal ALB →
Fargate tasks in the ``app`` subnets. The same ALB carries the MLflow tracking server on its own
listener (``infra/stacks/tracking.py``); the scheduled jobs run the same image on EventBridge
schedules (``infra/stacks/jobs.py``); the worker task definition is for one-off commands. All read
the `aws` profile: endpoints as plain environment variables, anything carrying a credential as an
ECS secret from Secrets Manager.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.environments import EnvironmentConfig
from infra.image import API_COMMAND, API_PORT, OTLP_HTTP_PORT, READINESS_PATH, ServiceImage
from infra.stacks.data import DataStack
from infra.stacks.jobs import ScheduledJobs
from infra.stacks.network import APP_SUBNETS, LISTENER_PORT, NetworkStack
from infra.stacks.observability import ObservabilityStack
from infra.stacks.placement import TaskPlacement
from infra.stacks.spark import FeatureBuildCluster
from infra.stacks.telemetry import add_collector
from infra.stacks.tracking import PROXIED_ARTIFACT_ROOT, TrackingServer
from infra.storage import S3_ACCESS, Location

# Searching the evidence index; only the worker writes to it.
SEARCH_READ_ACTIONS = ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost")
SEARCH_WRITE_ACTIONS = (*SEARCH_READ_ACTIONS, "es:ESHttpPut", "es:ESHttpDelete")
CPU_TARGET_PERCENT = 60
# HTTP API context variables, one JSON object per request.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class JsonAccessLogs:
    """API Gateway access logs as one JSON object per request (a jsii interface, not a struct)."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS))


class ServiceStack(cdk.Stack):
    """ECS cluster, API service with autoscaling, HTTP API, tracking server, worker and jobs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        image: ServiceImage,
        network: NetworkStack,
        data: DataStack,
        observability: ObservabilityStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        self._network = network
        self._data = data
        self._observability = observability
        self._image = _container_image(self, image)
        self.api_keys = secretsmanager.Secret(
            self,
            "ApiKeys",
            description=f"{config.stack_prefix} bearer keys for the API (RISK_API_KEYS)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=48
            ),
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENHANCED,
        )
        placement = TaskPlacement(
            config, self.cluster, self._image, network.task_security_group, data
        )
        self.load_balancer = self._load_balancer()
        self.tracking = TrackingServer(
            self,
            "Tracking",
            placement=placement,
            load_balancer=self.load_balancer,
            log_group=observability.tracking_logs,
        )
        self.api_service, target_group, listener = self._api_service(placement)
        self._autoscale(self.api_service, target_group)
        self.http_api = self._http_api(listener)
        self.worker_task = self._worker_task()
        self.spark = self._spark_cluster(placement)
        self.jobs = ScheduledJobs(
            self,
            "Jobs",
            placement=placement,
            environment=self._environment(),
            secrets=self._connection_secrets(),
            log_group=observability.worker_logs,
            alarm_topic=observability.alarm_topic,
            spark=self.spark,
        )
        cdk.CfnOutput(self, "ApiUrl", value=self.http_api.api_endpoint)
        cdk.CfnOutput(self, "MlflowUrl", value=self.tracking.url)
        if self.spark is not None:
            cdk.CfnOutput(
                self, "SparkApplicationId", value=self.spark.application.attr_application_id
            )
            cdk.CfnOutput(self, "SparkExecutionRoleArn", value=self.spark.execution_role.role_arn)

    def _spark_cluster(self, placement: TaskPlacement) -> FeatureBuildCluster | None:
        """The EMR Serverless application of the feature build, if the environment has one."""
        network, spark_logs = self._network, self._observability.spark_logs
        if self._config.spark_cluster is None:
            return None
        assert network.spark_security_group is not None and spark_logs is not None
        return FeatureBuildCluster(
            self,
            "Spark",
            placement=placement,
            vpc=network.vpc,
            security_group=network.spark_security_group,
            log_group=spark_logs,
        )

    def _environment(self) -> dict[str, str]:
        """Endpoints the `aws` profile reads, the same for every task; none is a credential."""
        data = self._data
        return {
            "RISK_ENV": "aws",
            "RISK_DATA_URI": data.s3_url(Location.DATA),
            "RISK_FEATURES_URI": data.s3_url(Location.FEATURES),
            "RISK_REPORTS_URI": data.s3_url(Location.REPORTS),
            "RISK_MLFLOW_URL": self.tracking.url,
            "RISK_ARTIFACT_URI": PROXIED_ARTIFACT_ROOT,
            "RISK_FEAST_REGISTRY_URI": data.s3_url(Location.FEAST_REGISTRY),
            "OPENSEARCH_URL": f"https://{data.search.domain_endpoint}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{OTLP_HTTP_PORT}",
            "RISK_AUDIT_ANCHOR_URI": data.s3_url(Location.AUDIT_ANCHOR),
        }

    def _connection_secrets(self) -> dict[str, ecs.Secret]:
        """URLs with credentials in them, injected by ECS from Secrets Manager at task start.

        Every task of the platform image gets these; the signing key, the audit owner's URL and
        the API keys go only to the tasks that use them.
        """
        urls = self._data.connection_urls
        return {
            "RISK_AUDIT_URL": ecs.Secret.from_secrets_manager(urls, "audit_url"),
            # Jobs record their successes there; the API publishes them and the monitoring results.
            "RISK_OPERATIONS_URL": ecs.Secret.from_secrets_manager(urls, "operations_url"),
            "RISK_REDIS_URL": ecs.Secret.from_secrets_manager(urls, "redis_url"),
            "RISK_FEAST_REDIS": ecs.Secret.from_secrets_manager(urls, "feast_redis"),
        }

    def _signing_key(self) -> dict[str, ecs.Secret]:
        """Signs audit checkpoints; the service role's URL cannot touch them."""
        return {
            "RISK_AUDIT_SIGNING_KEY": ecs.Secret.from_secrets_manager(self._data.audit_signing_key)
        }

    def _api_task(self) -> ecs.FargateTaskDefinition:
        """The API reads the Feast registry, appends checkpoints, queries evidence; models come
        through the tracking server."""
        config = self._config
        task = ecs.FargateTaskDefinition(
            self, "ApiTask", cpu=config.api_cpu, memory_limit_mib=config.api_memory_mib
        )
        task.add_container(
            "api",
            image=self._image,
            command=list(API_COMMAND),
            port_mappings=[ecs.PortMapping(container_port=API_PORT)],
            environment=self._environment(),
            secrets={
                **self._connection_secrets(),
                **self._signing_key(),
                "RISK_API_KEYS": ecs.Secret.from_secrets_manager(self.api_keys),
            },
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="api", log_group=self._observability.api_logs
            ),
        )
        add_collector(
            task,
            log_group=self._observability.api_logs,
            metrics_port=API_PORT,
            remote_write_url=self._observability.remote_write_url,
            workspace_arn=self._observability.prometheus.attr_arn,
        )
        self._grant_s3("api", task)
        self._grant_search(task.task_role, SEARCH_READ_ACTIONS)
        return task

    def _load_balancer(self) -> elbv2.ApplicationLoadBalancer:
        """Internal only: the API listener for the VPC link, the MLflow one for the tasks."""
        network = self._network
        return elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=network.vpc,
            internet_facing=False,
            vpc_subnets=APP_SUBNETS,
            security_group=network.load_balancer_security_group,
            deletion_protection=self._config.deletion_protection,
            drop_invalid_header_fields=True,
        )

    def _api_service(
        self, placement: TaskPlacement
    ) -> tuple[ecs.FargateService, elbv2.ApplicationTargetGroup, elbv2.ApplicationListener]:
        """Fargate service behind the internal ALB's API listener."""
        service = placement.load_balanced_service(
            self, "Api", self._api_task(), self._config.api_min_tasks
        )
        listener = self.load_balancer.add_listener(
            "Http", port=LISTENER_PORT, protocol=elbv2.ApplicationProtocol.HTTP, open=False
        )
        target_group = listener.add_targets(
            "Api",
            port=API_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[service],
            health_check=elbv2.HealthCheck(path=READINESS_PATH, healthy_http_codes="200"),
            deregistration_delay=cdk.Duration.seconds(30),
        )
        return service, target_group, listener

    def _autoscale(
        self, service: ecs.FargateService, target_group: elbv2.ApplicationTargetGroup
    ) -> None:
        """Scoring is stateless, so more load means more tasks: on CPU and on request count."""
        scaling = service.auto_scale_task_count(
            min_capacity=self._config.api_min_tasks, max_capacity=self._config.api_max_tasks
        )
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=CPU_TARGET_PERCENT)
        scaling.scale_on_request_count(
            "Requests",
            requests_per_target=self._config.api_requests_per_task_minute,
            target_group=target_group,
        )

    def _http_api(self, listener: elbv2.ApplicationListener) -> apigwv2.HttpApi:
        """The public entry: TLS and throttling at API Gateway; bearer keys checked by the app."""
        link = apigwv2.VpcLink(
            self,
            "VpcLink",
            vpc=self._network.vpc,
            subnets=APP_SUBNETS,
            security_groups=[self._network.vpc_link_security_group],
        )
        api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=self._config.stack_prefix,
            create_default_stage=False,
            default_integration=integrations.HttpAlbIntegration("Alb", listener, vpc_link=link),
        )
        apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=self._config.api_rate_limit_per_second,
                burst_limit=self._config.api_rate_limit_per_second * 2,
            ),
            access_log_settings=JsonAccessLogs(self._observability.gateway_logs),
        )
        return api

    def _worker_task(self) -> ecs.FargateTaskDefinition:
        """One-off commands (migrations, uploads, `features apply`, audit checks, the bento build):
        run with ``aws ecs run-task`` and a command override (docs/deploy.md)."""
        config, data = self._config, self._data
        task = ecs.FargateTaskDefinition(
            self, "WorkerTask", cpu=config.worker_cpu, memory_limit_mib=config.worker_memory_mib
        )
        task.add_container(
            "worker",
            image=self._image,
            environment=self._environment(),
            secrets={
                **self._connection_secrets(),
                **self._signing_key(),
                # Migrations run from the worker, as the role that owns the audit tables.
                "RISK_AUDIT_OWNER_URL": ecs.Secret.from_secrets_manager(
                    data.connection_urls, "audit_owner_url"
                ),
            },
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="worker", log_group=self._observability.worker_logs
            ),
        )
        add_collector(task, log_group=self._observability.worker_logs)
        self._grant_s3("worker", task)
        self._grant_search(task.task_role, SEARCH_WRITE_ACTIONS)
        return task

    def _grant_s3(self, workload: str, task: ecs.FargateTaskDefinition) -> None:
        for location, access in S3_ACCESS[workload].items():
            self._data.grant(task.task_role, location, access)

    def _grant_search(self, role: iam.IRole, actions: tuple[str, ...]) -> None:
        domain_arn = self._data.search.domain_arn
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(actions), resources=[domain_arn, f"{domain_arn}/*"])
        )


def _container_image(scope: Construct, image: ServiceImage) -> ecs.ContainerImage:
    """The platform image from ECR; pull rights are granted for this one repository only."""
    repository = ecr.Repository.from_repository_name(scope, "ServiceRepository", image.repository)
    return ecs.ContainerImage.from_ecr_repository(repository, image.tag)
