"""The audit table. Its shape changes only through Alembic migrations in ``migrations/``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AuditRow(Base):
    """One record: a decision, a promotion, an approval or an LLM call.

    ``row_hash`` covers the kind, id, time, body and ``prev_hash``; ``prev_hash`` is the hash of the
    row before it, so editing or deleting any row breaks every hash after it.
    """

    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    record_id: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), index=True, nullable=False)
    # ISO-8601 UTC text, not a DateTime: the hash covers these exact characters on every backend.
    recorded_at: Mapped[str] = mapped_column(String(40), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)
