"""The decision itself: events, the decision record, the policy, the engine and the ports it
calls. No I/O and no third-party library beyond pydantic, PyYAML and OpenTelemetry's API."""
