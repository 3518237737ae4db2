"""Failures of the fraud scorer, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError


class FraudConfigError(RiskPlatformError):
    """``configs/fraud.yaml``, reason codes or thresholds are missing, malformed or incomplete."""


class FraudTrainingDataError(RiskPlatformError):
    """The payments cannot train a scorer: too few labels, one class only, or an empty window."""


class FeatureFrameError(RiskPlatformError):
    """A frame to score lacks features the scorer was trained on."""
