"""Least privilege and no TRUNCATE: an owner role, a service role that only appends and reads.

Revision ID: 0002
Revises: 0001

On PostgreSQL: a statement-level trigger refuses TRUNCATE (the row-level ones never see it); the
owner and service roles are made if missing (with LOGIN and no password: passwords are set by
whoever provisions the server, never in a migration); the tables, their sequence and the trigger
function pass to the owner; the service role gets INSERT and SELECT on the audit table, SELECT on
the migration version, and nothing else. Run it as a superuser or the owner (a role with
CREATEROLE the first time, when the roles do not exist yet). On SQLite there are no roles and no
TRUNCATE: nothing to do.
"""

from alembic import context, op

from decisioning.adapters.audit.roles import AuditRoles

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_REFUSE = "audit_records is append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    roles = context.config.attributes.get("audit_roles") or AuditRoles()
    op.execute(
        f"""
        CREATE FUNCTION audit_records_refuse_truncate() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '{_REFUSE}'; END; $$ LANGUAGE plpgsql;
        CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
        FOR EACH STATEMENT EXECUTE FUNCTION audit_records_refuse_truncate();
        """
    )
    for role in (roles.owner, roles.service):
        # Two databases migrating at once may both try to make the role: the loser carries on.
        op.execute(
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} LOGIN;
              END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            """
        )
    owner, service = roles.owner, roles.service
    op.execute(
        f"""
        DO $$ BEGIN
          -- A non-superuser may hand a table only to a role it belongs to.
          IF current_user <> '{owner}'
             AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            EXECUTE format('GRANT {owner} TO %I', current_user);
          END IF;
        END $$;
        ALTER TABLE audit_records OWNER TO {owner};
        ALTER TABLE alembic_version OWNER TO {owner};
        ALTER FUNCTION audit_records_refuse() OWNER TO {owner};
        ALTER FUNCTION audit_records_refuse_truncate() OWNER TO {owner};
        REVOKE ALL ON audit_records, alembic_version FROM PUBLIC;
        REVOKE ALL ON audit_records, alembic_version FROM {service};
        GRANT SELECT, INSERT ON audit_records TO {service};
        GRANT USAGE ON SEQUENCE audit_records_seq_seq TO {service};
        GRANT SELECT ON alembic_version TO {service};
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        GRANT USAGE ON SCHEMA public TO {service};
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER audit_records_no_truncate ON audit_records")
    op.execute("DROP FUNCTION audit_records_refuse_truncate()")
