"""The LLM prompts of ``configs/prompts/`` in MLflow's prompt registry, one version per file.

Design: file ``<name>/v<N>.yaml`` is registry version N of prompt ``<name>``, so the version the
gateway records with every call (``LlmCallRecord.prompt_version`` and ``prompt_uri``) is the
registry's without asking MLflow at call time. Registration is idempotent: a version whose
template is already registered is skipped. Because MLflow numbers versions itself, the two can only
stay equal if a published file is never edited; an edited file, or a gap in the numbering, raises
:class:`PromptVersionConflictError` instead of quietly registering a version that no file names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from decisioning.conduct.errors import PromptVersionConflictError
from decisioning.conduct.prompts import PromptTemplate, load_prompt, prompt_versions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredPrompt:
    name: str
    version: int
    uri: str
    created: bool


def prompt_names(directory: Path) -> list[str]:
    """Every prompt with at least one ``v<N>.yaml`` under ``directory``."""
    return sorted(
        path.name for path in directory.iterdir() if prompt_versions(directory, path.name)
    )


def register_prompts(client: MlflowClient, directory: Path) -> list[RegisteredPrompt]:
    """Register every version of every prompt under ``directory`` that is not registered yet."""
    registered = []
    for name in prompt_names(directory):
        for version in sorted(prompt_versions(directory, name)):
            registered.append(_register_version(client, load_prompt(directory, name, version)))
    return registered


def _latest_version(client: MlflowClient, name: str) -> int:
    if client.get_prompt(name) is None:
        return 0
    return max(int(v.version) for v in client.search_prompt_versions(name))


def _register_version(client: MlflowClient, prompt: PromptTemplate) -> RegisteredPrompt:
    latest = _latest_version(client, prompt.name)
    if prompt.version <= latest:
        stored = client.get_prompt_version(prompt.name, prompt.version)
        if stored is None or stored.template != prompt.template:
            raise PromptVersionConflictError(
                f"{prompt.name}/v{prompt.version}.yaml differs from {prompt.registry_uri}: "
                f"a published prompt is never edited; copy it to v{latest + 1}.yaml instead"
            )
        return RegisteredPrompt(prompt.name, prompt.version, prompt.registry_uri, created=False)
    if prompt.version != latest + 1:
        raise PromptVersionConflictError(
            f"{prompt.name}/v{prompt.version}.yaml would not become {prompt.registry_uri}: "
            f"the registry's next version is {latest + 1}"
        )
    created = client.register_prompt(
        name=prompt.name,
        template=prompt.template,
        commit_message=prompt.description,
        tags={"task": prompt.task, "config_file": f"{prompt.name}/v{prompt.version}.yaml"},
        model_config=prompt.parameters.model_dump(),  # temperature, max_tokens
    )
    if int(created.version) != prompt.version:  # another writer registered in between
        raise PromptVersionConflictError(
            f"{prompt.name} v{prompt.version} was registered as version {created.version}"
        )
    logger.info("registered prompt %s", prompt.registry_uri)
    return RegisteredPrompt(prompt.name, prompt.version, prompt.registry_uri, created=True)
