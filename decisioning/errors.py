"""Failures of the decisioning package, one class per failure mode."""


class RiskPlatformError(Exception):
    """Base class: every error the platform raises on purpose."""


class SettingsError(RiskPlatformError):
    """A profile is unknown, malformed, or refers to an unset environment variable."""


class SchemaError(RiskPlatformError):
    """Input data does not meet its contract (DESIGN 4.1); the message names the column."""


class AuditError(RiskPlatformError):
    """The audit store cannot be opened, or a record is missing."""


class AuditUnavailable(AuditError):
    """The audit store was unreachable or did not confirm a write: the decision is not returned."""
