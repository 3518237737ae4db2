"""A real ``riskctl bento build`` on the embedded default: champions pinned and carried.

Tiny lookup models stand in for the real ones: the build resolves versions and imports their files
into BentoML's model store, never loading them (tests/integration/test_bento_carries_its_models.py
serves a built bento).
The build runs in a subprocess because BentoML fixes its home (``BENTOML_HOME``) once per process.
"""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bentoml
import pytest
from bentoml._internal.bento import BentoStore
from bentoml._internal.models import ModelStore
from mlflow import MlflowClient

from decisioning.settings import Settings, load_settings
from pipelines.cli import main
from registry.names import CHAMPION, CONDUCT_CLASSIFIER, FRAUD_DETECTOR
from registry.tracking import mlflow_session
from tests.support.lookup_models import register_lookup_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local(risk_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The embedded default in a throw-away RISK_HOME, with a throw-away BentoML home."""
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    yield load_settings()


@pytest.fixture
def client(local: Settings) -> Iterator[MlflowClient]:
    with mlflow_session(local.mlflow) as session:
        yield session


def register_versions(client: MlflowClient, settings: Settings, name: str, count: int) -> None:
    for _ in range(count):
        register_lookup_model(client, name, settings.mlflow.artifact_root, wrong=0)


def build_in_subprocess() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "bento", "build"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_build_pins_each_champion_in_the_stored_bento(
    local: Settings, client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # given three fraud versions with champion on v2 (not the latest), and conduct with none
    register_versions(client, local, FRAUD_DETECTOR, 3)
    client.set_registered_model_alias(FRAUD_DETECTOR, CHAMPION, "2")
    register_versions(client, local, CONDUCT_CLASSIFIER, 1)

    # when the bento is built without a conduct champion, then it is refused naming the model
    assert main(["bento", "build"]) == 1
    assert "conduct-classifier@champion" in capsys.readouterr().err

    # when conduct gets its champion and the bento is built
    client.set_registered_model_alias(CONDUCT_CLASSIFIER, CHAMPION, "1")
    built = build_in_subprocess()

    # then the command names the bento and the versions, and the stored bento carries them
    assert built.returncode == 0, built.stderr[-3000:]
    tag = re.search(r"built bento (\S+)", built.stdout)
    assert tag is not None, built.stdout
    assert "fraud-detector v2" in built.stdout and "conduct-classifier v1" in built.stdout
    store = BentoStore(os.path.join(os.environ["BENTOML_HOME"], "bentos"))
    bento = bentoml.bentos.get(tag.group(1), _bento_store=store)
    carried = {"fraud-detector:2", "conduct-classifier:1"}
    assert {str(model.tag) for model in bento.info.models} == carried, bento.info.models
    models = ModelStore(os.path.join(os.environ["BENTOML_HOME"], "models"))
    assert {str(model.tag) for model in models.list()} == carried, "as `bentoml models list`"
    labels = bento.info.labels
    assert (labels["fraud-detector"], labels["conduct-classifier"]) == ("2", "1"), labels
    assert (labels["owner"], labels["project"]) == ("risk-platform", "risk-intelligence-platform")
    envs = {env.name: env.value for env in bento.info.envs}
    assert envs["RISK_FRAUD_MODEL_VERSION"] == "2" and envs["RISK_CONDUCT_MODEL_VERSION"] == "1"
    dockerfile = (Path(bento.path) / "env/docker/Dockerfile").read_text()
    assert "ARG RISK_FRAUD_MODEL_VERSION=2" in dockerfile, "an image of it serves v2, pinned"
    assert_installs_exactly_the_lock(Path(bento.path) / "env/python/requirements.txt")
    assert_source_is_the_service_and_nothing_else(Path(bento.path) / "src")


def assert_installs_exactly_the_lock(requirements: Path) -> None:
    pins = {line for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line}
    installed = set(requirements.read_text().splitlines())
    assert pins <= installed, f"not from the lock: {sorted(pins - installed)[:5]}"
    assert "torch==2.13.0+cpu" in installed
    assert "--find-links https://download.pytorch.org/whl/cpu/torch/" in installed


def assert_source_is_the_service_and_nothing_else(src: Path) -> None:
    top = sorted(path.name for path in src.iterdir())
    assert top == ["bentofile.yaml", "bentos", "configs", "decisioning"], top
    # The bento's copy alone must import the service: no site hooks, so the editable install of
    # this repository cannot fill in a missing package.
    search_path = os.pathsep.join([str(src), *site.getsitepackages()])
    check = subprocess.run(
        [sys.executable, "-S", "-c", "import bentos.service, sys; print(sys.modules['bentos'])"],
        cwd=src,
        env={**os.environ, "PYTHONPATH": search_path},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert str(src) in check.stdout, check.stdout
