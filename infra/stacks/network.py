"""The VPC and the security groups that draw its boundaries.

Tiers: ``edge`` (public, NAT gateways only), ``app`` (private with egress: tasks, load balancer,
API Gateway's VPC link) and ``data`` (isolated: database, cache, search). The edge, load balancer
and task groups all live here, so the rules between them never point from an earlier stack to a
later one (CloudFormation exports cannot form a cycle).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.environments import EnvironmentConfig
from infra.image import API_PORT, MLFLOW_PORT

LISTENER_PORT = 80
HTTPS_PORT = 443
APP_SUBNET_GROUP = "app"
DATA_SUBNET_GROUP = "data"
APP_SUBNETS = ec2.SubnetSelection(subnet_group_name=APP_SUBNET_GROUP)
DATA_SUBNETS = ec2.SubnetSelection(subnet_group_name=DATA_SUBNET_GROUP)


class NetworkStack(cdk.Stack):
    """VPC, flow logs, and the security groups of the request path."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.vpc = _vpc(self, config)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(
                    self,
                    "FlowLogs",
                    retention=config.log_retention,
                    removal_policy=config.removal_policy,
                )
            ),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.vpc_link_security_group = self._security_group("VpcLink", "API Gateway VPC link")
        self.load_balancer_security_group = self._security_group("LoadBalancer", "internal ALB")
        self.task_security_group = self._security_group(
            "Tasks", "API, worker, job and tracking server tasks", allow_all_outbound=True
        )
        self._allow(self.vpc_link_security_group, self.load_balancer_security_group, LISTENER_PORT)
        self._allow(self.load_balancer_security_group, self.task_security_group, API_PORT)
        # The tracking server: tasks call it through the internal ALB, which forwards to its task.
        self._allow(self.task_security_group, self.load_balancer_security_group, MLFLOW_PORT)
        self._allow(self.load_balancer_security_group, self.task_security_group, MLFLOW_PORT)
        self.spark_security_group = (
            self._spark_security_group() if config.spark_cluster is not None else None
        )

    def _spark_security_group(self) -> ec2.SecurityGroup:
        """The EMR Serverless workers: no data service admits them and nothing calls them; they
        reach S3 (the gateway endpoint), CloudWatch Logs and STS over HTTPS only."""
        group = self._security_group("Spark", "EMR Serverless feature build")
        group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "AWS APIs and S3 over HTTPS"
        )
        return group

    def _security_group(
        self, name: str, purpose: str, *, allow_all_outbound: bool = False
    ) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self,
            f"{name}SecurityGroup",
            vpc=self.vpc,
            description=f"{purpose} ({self.stack_name})",
            allow_all_outbound=allow_all_outbound,
        )

    @staticmethod
    def _allow(source: ec2.SecurityGroup, target: ec2.SecurityGroup, port: int) -> None:
        """Open one TCP port from one group to another, on both sides of the connection."""
        source.connections.allow_to(target, ec2.Port.tcp(port), f"to port {port}")


def _vpc(scope: Construct, config: EnvironmentConfig) -> ec2.Vpc:
    """Two zones; S3 traffic stays on the gateway endpoint rather than the NAT gateways."""
    vpc = ec2.Vpc(
        scope,
        "Vpc",
        ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
        max_azs=2,
        nat_gateways=config.nat_gateways,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="edge", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
            ec2.SubnetConfiguration(
                name=APP_SUBNET_GROUP, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
            ),
            ec2.SubnetConfiguration(
                name=DATA_SUBNET_GROUP, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
            ),
        ],
    )
    vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
    return vpc
