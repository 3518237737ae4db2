"""The trees' answers looked up in tables give Booster.predict's margin and contributions, bit for
bit, or are not used at all."""

import json
import logging

import numpy as np
import pytest
import xgboost as xgb

from decisioning.fraud import tree_tables
from decisioning.fraud.tree_tables import MAX_SPLITS, TreeTables

WIDTH = 6


def _booster(max_depth: int, objective: str = "binary:logistic") -> xgb.Booster:
    rng = np.random.default_rng(3)
    design = rng.normal(size=(400, WIDTH))
    design[rng.random(design.shape) < 0.1] = np.nan  # missing values take the default branch
    design[:, 1] = np.round(design[:, 1])  # a feature split again and again at the same values
    labels = (np.nan_to_num(design[:, 0]) + rng.normal(scale=0.5, size=400) > 0.8).astype(int)
    params = {"objective": objective, "max_depth": max_depth, "nthread": 1, "seed": 1}
    return xgb.train(params, xgb.DMatrix(design, label=labels, missing=np.nan), 40)


def _rows(count: int, seed: int, booster: xgb.Booster) -> np.ndarray:
    """Random rows, and rows at, just below and just past the trees' thresholds."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(scale=2.0, size=(count, WIDTH)).astype(np.float32)
    frame = booster.trees_to_dataframe()
    splits = frame[frame["Feature"] != "Leaf"]
    for feature in range(WIDTH):
        thresholds = splits.loc[splits["Feature"] == f"f{feature}", "Split"].to_numpy(np.float32)
        if len(thresholds):
            picked = thresholds[rng.integers(len(thresholds), size=count)]
            nudged = np.nextafter(picked, rng.choice([-np.inf, np.inf], size=count).astype("f4"))
            at = rng.random(count) < 0.5
            rows[:, feature] = np.where(at, picked, nudged)
    rows[rng.random(rows.shape) < 0.2] = np.nan
    return rows.astype(np.float64)


def test_the_tables_give_predicts_bits_on_every_kind_of_row() -> None:
    # given a model of small trees and its tables
    booster = _booster(max_depth=3)
    tables = TreeTables.of(booster)
    assert tables is not None
    for row in _rows(600, seed=4, booster=booster):
        # when a row is scored from the tables
        margin, contributions = tables.margin_and_contributions(row)
        # then it is Booster.predict's answer to the bit, dtype and shape too
        matrix = xgb.DMatrix(row[None, :], missing=np.nan, nthread=1)
        expected_margin = booster.predict(matrix, output_margin=True)
        expected_contributions = booster.predict(matrix, pred_contribs=True)[0]
        assert margin.dtype == expected_margin.dtype and margin.shape == expected_margin.shape
        assert np.array_equal(margin, expected_margin), (row, margin, expected_margin)
        assert np.array_equal(contributions, expected_contributions), row
        assert contributions.dtype == expected_contributions.dtype


def test_a_tree_with_more_splits_than_the_tables_take_keeps_the_c_api() -> None:
    booster = _booster(max_depth=6)
    splits = [int((frame["Feature"] != "Leaf").sum()) for _, frame in _trees(booster)]
    assert max(splits) > MAX_SPLITS  # the premise

    assert TreeTables.of(booster) is None


def test_another_objective_keeps_the_c_api() -> None:
    assert TreeTables.of(_booster(max_depth=3, objective="reg:squarederror")) is None


def test_tables_that_would_differ_from_xgboost_are_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a base margin one step off XGBoost's (as a different log would make it)
    booster = _booster(max_depth=3)
    wrong = [np.nextafter(base, np.float32(np.inf)) for base in _bases(booster)]
    monkeypatch.setattr(tree_tables, "_base_margins", lambda learner: wrong)

    # when the tables are built, then they are refused, and the log says so
    with caplog.at_level(logging.WARNING):
        assert TreeTables.of(booster) is None
    assert "using its C API" in caplog.text


def _trees(booster: xgb.Booster) -> list:
    frame = booster.trees_to_dataframe()
    return list(frame.groupby("Tree"))


def _bases(booster: xgb.Booster) -> list[np.float32]:
    return tree_tables._base_margins(json.loads(booster.save_raw("json"))["learner"])
