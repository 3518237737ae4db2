"""Failures of the registry workflow, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError


class UnknownModelError(RiskPlatformError):
    """The name is not one of the platform's registered models, or nothing is registered yet."""


class NoChallengerError(RiskPlatformError):
    """Promotion was asked for but no version carries the ``challenger`` alias."""


class NoPreviousChampionError(RiskPlatformError):
    """Rollback was asked for but the champion history holds no earlier champion."""


class GatesConfigError(RiskPlatformError):
    """``configs/gates.yaml`` is missing, malformed, or has no section for the model."""


class GateFailed(RiskPlatformError):
    """At least one promotion gate failed; the message names every failed gate."""

    def __init__(self, name: str, version: str, failed: list[str]) -> None:
        super().__init__(f"{name} v{version} not promoted: gate(s) failed: {'; '.join(failed)}")
        self.failed = failed


class GoldenSetError(RiskPlatformError):
    """A prompt's golden set (``configs/prompts/<name>/golden.jsonl``) is missing or malformed."""


class PromptNotRegisteredError(RiskPlatformError):
    """A prompt version to promote is not in MLflow's prompt registry."""
