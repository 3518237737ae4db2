"""Failures of the scheduled jobs, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError


class UnknownJob(RiskPlatformError):
    """No scheduled job has that name."""


class NotEnoughHistory(RiskPlatformError):
    """The data does not cover the windows a job compares."""
