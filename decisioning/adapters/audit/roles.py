"""The two PostgreSQL roles of the audit store: one owns the tables, one only appends and reads.

The service connects as ``service`` (INSERT and SELECT on the audit tables, nothing else), so a
compromised service or its credentials cannot edit, delete, empty or re-shape the chain, nor lift
the triggers that refuse it. Migrations run as ``owner``. Names are settable so tests can make
their own roles on a shared server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OWNER_ROLE = "risk_audit_owner"
SERVICE_ROLE = "risk_audit_service"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class AuditRoles:
    owner: str = OWNER_ROLE
    service: str = SERVICE_ROLE

    def __post_init__(self) -> None:
        # Role names go into DDL, which takes no bind parameters: only plain identifiers pass.
        for name in (self.owner, self.service):
            if not _ROLE_NAME.match(name):
                raise ValueError(f"{name!r} is not a plain lower-case role name")
