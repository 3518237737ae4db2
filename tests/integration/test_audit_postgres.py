"""The audit chain on a real PostgreSQL: one database per test run, dropped afterwards."""

import multiprocessing
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from decisioning.audit import AuditStore
from tests.unit.decisioning.audit.test_store import _append_many

pytestmark = pytest.mark.integration
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def audit_url() -> Iterator[str]:
    name = f"risk_audit_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{SERVER}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


WORKERS, PER_WORKER = 8, 1250  # 10,000 appends in all


@pytest.mark.slow
def test_postgres_chain_survives_concurrent_workers_and_refuses_edits(audit_url: str) -> None:
    AuditStore.open(audit_url).close()
    workers = [
        multiprocessing.get_context("spawn").Process(
            target=_append_many, args=(audit_url, w, PER_WORKER)
        )
        for w in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=600)
        assert process.exitcode == 0

    store = AuditStore.open(audit_url)
    report = store.verify()
    assert report.ok and report.checked == WORKERS * PER_WORKER, report

    with pytest.raises(Exception, match="append-only"), store._engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET body = '{}' WHERE seq = 3"))
    store.close()
