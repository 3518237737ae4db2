"""Prompt files in MLflow's prompt registry: one version per file, never a duplicate."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from decisioning.conduct.errors import PromptVersionConflictError
from decisioning.conduct.prompts import load_prompt
from decisioning.settings import MlflowSettings
from registry.prompts import register_prompts
from registry.tracking import mlflow_session
from tests.support.configs import CONFIGS

pytestmark = pytest.mark.slow  # a fresh MLflow sqlite store per test: seconds each

EXTRACTION = "conduct_extraction"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MlflowClient]:
    settings = MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "artifacts")
    )
    with mlflow_session(settings) as session:
        yield session


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    """A copy of the shipped prompts that a test may add versions to."""
    return Path(shutil.copytree(CONFIGS / "prompts", tmp_path / "prompts"))


def _versions(client: MlflowClient, name: str) -> list[int]:
    return sorted(int(v.version) for v in client.search_prompt_versions(name))


def _write_version(prompts: Path, version: int, template: str) -> None:
    document = yaml.safe_load((prompts / EXTRACTION / "v1.yaml").read_text())
    document.update(version=version, template=template)
    (prompts / EXTRACTION / f"v{version}.yaml").write_text(yaml.safe_dump(document))


def test_registering_twice_creates_one_version(client: MlflowClient, prompts: Path) -> None:
    # given the shipped prompts registered once
    first = register_prompts(client, prompts)
    # when they are registered again unchanged
    second = register_prompts(client, prompts)
    # then every prompt has exactly version 1, created the first time only
    assert [p.created for p in first] == [True] * len(first)
    assert [p.created for p in second] == [False] * len(second), "unchanged text is not re-sent"
    for registered in second:
        assert _versions(client, registered.name) == [1], f"{registered.name}: one version only"
    stored = client.get_prompt_version(EXTRACTION, 1).template
    assert stored == load_prompt(prompts, EXTRACTION, 1).template, "the file's text, verbatim"


def test_a_changed_template_becomes_the_second_version(client: MlflowClient, prompts: Path) -> None:
    # given version 1 registered
    register_prompts(client, prompts)
    # when the template changes in a new file, v2.yaml, and the prompts are registered again
    _write_version(prompts, 2, "Extract amounts, dates and products.\n\n{{ text }}")
    created = [p for p in register_prompts(client, prompts) if p.created]
    # then the registry holds it as version 2, the version the gateway will record
    assert [(p.name, p.version, p.uri) for p in created] == [
        (EXTRACTION, 2, f"prompts:/{EXTRACTION}/2")
    ]
    assert _versions(client, EXTRACTION) == [1, 2]
    assert client.get_prompt_version(EXTRACTION, 2).template.startswith("Extract amounts")


def test_an_edited_published_version_is_refused(client: MlflowClient, prompts: Path) -> None:
    # given version 1 registered
    register_prompts(client, prompts)
    # when v1.yaml is edited in place
    _write_version(prompts, 1, "Something else entirely.\n\n{{ text }}")
    # then registration refuses rather than let file and registry versions diverge
    with pytest.raises(PromptVersionConflictError, match="never edited"):
        register_prompts(client, prompts)
    assert _versions(client, EXTRACTION) == [1]


def test_a_gap_in_file_versions_is_refused(client: MlflowClient, prompts: Path) -> None:
    # given only v1 registered, when v3.yaml appears without a v2.yaml
    register_prompts(client, prompts)
    _write_version(prompts, 3, "Version three.\n\n{{ text }}")
    # then it is not registered as version 2
    with pytest.raises(PromptVersionConflictError, match="next version is 2"):
        register_prompts(client, prompts)
