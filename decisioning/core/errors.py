"""Failures of the decisioning package, one class per failure mode."""


class RiskPlatformError(Exception):
    """Base class: every error the platform raises on purpose."""


class SettingsError(RiskPlatformError):
    """A profile is unknown, malformed, or refers to an unset environment variable."""


class SchemaError(RiskPlatformError):
    """Input data does not meet its contract (docs/design.md, Contracts: events); the message
    names the column."""


class AuditError(RiskPlatformError):
    """The audit store cannot be opened, or a record is missing."""


class AuditUnavailable(AuditError):
    """The audit store was unreachable or did not confirm a write: the decision is not returned."""


class AuditChainBroken(AuditError):
    """The chain or its anchored checkpoints do not verify: nothing new may be signed over it."""


class SigningKeyUnavailable(AuditError):
    """No checkpoint signing key: the profile needs one from its secrets, and none was given."""


class AnchorUnavailable(AuditError):
    """The checkpoint anchor cannot be read or written."""


class GenesisRefused(AuditError):
    """A first checkpoint over records already written, not asked for: it would vouch for them
    whatever they are, so it takes ``riskctl audit checkpoint --genesis``."""


class TrustedKeysUnavailable(AuditError):
    """The public keys checkpoints are checked with are missing, or the signing key is not one."""


class IdempotencyConflict(RiskPlatformError):
    """A transaction_id or message_id already decided arrives with a different request: 409."""
