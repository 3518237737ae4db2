"""Reason codes: per-feature contributions summed per code, the top ones turned into sentences.

One vocabulary (``configs/reason_codes.yaml``) serves the model, the rules and the text findings,
so a decision's reasons read alike whatever produced them. Codes are stable identifiers; the
sentence carries the payment's actual values.
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from decisioning.core.decision import ReasonCode
from decisioning.fraud.errors import FraudConfigError

ReasonSource = Literal["model", "rule", "text"]

# Values a sentence may quote beyond the features themselves: rates people read more easily.
DERIVED_VALUES: dict[str, Callable[[Mapping[str, Any]], float]] = {
    "usual_hourly_rate": lambda row: _before_burst(row) / (30 * 24),
    "usual_daily_rate": lambda row: _before_burst(row) / 30,
    # Chargebacks only as a reason when there are some: "0 frauds confirmed" explains nothing.
    "chargebacks_7d_if_any": lambda row: (
        float(row["terminal_frauds_confirmed_7d"])
        if float(row["terminal_frauds_confirmed_14d"]) > 0
        else math.nan
    ),
}


class ReasonCodeSpec(BaseModel):
    """One entry of the vocabulary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z]+\.[a-z0-9_]+$")
    source: ReasonSource
    description: str = Field(min_length=3)
    features: tuple[str, ...] = ()
    sentences: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _model_codes_name_features(self) -> ReasonCodeSpec:
        if self.source == "model" and not self.features:
            raise ValueError(f"model reason code {self.code} lists no features")
        return self


class ReasonCodeFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    codes: tuple[ReasonCodeSpec, ...] = Field(min_length=1)


class ReasonCodeBook:
    """The vocabulary plus the feature-to-code mapping of the model's features."""

    def __init__(self, specs: Sequence[ReasonCodeSpec], version: int) -> None:
        self.version = version
        self.specs = {spec.code: spec for spec in specs}
        if len(self.specs) != len(specs):
            raise FraudConfigError("reason codes: a code is listed twice")
        self.code_of_feature: dict[str, str] = {}
        for spec in specs:
            for feature in spec.features:
                if feature in self.code_of_feature:
                    raise FraudConfigError(f"reason codes: feature {feature} has two codes")
                self.code_of_feature[feature] = spec.code
        # A model's features are the same on every payment: its codes and their 0/1 matrix are
        # built once per feature list, not per payment (~40 us of a one-payment call); a few
        # lists are kept, in case a caller's vary.
        self._columns = functools.lru_cache(maxsize=16)(self._build_columns)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with the model, without the cache (a cache wrapper does not pickle)."""
        return {key: value for key, value in self.__dict__.items() if key != "_columns"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A new cache, for books pickled before it existed too (older registered models)."""
        self.__dict__.update(state)
        self._columns = functools.lru_cache(maxsize=16)(self._build_columns)

    def require_features(self, features: Sequence[str]) -> None:
        """Every model feature must have a code, or its contribution could never be explained."""
        missing = [feature for feature in features if feature not in self.code_of_feature]
        if missing:
            raise FraudConfigError(f"reason codes: no code for feature(s) {', '.join(missing)}")

    def require_rule(self, code: str) -> None:
        """A rule's code must be in the vocabulary as a rule's, or its decisions go unexplained."""
        spec = self.specs.get(code)
        if spec is None or spec.source != "rule":
            raise FraudConfigError(f"reason codes: no rule code {code}")

    def model_codes(self, features: Sequence[str]) -> list[str]:
        """The codes of these features, in vocabulary order (the columns of :meth:`code_matrix`)."""
        used = {self.code_of_feature[feature] for feature in features}
        return [code for code in self.specs if code in used]

    def code_matrix(self, features: Sequence[str]) -> np.ndarray:
        """A 0/1 matrix features x codes: contributions @ matrix sums them per code."""
        codes = self.model_codes(features)
        matrix = np.zeros((len(features), len(codes)))
        for row, feature in enumerate(features):
            matrix[row, codes.index(self.code_of_feature[feature])] = 1.0
        return matrix

    def sentence(self, code: str, values: Mapping[str, Any]) -> str:
        """The first sentence of the code whose values are all known, else its description."""
        return self._sentence(code, _with_derived(values))

    def _sentence(self, code: str, known: Mapping[str, Any]) -> str:
        spec = self.specs[code]
        for template in spec.sentences:
            filled = _fill(template, known)
            if filled is not None:
                return filled
        return spec.description

    def top_reasons(
        self, contributions: pd.DataFrame, values: pd.DataFrame, top: int
    ) -> list[list[ReasonCode]]:
        """Per row, the ``top`` codes with the largest positive summed contribution.

        Only contributions that raise the score are reasons: a reason must say why the payment
        looks risky, never why it looks safe.
        """
        features = list(contributions.columns)
        codes = self.model_codes(features)
        per_code = contributions.to_numpy(dtype="float64") @ self.code_matrix(features)
        records = values.to_dict("records")
        return [
            self._ranked(codes, row, record, top)
            for row, record in zip(per_code, records, strict=True)
        ]

    def reasons_of(
        self, contributions: Mapping[str, float], values: Mapping[str, Any], top: int
    ) -> list[ReasonCode]:
        """One payment's top reasons, as :meth:`top_reasons` gives them, without pandas."""
        features = tuple(contributions)
        codes, matrix = self._columns(features)
        per_code = np.fromiter(contributions.values(), dtype="float64", count=len(features))
        return self._ranked(codes, per_code @ matrix, values, top)

    def _build_columns(self, features: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
        return self.model_codes(features), self.code_matrix(features)

    def _ranked(
        self, codes: list[str], per_code: np.ndarray, values: Mapping[str, Any], top: int
    ) -> list[ReasonCode]:
        ranked = [column for column in np.argsort(-per_code)[:top] if per_code[column] > 0]
        known = _with_derived(values) if ranked else {}  # once a payment, not once a reason
        return [
            ReasonCode.model_construct(  # our own values: validating millions in a backtest costs
                code=codes[column],
                description=self._sentence(codes[column], known),
                contribution=round(float(per_code[column]), 4),
                source="model",
            )
            for column in ranked
        ]


def load_reason_codes(path: Path) -> ReasonCodeBook:
    """Read ``configs/reason_codes.yaml``; a bad vocabulary stops training with the reason."""
    try:
        parsed = ReasonCodeFile.model_validate(yaml.safe_load(Path(path).read_text()))
    except FileNotFoundError as exc:
        raise FraudConfigError(f"{path} is missing") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise FraudConfigError(f"{path} is malformed: {str(exc).splitlines()[0]}") from exc
    return ReasonCodeBook(parsed.codes, parsed.version)


def _before_burst(row: Mapping[str, Any]) -> float:
    """Payments of the last 30 days before the last 10 minutes: the usual rate, burst excluded."""
    return float(row["velocity_30d_count"]) - float(row["velocity_10m_count"])


def _with_derived(row: Mapping[str, Any]) -> dict[str, Any]:
    known = dict(row)
    for name, derive in DERIVED_VALUES.items():
        try:
            known[name] = derive(row)
        except (KeyError, TypeError, ValueError):
            continue
    return known


@functools.cache  # the vocabulary's templates: a few dozen, parsed once each
def _fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


def _fill(template: str, values: Mapping[str, Any]) -> str | None:
    """The template with its values, or None when one is missing, null or NaN."""
    for name in _fields(template):
        value = values.get(name)
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
    try:
        return template.format_map(values)
    except (KeyError, TypeError, ValueError):
        return None
