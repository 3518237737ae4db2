"""The stacks of one environment, in dependency order: network, data, observability, service."""
