"""The MLflow tracking server: a Fargate service behind the internal ALB, on its own listener.

Runs and the model registry live in the ``risk_mlflow`` PostgreSQL database; artifacts go to the
artifacts bucket under ``mlflow/``, proxied by the server (``--serve-artifacts``), so the server's
role is the only one with access to that prefix and clients need no S3 grant for models. The
listener admits the task security group only; API Gateway's VPC link reaches the API listener and
never this one.
"""

from __future__ import annotations

import ipaddress

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.image import MLFLOW_HEALTH_PATH, MLFLOW_PORT
from infra.stacks.placement import TaskPlacement
from infra.storage import S3_ACCESS, Location

TRACKING_CPU = 1024
TRACKING_MEMORY_MIB = 2048
# Experiments are created with this artifact location prefix (RISK_ARTIFACT_URI), which the
# server maps to its --artifacts-destination: clients upload and download through the server.
PROXIED_ARTIFACT_ROOT = "mlflow-artifacts:/experiments"


def server_arguments(artifacts_destination: str) -> list[str]:
    """``mlflow server`` arguments, but for the backend store.

    That URI carries the database password, so it comes from the secret as
    MLFLOW_BACKEND_STORE_URI, which ``mlflow server`` reads for ``--backend-store-uri``: no shell
    is needed to expand it, and it never appears in the task definition.
    """
    return [
        "server",
        "--artifacts-destination",
        artifacts_destination,
        "--serve-artifacts",
        "--host",
        "0.0.0.0",
        "--port",
        str(MLFLOW_PORT),
    ]


def vpc_host_pattern(vpc_cidr: str) -> str:
    """A Host-header pattern for the VPC's addresses (the ALB health checks use the task's IP)."""
    network = ipaddress.ip_network(vpc_cidr)
    if network.prefixlen % 8:
        raise ValueError(f"{vpc_cidr}: the VPC's prefix must be whole octets")
    octets = str(network.network_address).split(".")[: network.prefixlen // 8]
    return ".".join([*octets, "*"])


class TrackingServer(Construct):
    """``mlflow server`` from the platform image, on ``MLFLOW_PORT`` of the internal ALB."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        placement: TaskPlacement,
        load_balancer: elbv2.ApplicationLoadBalancer,
        log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        config, data = placement.config, placement.data
        host = load_balancer.load_balancer_dns_name
        self.url = f"http://{host}:{MLFLOW_PORT}"
        task = ecs.FargateTaskDefinition(
            self, "Task", cpu=TRACKING_CPU, memory_limit_mib=TRACKING_MEMORY_MIB
        )
        task.add_container(
            "mlflow",
            image=placement.image,
            entry_point=["mlflow"],
            command=server_arguments(data.s3_url(Location.MLFLOW_ARTIFACTS)),
            port_mappings=[ecs.PortMapping(container_port=MLFLOW_PORT)],
            environment={
                # MLflow refuses requests whose Host it does not know (DNS rebinding guard):
                # clients come through the ALB's name, health checks by the task's address.
                "MLFLOW_SERVER_ALLOWED_HOSTS": ",".join(
                    (f"{host}:{MLFLOW_PORT}", host, vpc_host_pattern(config.vpc_cidr))
                ),
            },
            secrets={
                "MLFLOW_BACKEND_STORE_URI": ecs.Secret.from_secrets_manager(
                    data.connection_urls, "mlflow_url"
                ),
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix="mlflow", log_group=log_group),
        )
        for location, access in S3_ACCESS["mlflow"].items():
            data.grant(task.task_role, location, access)
        self.service = placement.load_balanced_service(self, "Service", task, config.tracking_tasks)
        listener = load_balancer.add_listener(
            "Mlflow", port=MLFLOW_PORT, protocol=elbv2.ApplicationProtocol.HTTP, open=False
        )
        listener.add_targets(
            "Mlflow",
            port=MLFLOW_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            health_check=elbv2.HealthCheck(path=MLFLOW_HEALTH_PATH, healthy_http_codes="200"),
            deregistration_delay=cdk.Duration.seconds(30),
        )
