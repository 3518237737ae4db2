"""Alembic environment: run on the connection the audit store hands over (no ini file)."""

from alembic import context

from decisioning.adapters.audit.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
