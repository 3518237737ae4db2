"""Failures of the offline feature jobs, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError


class FeatureTablesMissing(RiskPlatformError):
    """Materialize or a training set needs the tables ``riskctl features build`` writes."""


class EntityFrameInvalid(RiskPlatformError):
    """A training entity frame lacks the keys, event time or request fields the service needs."""
