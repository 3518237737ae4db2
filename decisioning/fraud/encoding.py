"""The feature frame as the models see it: numbers as they are, string features one-hot.

Categorical features (``segment``) are recognised by their dtype at training time, so the
feature list stays the feature service's and the pyfunc takes the raw feature frame.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decisioning.fraud.errors import FeatureFrameError

MAX_LEVELS = 50


@dataclass(frozen=True)
class FeatureEncoder:
    """Feature order, the known levels of each string feature, and medians to fill gaps."""

    features: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    medians: dict[str, float]

    @property
    def columns(self) -> list[str]:
        """Design-matrix columns: a numeric feature as itself, a string one as feature=level."""
        out: list[str] = []
        for feature in self.features:
            if feature in self.categories:
                out += [f"{feature}={level}" for level in self.categories[feature]]
            else:
                out.append(feature)
        return out

    @property
    def owners(self) -> list[str]:
        """The feature each design column comes from (to add one-hot contributions back up)."""
        out: list[str] = []
        for feature in self.features:
            out += [feature] * len(self.categories.get(feature, (feature,)))
        return out

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Float matrix with NaN for unknown values (XGBoost routes them as missing)."""
        missing = [feature for feature in self.features if feature not in frame.columns]
        if missing:
            raise FeatureFrameError(f"features missing from the frame: {', '.join(missing)}")
        blocks = []
        for feature in self.features:
            values = frame[feature]
            if feature in self.categories:
                text = values.astype("string")
                levels = self.categories[feature]
                # A string feature null throughout training (no customers file) has no columns.
                one_hot = [(text == level).fillna(False).to_numpy() for level in levels]
                blocks.append(np.column_stack(one_hot) if one_hot else np.empty((len(frame), 0)))
            else:
                blocks.append(pd.to_numeric(values, errors="coerce").to_numpy("float64")[:, None])
        return np.hstack(blocks).astype("float64")

    def row(self, values: Mapping[str, Any]) -> np.ndarray:
        """One payment's design row from its values by name: :meth:`matrix` without pandas."""
        out: list[float] = []
        for feature in self.features:
            value = values.get(feature)
            if feature in self.categories:
                text = None if _missing(value) else str(value)
                out += [1.0 if text == level else 0.0 for level in self.categories[feature]]
            else:
                out.append(_number(value))
        return np.array(out, dtype="float64")

    def filled(self, matrix: np.ndarray) -> np.ndarray:
        """The matrix with gaps filled by training medians, for models that cannot skip NaN."""
        fill = np.array([self.medians.get(column, 0.0) for column in self.columns])
        return np.where(np.isnan(matrix), fill, matrix)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or value != value


def _number(value: Any) -> float:
    """The value as a float, NaN when missing or not a number (``to_numeric``'s coercion)."""
    if _missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fit_encoder(frame: pd.DataFrame, features: Sequence[str]) -> FeatureEncoder:
    """Learn levels of the string features and medians of the design columns from training rows."""
    categories = {}
    for feature in features:
        values = frame[feature]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            counts = values.dropna().astype(str).value_counts()
            categories[feature] = tuple(sorted(counts.index[:MAX_LEVELS]))
    encoder = FeatureEncoder(tuple(features), categories, {})
    design = encoder.matrix(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-null column has no median: 0
        medians = np.nan_to_num(np.nanmedian(design, axis=0), nan=0.0)
    by_column = dict(zip(encoder.columns, medians.tolist(), strict=True))
    return FeatureEncoder(tuple(features), categories, by_column)
