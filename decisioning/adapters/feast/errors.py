"""Failures of the feature store adapter, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError


class FeatureStoreConfigError(RiskPlatformError):
    """A store config under configs/feast/ is missing, malformed or names an unset variable."""


class FeatureStoreUnavailable(RiskPlatformError):
    """The Feast registry or online store cannot be reached."""


class FeatureServiceNotFound(RiskPlatformError):
    """The feature service is not registered: run ``riskctl features apply`` first."""
