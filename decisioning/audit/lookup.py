"""A stored decision by its id: how a repeated request finds the answer it was given before.

Read-only and beside the store (not in it), so the store's own code stays the writer's; the
record id is the table's unique key, so the lookup is one indexed read.
"""

from __future__ import annotations

from typing import Any

from decisioning.audit.store import AuditStore


def stored_body(store: AuditStore, kind: str, record_id: str) -> dict[str, Any] | None:
    """The body of the record ``record_id`` if it exists and is of ``kind``, else None."""
    record = store.get(record_id)
    if record is None or record.kind != kind:
        return None
    return record.body
