"""Failures of offline jobs, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError, SchemaError


class QualityGateFailed(RiskPlatformError):
    """A Great Expectations suite failed; the job stops before using the data."""

    def __init__(self, summary: str, report: str) -> None:
        # The message names every failed expectation, its column, count and examples: a user
        # reading one line on stderr knows what to fix.
        super().__init__(summary)
        self.report = report


class TooManyBadRows(RiskPlatformError):
    """In quarantine mode, more rows failed the gate than the configured ceiling allows."""


__all__ = ["QualityGateFailed", "SchemaError", "TooManyBadRows"]
