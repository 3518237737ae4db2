"""bench/decide.py's record count reads the audit chain the service writes, decisions only."""

import os
import shutil
import uuid
from pathlib import Path

import pytest

from bench.decide import create_databases, decisions_recorded, drop_everything, isolated_environment
from decisioning.adapters.audit import AuditStore

pytestmark = pytest.mark.integration


def test_the_bench_counts_the_decision_records_of_its_own_audit_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:8]
    for name, value in isolated_environment(tmp_path, run).items():
        monkeypatch.setenv(name, value)
    create_databases(run)
    try:
        store = AuditStore.open(os.environ["RISK_AUDIT_URL"])
        try:
            assert decisions_recorded() == 0
            store.append("decision", f"dec_{run}_1", {"n": 1})
            store.append("decision", f"dec_{run}_2", {"n": 2})
            store.append("explanation", f"exp_{run}_1", {"n": 1})  # after an answer: not counted
            assert decisions_recorded() == 2
        finally:
            store.close()
    finally:
        drop_everything(run)
        shutil.rmtree(tmp_path / "configs", ignore_errors=True)
