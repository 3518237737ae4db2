"""Failures of the conduct package, one class per failure mode."""

from decisioning.core.errors import RiskPlatformError


class ConductConfigError(RiskPlatformError):
    """The taxonomy, rules, policies or prompts under ``configs/`` are missing or malformed."""


class UnknownCategoryError(RiskPlatformError):
    """A label or rule names a category that is not in the taxonomy."""


class EmbeddingModelError(RiskPlatformError):
    """The bundled sentence-transformers model cannot be found or loaded."""


class EmbeddingCacheError(RiskPlatformError):
    """The embeddings cache (SQLite or Redis) cannot be reached or read."""


class TrainingDataError(RiskPlatformError):
    """A labelled text table cannot be used for training or evaluation; the message says why."""


class ModelNotFittedError(RiskPlatformError):
    """A classifier was asked to predict before it was fitted."""


class EvidenceIndexError(RiskPlatformError):
    """The evidence index (SQLite FTS5 or OpenSearch) cannot be built or queried."""


class PromptNotFoundError(RiskPlatformError):
    """No prompt template with the requested name (and version) exists under configs/prompts."""


class PromptVersionConflictError(RiskPlatformError):
    """A prompt file and MLflow's prompt registry disagree about what a prompt version holds."""


class LlmProviderError(RiskPlatformError):
    """An LLM provider failed after its retries, timed out, or answered with unusable output."""

    def __init__(self, message: str, retries: int = 0) -> None:
        super().__init__(message)
        self.retries = retries


class LlmCircuitOpen(LlmProviderError):
    """The gateway's circuit breaker is open after repeated provider failures: no call was made."""
