"""Register, promote through gates, block a worse model, roll back: on a throw-away MLflow store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from decisioning.adapters.audit import AuditStore
from decisioning.settings import MlflowSettings
from registry.errors import GateFailed, NoChallengerError, NoPreviousChampionError
from registry.gates import load_gates
from registry.names import CONDUCT_CLASSIFIER, model_uri
from registry.tracking import mlflow_session
from registry.workflow import list_versions, promote_if_gates_pass, rollback
from tests.support.configs import CONFIGS
from tests.support.lookup_models import HOLDOUT, register_lookup_model

pytestmark = pytest.mark.slow  # a real MLflow store and pyfunc round trips: seconds per test

ARTIFACTS = "artifacts"
REASON = "better macro-F1 on the holdout"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    monkeypatch.chdir(tmp_path)  # the relative artifact root lands in the throw-away folder
    settings = MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / ARTIFACTS)
    )
    with mlflow_session(settings) as session:
        yield session


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditStore]:
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    yield store
    store.close()


def audited(audit: AuditStore) -> list[tuple[str, dict]]:
    return [(record.kind, record.body) for record in audit.records()]


@pytest.fixture
def gates():
    return load_gates(CONFIGS / "gates.yaml", CONDUCT_CLASSIFIER)


def _register(client: MlflowClient, wrong: int) -> str:
    return register_lookup_model(client, CONDUCT_CLASSIFIER, str(Path.cwd() / ARTIFACTS), wrong)


def _champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(CONDUCT_CLASSIFIER, "champion").version)


def test_first_model_becomes_challenger_then_champion(
    client: MlflowClient, gates, audit: AuditStore
) -> None:
    # given a newly registered model
    version = _register(client, wrong=1)
    assert list_versions(client)[0].aliases == ("challenger",)
    # when it is promoted
    promotion = promote_if_gates_pass(client, CONDUCT_CLASSIFIER, "alice", gates, REASON, audit)
    # then it is champion, no longer challenger, and the version says who approved which gates
    assert (promotion.version, _champion(client)) == (version, version)
    tags = client.get_model_version(CONDUCT_CLASSIFIER, version).tags
    assert tags["approved_by"] == "alice"
    assert tags["promotion_reason"] == REASON
    assert tags["promoted_at"] == promotion.promoted_at
    assert tags["gate.macro_f1_vs_champion"].startswith("passed")
    assert tags["metric.macro_f1"].startswith("0.83")
    assert list_versions(client)[0].aliases == ("champion",)
    loaded = mlflow.pyfunc.load_model(model_uri(CONDUCT_CLASSIFIER))
    assert list(loaded.predict(HOLDOUT[["text"]]).columns) == ["category"]
    # and the audit trail holds the promotion, whoever called the workflow
    [(kind, body)] = audited(audit)
    assert kind == "promotion"
    assert (body["version"], body["approver"], body["reason"]) == (version, "alice", REASON)
    assert body["gates"] == promotion.gate_tags


def test_worse_challenger_is_blocked_and_champion_stays(
    client: MlflowClient, gates, audit: AuditStore
) -> None:
    champion = _register(client, wrong=0)
    promote_if_gates_pass(client, CONDUCT_CLASSIFIER, "alice", gates, REASON, audit)
    worse = _register(client, wrong=2)
    with pytest.raises(GateFailed, match="macro_f1_vs_champion"):
        promote_if_gates_pass(client, CONDUCT_CLASSIFIER, "bob", gates, REASON, audit)
    assert _champion(client) == champion, "a failed gate must not move champion"
    tags = client.get_model_version(CONDUCT_CLASSIFIER, worse).tags
    assert tags["gate.macro_f1_vs_champion"].startswith("failed"), "failures are recorded too"
    assert "approved_by" not in tags
    kinds = [kind for kind, _ in audited(audit)]
    assert kinds == ["promotion", "promotion_refused"], "a refusal is audited too"
    assert audited(audit)[-1][1]["approver"] == "bob"


def test_rollback_returns_to_the_previous_champion(
    client: MlflowClient, gates, audit: AuditStore
) -> None:
    first = _register(client, wrong=1)
    promote_if_gates_pass(client, CONDUCT_CLASSIFIER, "alice", gates, REASON, audit)
    with pytest.raises(NoChallengerError):
        promote_if_gates_pass(client, CONDUCT_CLASSIFIER, "alice", gates, REASON, audit)
    second = _register(client, wrong=0)
    promote_if_gates_pass(client, CONDUCT_CLASSIFIER, "alice", gates, REASON, audit)
    assert _champion(client) == second
    assert rollback(client, CONDUCT_CLASSIFIER, "carol", "alerts doubled overnight", audit) == first
    assert _champion(client) == first
    history = client.get_registered_model(CONDUCT_CLASSIFIER).tags["champion_history"]
    assert json.loads(history) == [first]
    rolled_back = client.get_model_version(CONDUCT_CLASSIFIER, second).tags
    assert rolled_back["rolled_back_by"] == "carol"
    assert rolled_back["rollback_reason"] == "alerts doubled overnight", "the reason is recorded"
    [(_, body)] = [(kind, body) for kind, body in audited(audit) if kind == "rollback"]
    assert (body["version"], body["from_version"], body["approver"]) == (first, second, "carol")
    with pytest.raises(NoPreviousChampionError):
        rollback(client, CONDUCT_CLASSIFIER, "carol", "alerts doubled overnight", audit)


def test_a_move_that_fails_after_its_record_is_audited_as_failed(
    client: MlflowClient, gates, audit: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a challenger whose gates pass, and a registry that refuses to move the alias
    version = _register(client, wrong=1)

    def unavailable(*args: object) -> None:
        raise MlflowException("registry unavailable")

    monkeypatch.setattr(client, "set_registered_model_alias", unavailable)

    # when it is promoted, the move fails
    with pytest.raises(MlflowException, match="registry unavailable"):
        promote_if_gates_pass(client, CONDUCT_CLASSIFIER, "alice", gates, REASON, audit)

    # then the trail says the promotion was asked for and did not happen
    assert [kind for kind, _ in audited(audit)] == ["promotion", "promotion_failed"]
    assert audited(audit)[-1][1]["version"] == version
    assert "registry unavailable" in audited(audit)[-1][1]["error"]
