"""The conduct taxonomy (``configs/taxonomy.yaml``) as frozen, strict models.

Category codes are a contract shared by rules, training labels and ``RiskDecision``; loading the
file through these models is the point where the configuration becomes checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from decisioning.conduct.config_files import load_yaml_model
from decisioning.conduct.errors import ConductConfigError, UnknownCategoryError

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Category(_Strict):
    """One conduct-risk category with the policy it rests on."""

    code: str = Field(pattern=r"^conduct\.[a-z_]+$")
    name: str
    description: str
    severity: Severity
    tcf_outcomes: tuple[int, ...]
    consumer_duty_outcome: str
    policy_refs: tuple[str, ...] = Field(min_length=1)


class Taxonomy(_Strict):
    """All categories plus the label used for messages that raise no conduct risk."""

    version: int
    neutral: str
    severities: tuple[Severity, ...]
    categories: tuple[Category, ...] = Field(min_length=1)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(category.code for category in self.categories)

    def category(self, code: str) -> Category:
        """The category for ``code``; unknown codes are an error, never a silent neutral."""
        for category in self.categories:
            if category.code == code:
                return category
        raise UnknownCategoryError(f"category {code!r} is not in the taxonomy")

    def severity_of(self, code: str) -> str:
        """Severity of a code, ``none`` for the neutral label."""
        return "none" if code == self.neutral else self.category(code).severity


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and check the taxonomy file."""
    taxonomy = load_yaml_model(path, Taxonomy)
    if len(set(taxonomy.codes)) != len(taxonomy.codes):
        raise ConductConfigError(f"{path}: a category code appears twice")
    if taxonomy.neutral in taxonomy.codes:
        raise ConductConfigError(f"{path}: the neutral label must not be a category code")
    return taxonomy
