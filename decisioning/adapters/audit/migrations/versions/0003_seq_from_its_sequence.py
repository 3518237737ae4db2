"""Sequence numbers only from the sequence, always positive, and every insert on the head.

Revision ID: 0003
Revises: 0002

The service role could INSERT a row with any ``seq``: a negative one hid before the chain, a huge
one made every later append land before it. Now, on PostgreSQL, the service role may insert only
the content columns (column-level INSERT, so ``seq`` comes from its sequence), ``seq`` must be
positive, and a row-level trigger refuses a row that does not link onto the current head (its
``prev_hash`` must be the head's ``row_hash``, or the genesis hash on an empty table) or whose
``seq`` is not past the head's. The trigger takes the chain's advisory lock, which the store's
writer already holds (it is re-entrant), so a raw INSERT cannot fork the chain either. On SQLite
(no roles: whoever holds the file holds the chain) a trigger refuses a non-positive ``seq``.
"""

from alembic import context, op

from decisioning.adapters.audit.roles import AuditRoles

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_CHAIN_LOCK = 0x5249534B  # postgres_append.CHAIN_LOCK: the writer holds it while it inserts
_GENESIS = "0" * 64
_CONTENT_COLUMNS = "record_id, kind, recorded_at, body, prev_hash, row_hash"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute(
            "CREATE TRIGGER audit_records_seq_positive AFTER INSERT ON audit_records "
            "WHEN NEW.seq <= 0 "
            "BEGIN SELECT RAISE(ABORT, 'audit_records.seq must be positive'); END;"
        )
        return
    roles = context.config.attributes.get("audit_roles") or AuditRoles()
    owner, service = roles.owner, roles.service
    # 0002 took CREATE on the schema from everyone but its owner: the owner role cannot make the
    # trigger function, so this one migration runs as the administrator. Say so before anything.
    op.execute(
        """
        DO $$ BEGIN
          IF NOT has_schema_privilege('public', 'CREATE') THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege', MESSAGE =
              'audit migration 0003 creates a trigger function in schema public, which this '
              'role may not: run it once as the database administrator '
              '(RISK_AUDIT_OWNER_URL=<admin URL> riskctl audit migrate)';
          END IF;
        END $$;
        """
    )
    op.execute(
        f"""
        ALTER TABLE audit_records ADD CONSTRAINT audit_records_seq_positive CHECK (seq > 0);
        REVOKE INSERT ON audit_records FROM {service};
        GRANT INSERT ({_CONTENT_COLUMNS}) ON audit_records TO {service};
        CREATE FUNCTION audit_records_link_to_head() RETURNS trigger AS $$
        DECLARE head_seq bigint; head_hash text;
        BEGIN
          PERFORM pg_advisory_xact_lock({_CHAIN_LOCK});
          SELECT seq, row_hash INTO head_seq, head_hash
            FROM audit_records ORDER BY seq DESC LIMIT 1;
          IF NEW.prev_hash <> coalesce(head_hash, '{_GENESIS}') THEN
            RAISE EXCEPTION 'audit_records: prev_hash must be the head''s row_hash';
          END IF;
          IF head_seq IS NOT NULL AND NEW.seq <= head_seq THEN
            RAISE EXCEPTION 'audit_records: seq % is not past the head''s %', NEW.seq, head_seq;
          END IF;
          RETURN NEW;
        END; $$ LANGUAGE plpgsql;
        ALTER FUNCTION audit_records_link_to_head() OWNER TO {owner};
        CREATE TRIGGER audit_records_on_the_head BEFORE INSERT ON audit_records
        FOR EACH ROW EXECUTE FUNCTION audit_records_link_to_head();
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER audit_records_seq_positive")
        return
    roles = context.config.attributes.get("audit_roles") or AuditRoles()
    op.execute(
        f"""
        DROP TRIGGER audit_records_on_the_head ON audit_records;
        DROP FUNCTION audit_records_link_to_head();
        ALTER TABLE audit_records DROP CONSTRAINT audit_records_seq_positive;
        GRANT INSERT ON audit_records TO {roles.service};
        """
    )
