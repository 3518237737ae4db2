"""Failures of the monitoring jobs, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError


class DriftInputError(RiskPlatformError):
    """The two files cannot be compared: different kinds, or nothing in common to compare."""


class OutcomeInputError(RiskPlatformError):
    """Decisions and labels cannot be joined: no labelled decisions, or a malformed cohort file."""
