"""Failures of the offline fraud jobs, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError
from decisioning.fraud.errors import FraudTrainingDataError


class BacktestWindowError(RiskPlatformError):
    """Backtest windows are inverted, overlap (test before train ends) or hold no payments."""


class LabelsUnavailable(RiskPlatformError):
    """The backtest's training window has no labels, or none of one class, known at the cut-off."""


class ScoresFileError(RiskPlatformError):
    """The backtest's output path has a suffix other than .parquet or .csv."""


__all__ = ["BacktestWindowError", "FraudTrainingDataError", "LabelsUnavailable", "ScoresFileError"]
