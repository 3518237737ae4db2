"""The tamper-evident audit store: an append-only, hash-chained table behind SQLAlchemy."""

from decisioning.adapters.audit.store import AuditRecord, AuditStore, ChainReport

__all__ = ["AuditRecord", "AuditStore", "ChainReport"]
