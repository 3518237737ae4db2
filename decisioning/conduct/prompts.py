"""Versioned prompt templates from ``configs/prompts/<name>/v<N>.yaml``.

A published version is never edited, so the (name, version) pair logged with an LLM call is
enough to know exactly what the provider was asked. ``registry/prompts.py`` registers file
``v<N>.yaml`` as version N in MLflow's prompt registry and refuses to let the two diverge, so the
same pair is also the registry's ``prompts:/<name>/<N>``.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from decisioning.conduct.config_files import load_yaml_model
from decisioning.conduct.errors import ConductConfigError, PromptNotFoundError
from decisioning.core.names import CHAMPION

logger = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_VERSION_FILE = re.compile(r"^v(\d+)\.yaml$")


class PromptParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    temperature: float = Field(ge=0, le=2)
    max_tokens: int = Field(gt=0)


class PromptTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int = Field(ge=1)
    task: Literal["extraction", "explanation"]
    description: str
    parameters: PromptParameters
    template: str

    @property
    def registry_uri(self) -> str:
        """This version in MLflow's prompt registry, where ``registry/prompts.py`` put it."""
        return f"prompts:/{self.name}/{self.version}"

    @property
    def variables(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.template))

    def render(self, values: dict[str, str]) -> str:
        """Fill every placeholder; a missing value is an error, never an empty string."""
        missing = self.variables - set(values)
        if missing:
            raise ConductConfigError(f"prompt {self.name} v{self.version} needs {sorted(missing)}")
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)


def prompt_versions(directory: Path, name: str) -> dict[int, Path]:
    folder = directory / name
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _VERSION_FILE.match(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def load_prompt(directory: Path, name: str, version: int | None = None) -> PromptTemplate:
    """The pinned ``version`` of a prompt, or its highest version.

    The gateway pins each prompt's ``@champion`` (:func:`champion_prompt_versions`) when it has one.
    """
    versions = prompt_versions(directory, name)
    if not versions:
        raise PromptNotFoundError(f"no prompt {name!r} under {directory}")
    chosen = max(versions) if version is None else version
    if chosen not in versions:
        raise PromptNotFoundError(f"prompt {name!r} has no version {chosen}")
    prompt = load_yaml_model(versions[chosen], PromptTemplate)
    if (prompt.name, prompt.version) != (name, chosen):
        raise ConductConfigError(f"{versions[chosen]} declares {prompt.name} v{prompt.version}")
    return prompt


def champion_prompt_versions(
    tracking_uri: str, directory: Path, timeout_seconds: float = 30.0
) -> dict[str, int]:
    """Each prompt's ``@champion`` version in MLflow's prompt registry, where its file is here.

    Resolved once, when a service starts, so no decision ever waits on MLflow. A prompt with no
    champion, a champion without its ``v<N>.yaml``, or a registry that does not answer within
    ``timeout_seconds`` leaves the prompt on its highest file version (and says so in the log).
    """
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[10:]).is_file():
        return {}  # no store yet, so nothing promoted; opening it would create one
    names = sorted(p.name for p in directory.iterdir() if prompt_versions(directory, p.name))
    found: dict[str, int] = {}
    done = threading.Event()

    def look_up() -> None:
        try:
            found.update(_registry_champions(tracking_uri, names))
        except Exception as exc:  # any failure of the registry leaves the file versions
            logger.warning("prompt champions not resolved, using file versions: %s", exc)
        finally:
            done.set()

    threading.Thread(target=look_up, name="prompt-champions", daemon=True).start()
    if not done.wait(timeout_seconds):
        logger.warning("prompt registry silent for %.1fs: using file versions", timeout_seconds)
        return {}
    pinned = {}
    for name, version in found.items():
        if version in prompt_versions(directory, name):
            pinned[name] = version
        else:
            logger.error("%s@champion is v%d, which has no file here", name, version)
    return pinned


def _registry_champions(tracking_uri: str, names: list[str]) -> dict[str, int]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    champions = {}
    for name in names:
        try:
            version = client.get_prompt_version_by_alias(name, CHAMPION)
        except MlflowException:
            continue  # not registered, or no champion yet
        if version is not None:
            champions[name] = int(version.version)
    return champions
