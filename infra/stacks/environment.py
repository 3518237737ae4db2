"""One environment's stack set, wired in dependency order."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import Construct

from infra.environments import EnvironmentConfig
from infra.image import ServiceImage
from infra.stacks.data import DataStack
from infra.stacks.network import NetworkStack
from infra.stacks.observability import ObservabilityStack
from infra.stacks.service import ServiceStack


@dataclass(frozen=True)
class StackSet:
    """The four stacks of one environment, named ``risk-<env>-<part>``."""

    network: NetworkStack
    data: DataStack
    observability: ObservabilityStack
    service: ServiceStack

    def by_part(self) -> dict[str, cdk.Stack]:
        return {
            "network": self.network,
            "data": self.data,
            "observability": self.observability,
            "service": self.service,
        }


def add_stack_set(
    scope: Construct,
    config: EnvironmentConfig,
    image: ServiceImage,
    target: cdk.Environment | None = None,
) -> StackSet:
    """Add an environment's stacks to the app; ``target`` pins account and region if known."""
    prefix = config.stack_prefix
    network = NetworkStack(scope, f"{prefix}-network", config=config, env=target)
    data = DataStack(scope, f"{prefix}-data", config=config, network=network, env=target)
    observability = ObservabilityStack(scope, f"{prefix}-observability", config=config, env=target)
    service = ServiceStack(
        scope,
        f"{prefix}-service",
        config=config,
        image=image,
        network=network,
        data=data,
        observability=observability,
        env=target,
    )
    stack_set = StackSet(network, data, observability, service)
    for stack in stack_set.by_part().values():
        cdk.Tags.of(stack).add("project", "risk-intelligence-platform")
        cdk.Tags.of(stack).add("environment", config.name)
    return stack_set
