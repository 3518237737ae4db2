"""What every Fargate task of an environment shares: its settings, cluster, image, network, data."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from infra.environments import EnvironmentConfig
from infra.stacks.data import DataStack
from infra.stacks.network import APP_SUBNETS


@dataclass(frozen=True)
class TaskPlacement:
    """Handed to the constructs that add tasks to the service stack (tracking server, jobs)."""

    config: EnvironmentConfig
    cluster: ecs.ICluster
    image: ecs.ContainerImage
    # The task security group: the data services and the ALB admit it.
    security_group: ec2.ISecurityGroup
    data: DataStack

    def load_balanced_service(
        self,
        scope: Construct,
        construct_id: str,
        task_definition: ecs.FargateTaskDefinition,
        desired_count: int,
    ) -> ecs.FargateService:
        """A service for an ALB target group: private, and a failed deployment rolls back."""
        service = ecs.FargateService(
            scope,
            construct_id,
            cluster=self.cluster,
            task_definition=task_definition,
            desired_count=desired_count,
            vpc_subnets=APP_SUBNETS,
            security_groups=[self.security_group],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=cdk.Duration.seconds(120),
        )
        # CDK both references the target group and adds a DependsOn on it; cfn-lint flags the
        # redundancy (W3005), which is harmless, so it is silenced on this resource only.
        cfn_service = service.node.default_child
        assert isinstance(cfn_service, ecs.CfnService)
        cfn_service.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        return service
