"""The registry workflow on the ``services`` profile against a real PostgreSQL.

The workflow is described in docs/design.md, Contracts: registry; the profile in its Environments.

MLflow's tracking and registry store is one throw-away database, the audit store another; both
are dropped afterwards. Promotions and rollbacks go through ``riskctl registry``, which is where
they are written to the audit chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from sqlalchemy import create_engine, text

from decisioning.adapters.audit import AuditStore
from decisioning.settings import Settings, load_settings
from pipelines.cli import main
from registry.names import CONDUCT_CLASSIFIER, model_uri
from registry.tracking import mlflow_session
from registry.workflow import list_versions
from tests.support.lookup_models import HOLDOUT, register_lookup_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A new, uniquely named database on the local server; dropped on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{SERVER}/{name}"
    finally:
        # FORCE: MLflow's and the audit store's connection pools may still hold sessions
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The ``services`` profile, its MLflow and audit URLs pointed at throw-away databases."""
    with (
        throwaway_database("risk_mlflow_test") as mlflow_url,
        throwaway_database("risk_audit_test") as audit_url,
    ):
        monkeypatch.setenv("RISK_ENV", "services")
        monkeypatch.setenv("RISK_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("RISK_MLFLOW_URL", mlflow_url)
        monkeypatch.setenv("RISK_AUDIT_URL", audit_url)
        yield load_settings()


@pytest.fixture
def client(services: Settings) -> Iterator[MlflowClient]:
    with mlflow_session(services.mlflow) as session:
        yield session


def register(client: MlflowClient, settings: Settings, wrong: int) -> str:
    return register_lookup_model(
        client, CONDUCT_CLASSIFIER, settings.mlflow.artifact_root, wrong=wrong
    )


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(CONDUCT_CLASSIFIER, "champion").version)


def audit_bodies(settings: Settings, kind: str) -> list[dict[str, object]]:
    store = AuditStore.open(settings.audit.url)
    try:
        assert store.verify().ok, "promotions and rollbacks keep the audit chain valid"
        return [record.body for record in store.records(kind)]
    finally:
        store.close()


def test_promote_and_roll_back_on_postgres_with_an_audit_trail(
    services: Settings, client: MlflowClient
) -> None:
    # given a first version: it becomes challenger, in PostgreSQL rather than any local file
    first = register(client, services, wrong=1)
    assert [(row.version, row.aliases) for row in list_versions(client)] == [
        (first, ("challenger",))
    ]
    with create_engine(services.mlflow.tracking_uri).connect() as connection:
        stored = connection.execute(text("SELECT name, version FROM model_versions")).all()
    assert stored == [(CONDUCT_CLASSIFIER, int(first))], "the registry lives in PostgreSQL"

    # when it is promoted, then a better second version, and the second is rolled back
    promote = ["registry", "promote", CONDUCT_CLASSIFIER, "--approver", "alice"]
    assert main([*promote, "--reason", "first model"]) == 0
    assert champion(client) == first
    second = register(client, services, wrong=0)
    assert main([*promote, "--reason", "perfect on the holdout"]) == 0
    assert champion(client) == second
    rollback = ["registry", "rollback", CONDUCT_CLASSIFIER, "--approver", "carol"]
    assert main([*rollback, "--reason", "alerts doubled overnight"]) == 0

    # then champion is the first again, and the audit store says who did what and why
    assert champion(client) == first
    assert [row.aliases for row in list_versions(client)] == [(), ("champion",)]
    promotions = audit_bodies(services, "promotion")
    assert [(p["version"], p["previous_champion"]) for p in promotions] == [
        (first, None),
        (second, first),
    ]
    assert [(p["approver"], p["reason"]) for p in promotions] == [
        ("alice", "first model"),
        ("alice", "perfect on the holdout"),
    ]
    assert all(str(p["promoted_at"]) for p in promotions), "each promotion is timed"
    rollbacks = audit_bodies(services, "rollback")
    assert len(rollbacks) == 1, rollbacks
    assert (rollbacks[0]["version"], rollbacks[0]["approver"], rollbacks[0]["reason"]) == (
        first,
        "carol",
        "alerts doubled overnight",
    )

    # and plain MLflow loads @champion from the PostgreSQL registry
    loaded = mlflow.pyfunc.load_model(model_uri(CONDUCT_CLASSIFIER))
    assert loaded.metadata.run_id == client.get_model_version(CONDUCT_CLASSIFIER, first).run_id
    answers = loaded.predict(HOLDOUT[["text"]])["category"]
    assert (answers != HOLDOUT["label"]).sum() == 1, "the first version gets one row wrong"


def test_failed_gate_leaves_champion_and_names_the_gate(
    services: Settings, client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a perfect champion and a worse challenger
    promote = ["registry", "promote", CONDUCT_CLASSIFIER, "--approver", "alice"]
    best = register(client, services, wrong=0)
    assert main([*promote, "--reason", "first model"]) == 0
    worse = register(client, services, wrong=2)
    capsys.readouterr()

    # when the challenger is put up for promotion
    code = main([*promote, "--reason", "newer"])

    # then the command fails naming the gate, champion stays, and nothing is audited as promoted
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "macro_f1_vs_champion" in err[0], err
    assert champion(client) == best, "a failed gate must not move champion"
    tags = client.get_model_version(CONDUCT_CLASSIFIER, worse).tags
    assert tags["gate.macro_f1_vs_champion"].startswith("failed"), "the failure is recorded"
    assert [p["version"] for p in audit_bodies(services, "promotion")] == [best]
