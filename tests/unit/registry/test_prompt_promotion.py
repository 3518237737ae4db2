"""Prompt versions to @champion through gates and the audit trail; the gateway follows it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.llm.gateway import InMemoryLlmCallRecorder, LlmGateway, OfflineProvider
from decisioning.conduct.prompts import champion_prompt_versions
from decisioning.settings import MlflowSettings
from registry.errors import GateFailed, PromptNotRegisteredError
from registry.prompt_evaluation import PromptGates, load_prompt_gates
from registry.prompt_promotion import promote_prompt_if_gates_pass, prompt_champion
from registry.prompts import register_prompts
from registry.tracking import mlflow_session
from tests.support.configs import CONFIGS

pytestmark = pytest.mark.slow  # a fresh MLflow sqlite store per test: seconds each

FACTS = "conduct_facts"
REASON = "golden set passes"


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def client(tmp_path: Path, tracking_uri: str) -> Iterator[MlflowClient]:
    settings = MlflowSettings(tracking_uri=tracking_uri, artifact_root=str(tmp_path / "artifacts"))
    with mlflow_session(settings) as session:
        yield session


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditStore]:
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    yield store
    store.close()


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    """The shipped prompts plus conduct_facts v2 (same template, other wording)."""
    copied = Path(shutil.copytree(CONFIGS / "prompts", tmp_path / "prompts"))
    document = yaml.safe_load((copied / FACTS / "v1.yaml").read_text())
    document.update(version=2, template=document["template"].replace("You extract", "Extract"))
    (copied / FACTS / "v2.yaml").write_text(yaml.safe_dump(document))
    return copied


@pytest.fixture
def gates() -> PromptGates:
    return load_prompt_gates(CONFIGS / "gates.yaml", FACTS)


def _gateway(prompts: Path) -> LlmGateway:
    return LlmGateway(OfflineProvider(), prompts, InMemoryLlmCallRecorder())


def _kinds(audit: AuditStore) -> list[str]:
    return [record.kind for record in audit.records()]


def test_promotion_is_audited_before_champion_moves_and_the_gateway_follows_it(
    client: MlflowClient, tracking_uri: str, prompts: Path, gates: PromptGates, audit: AuditStore
) -> None:
    # given both file versions registered and no champion: the gateway uses the highest file
    register_prompts(client, prompts)
    assert champion_prompt_versions(tracking_uri, prompts) == {}
    assert _gateway(prompts).prompt(FACTS).version == 2
    # when v1 is promoted through its gates
    promotion = promote_prompt_if_gates_pass(
        client, _gateway(prompts), prompts, FACTS, 1, "alice", REASON, gates, audit
    )
    # then the audit trail holds the promotion with its scores, and the alias names v1
    (record,) = list(audit.records())
    assert record.kind == "prompt_promotion"
    assert (record.body["prompt"], record.body["version"], record.body["approver"]) == (
        FACTS,
        1,
        "alice",
    )
    assert record.body["metrics"]["span_validity"] == 1.0
    assert prompt_champion(client, FACTS) == 1 == promotion.version
    tags = client.get_prompt_version(FACTS, 1).tags
    assert tags["approved_by"] == "alice" and tags["gate.faithfulness_floor"].startswith("passed")
    # and a gateway built at start-up uses the champion, not the highest file
    champions = champion_prompt_versions(tracking_uri, prompts)
    assert champions == {FACTS: 1}
    pinned = LlmGateway(OfflineProvider(), prompts, InMemoryLlmCallRecorder(), versions=champions)
    assert pinned.prompt(FACTS).version == 1
    assert pinned.prompt(FACTS, 2).version == 2, "an explicit version still wins"


def test_a_failing_gate_refuses_and_audits_the_refusal(
    client: MlflowClient, prompts: Path, audit: AuditStore
) -> None:
    # given gates asking every golden case to be met (offline meets 9 of 10 on conduct_facts)
    register_prompts(client, prompts)
    strict = PromptGates.model_validate(
        {"gates": [{"name": "all_expected", "kind": "metric_at_least",
                    "metric": "expectations", "minimum": 1.0}]}
    )  # fmt: skip
    # when v2 is put forward, then it is refused, audited, and champion does not move
    with pytest.raises(GateFailed, match="all_expected"):
        promote_prompt_if_gates_pass(
            client, _gateway(prompts), prompts, FACTS, 2, "bob", REASON, strict, audit
        )
    assert _kinds(audit) == ["prompt_promotion_refused"]
    (record,) = list(audit.records())
    assert record.body["failed"][0].startswith("all_expected (expectations 0.9000")
    assert prompt_champion(client, FACTS) is None
    assert client.get_prompt_version(FACTS, 2).tags["gate.all_expected"].startswith("failed")


def test_a_move_that_fails_after_its_record_is_audited_as_failed(
    client: MlflowClient, prompts: Path, gates: PromptGates, audit: AuditStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    register_prompts(client, prompts)

    def refuse(*args: object) -> None:
        raise RuntimeError("registry went away")

    monkeypatch.setattr(client, "set_prompt_alias", refuse)
    with pytest.raises(RuntimeError, match="went away"):
        promote_prompt_if_gates_pass(
            client, _gateway(prompts), prompts, FACTS, 1, "carol", REASON, gates, audit
        )
    assert _kinds(audit) == ["prompt_promotion", "prompt_promotion_failed"]
    assert prompt_champion(client, FACTS) is None


def test_an_unregistered_version_is_not_promoted(
    client: MlflowClient, prompts: Path, gates: PromptGates, audit: AuditStore
) -> None:
    with pytest.raises(PromptNotRegisteredError):
        promote_prompt_if_gates_pass(
            client, _gateway(prompts), prompts, FACTS, 1, "dave", REASON, gates, audit
        )
    assert _kinds(audit) == []


def test_no_tracking_store_leaves_file_versions_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "mlflow.db"
    assert champion_prompt_versions(f"sqlite:///{missing}", CONFIGS / "prompts") == {}
    assert not missing.parent.exists(), "resolving champions must not create a tracking store"


def test_cli_evaluate_exits_non_zero_when_a_gate_fails(
    risk_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from decisioning.adapters.llm.gateway import Completion, RenderedPrompt
    from pipelines import cli
    from pipelines.commands import prompts as command

    class Inventive(OfflineProvider):
        def complete(self, prompt: RenderedPrompt) -> Completion:
            return Completion(super().complete(prompt).text + " The customer lost £9,999.")

    def inventive_gateway(directory: Path) -> LlmGateway:
        return LlmGateway(Inventive(), directory, InMemoryLlmCallRecorder())

    # given the offline provider: every gate passes
    assert cli.main(["prompts", "evaluate", "decision_explanation", "--no-log"]) == 0
    # when the provider invents an amount, then faithfulness fails its gate and the exit is 1
    monkeypatch.setattr(command, "_gateway", inventive_gateway)
    assert cli.main(["prompts", "evaluate", "decision_explanation", "--no-log"]) == 1
    out = capsys.readouterr().out
    assert "gate.faithfulness_floor: failed: faithfulness 0.0000" in out, out
