"""``riskctl bento build`` without building: champions resolved, pinned as labels and variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from bentoml.bentos import BentoBuildConfig

from decisioning.adapters.mlflow.model_store import ModelNotAvailable
from decisioning.core.decision import ModelVersion
from decisioning.settings import load_settings
from decisioning.wiring import PINNED_VERSION_VARIABLES, pinned_or_champion
from pipelines.cli import main
from pipelines.commands import bento
from pipelines.commands.bento import (
    BENTOFILE,
    PROJECT_ROOT,
    pin_versions,
    resolve_champions,
    with_models,
)

CHAMPIONS = {"fraud-detector": "3", "conduct-classifier": "2"}


def fake_registry(champions: dict[str, str]):
    """A resolver that knows only ``champions``, failing the way the real one does otherwise."""

    def resolve_champion(name: str) -> ModelVersion:
        if name not in champions:
            raise ModelNotAvailable(f"{name}@champion is not registered (RESOURCE_DOES_NOT_EXIST)")
        return ModelVersion(name=name, version=champions[name], run_id=f"run-{name}")

    return resolve_champion


@pytest.fixture
def bentofile() -> dict[str, Any]:
    return yaml.safe_load(BENTOFILE.read_text())


def test_resolved_champions_become_labels_and_the_variables_the_service_reads(
    bentofile: dict[str, Any], risk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a registry whose champions are fraud v3 and conduct v2
    versions = resolve_champions(PINNED_VERSION_VARIABLES, fake_registry(CHAMPIONS))

    # when they are pinned into the bentofile's options
    options = pin_versions(bentofile, versions, PINNED_VERSION_VARIABLES)

    # then each version is a label beside the bentofile's own, and an environment variable
    assert options["labels"] == {**bentofile["labels"], **CHAMPIONS}
    envs = {env["name"]: env["value"] for env in options["envs"]}
    assert envs["RISK_FRAUD_MODEL_VERSION"] == "3"
    assert envs["RISK_CONDUCT_MODEL_VERSION"] == "2"
    assert envs["RISK_ENV"] == "services", "the bentofile's own variables are kept"
    config = BentoBuildConfig.load(options)  # BentoML's schema: unknown keys are refused
    assert [env.stage for env in config.envs] == ["all"] * 3, "baked into the image's ENV"
    # and the running service serves exactly those versions, without asking the registry
    settings = load_settings()
    for name, version in CHAMPIONS.items():
        monkeypatch.setenv(PINNED_VERSION_VARIABLES[name], envs[PINNED_VERSION_VARIABLES[name]])
        assert pinned_or_champion(settings, name).version == version


def test_a_pinned_variable_in_the_bentofile_is_replaced_not_duplicated() -> None:
    bentofile = {"service": "x:Y", "envs": [{"name": "RISK_FRAUD_MODEL_VERSION", "value": "1"}]}

    options = pin_versions(bentofile, {"fraud-detector": "4"}, PINNED_VERSION_VARIABLES)

    assert options["envs"] == [{"name": "RISK_FRAUD_MODEL_VERSION", "value": "4"}]
    assert bentofile["envs"][0]["value"] == "1", "the bentofile read is left as it was"


def test_a_model_without_champion_stops_the_build_naming_it() -> None:
    with pytest.raises(ModelNotAvailable) as refused:
        resolve_champions(PINNED_VERSION_VARIABLES, fake_registry({"fraud-detector": "3"}))

    message = str(refused.value)
    assert "conduct-classifier@champion" in message
    assert "fraud-detector" not in message, "only the missing champion is named"
    assert "riskctl registry promote" in message, "the message says what to do"


def test_cli_exits_1_with_one_line_and_builds_nothing_without_champions(
    risk_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a registry with no champion at all, and a builder that must not be reached
    registry = fake_registry({})
    monkeypatch.setattr(
        "decisioning.adapters.mlflow.model_store.resolve", lambda _uri, name, _alias: registry(name)
    )
    monkeypatch.setattr(bento, "build_bento", lambda *_: pytest.fail("built without champions"))

    # when the bento is built
    code = main(["bento", "build"])

    # then the command fails with one line naming both models
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "fraud-detector" in err[0] and "conduct-classifier" in err[0], err


def test_bentofile_builds_from_the_lock_without_re_resolving_it(bentofile: dict[str, Any]) -> None:
    python = bentofile["python"]
    assert python["requirements_txt"] == "requirements.lock"
    assert python["lock_packages"] is False, "locking would re-resolve packages over the network"
    assert bentofile["service"] == "bentos.service:RiskService"
    assert (PROJECT_ROOT / python["requirements_txt"]).is_file(), "relative to the build context"


def test_the_bento_lists_each_imported_model_once_beside_the_bentofiles_own() -> None:
    bentofile = {"service": "bentos.service:RiskService", "models": ["embedder:1"]}

    options = with_models(bentofile, ["fraud-detector:3", "conduct-classifier:2", "embedder:1"])

    assert options["models"] == ["embedder:1", "fraud-detector:3", "conduct-classifier:2"]
    assert bentofile["models"] == ["embedder:1"], "the bentofile read is left as it was"
