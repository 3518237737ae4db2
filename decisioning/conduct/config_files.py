"""Reading YAML configuration into strict pydantic models, with one-line errors.

Every conduct config file (taxonomy, rules, policies, prompts, gates) passes through
:func:`load_yaml_model`, so a malformed file always fails the same way: a ``ConductConfigError``
naming the file and the first offending field.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from decisioning.conduct.errors import ConductConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_yaml_model(path: Path, model: type[ModelT]) -> ModelT:
    """Parse ``path`` as YAML and validate it as ``model``."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConductConfigError(f"{path} is missing") from exc
    except yaml.YAMLError as exc:
        raise ConductConfigError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConductConfigError(f"{path}: {where}: {first['msg']}") from exc
