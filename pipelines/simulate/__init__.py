"""A deterministic simulated world: customers, cards, terminals, payments with fraud, and texts."""

from pipelines.simulate.world import (
    FraudIncidents,
    SimulatedWorld,
    SimulationConfig,
    simulate_world,
    write_world,
)

__all__ = ["FraudIncidents", "SimulatedWorld", "SimulationConfig", "simulate_world", "write_world"]
