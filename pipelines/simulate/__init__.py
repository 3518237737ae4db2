"""A deterministic simulated world: customers, cards, terminals, payments with fraud, and texts."""

from pipelines.simulate.world import SimulatedWorld, SimulationConfig, simulate_world, write_world

__all__ = ["SimulatedWorld", "SimulationConfig", "simulate_world", "write_world"]
