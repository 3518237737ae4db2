"""Failures of offline jobs, one class per failure mode."""

from decisioning.errors import RiskPlatformError, SchemaError


class QualityGateFailed(RiskPlatformError):
    """A Great Expectations suite failed; the job stops before using the data."""

    def __init__(self, suite: str, failed: int, total: int, report: str) -> None:
        super().__init__(f"{suite}: {failed} of {total} expectations failed")
        self.report = report


__all__ = ["QualityGateFailed", "SchemaError"]
