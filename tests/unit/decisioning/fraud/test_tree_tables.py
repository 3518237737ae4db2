"""The trees' answers looked up in tables give Booster.predict's margin and contributions, bit for
bit, or are not used at all."""

import logging
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from decisioning.fraud import tree_tables
from decisioning.fraud.tree_tables import MAX_SPLITS, TreeTables

WIDTH = 6


def _booster(max_depth: int, **params: Any) -> xgb.Booster:
    rng = np.random.default_rng(3)
    design = rng.normal(size=(400, WIDTH))
    design[rng.random(design.shape) < 0.1] = np.nan  # missing values take the default branch
    design[:, 1] = np.round(design[:, 1])  # a feature split again and again at the same values
    labels = (np.nan_to_num(design[:, 0]) + rng.normal(scale=0.5, size=400) > 0.8).astype(int)
    settings = {"objective": "binary:logistic", "max_depth": max_depth, "nthread": 1, "seed": 1}
    matrix = xgb.DMatrix(design, label=labels, missing=np.nan)
    return xgb.train(settings | params, matrix, 40)


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
    rows[rng.random(rows.shape) < 0.02] = -0.0
    return rows.astype(np.float64)


def _bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)  # -0.0 is not 0.0 here


@pytest.mark.parametrize("base_score", [None, 0.5, 0.028412228, 1e-3, 0.3])
def test_the_tables_give_predicts_bits_on_every_kind_of_row(base_score: float | None) -> None:
    # given a model of small trees (its base score XGBoost's own, or set), and its tables
    booster = _booster(max_depth=3, **({} if base_score is None else {"base_score": base_score}))
    tables = TreeTables.of(booster)
    assert tables is not None
    for row in _rows(300, seed=4, booster=booster):
        # when a row is scored from the tables
        margin, contributions = tables.margin_and_contributions(row)
        # then it is Booster.predict's answer to the bit, dtype and shape too
        matrix = xgb.DMatrix(row[None, :], missing=np.nan, nthread=1)
        expected_margin = booster.predict(matrix, output_margin=True)
        expected_contributions = booster.predict(matrix, pred_contribs=True)[0]
        assert margin.dtype == expected_margin.dtype and margin.shape == expected_margin.shape
        assert np.array_equal(_bits(margin), _bits(expected_margin)), (row, margin)
        assert np.array_equal(_bits(contributions), _bits(expected_contributions)), row
        assert contributions.shape == expected_contributions.shape


@pytest.mark.parametrize(
    "row",
    [
        [0.0, 1.0, np.inf, 0.0, 0.0, 0.0],
        [0.0, 1e39, 0.0, 0.0, 0.0, 0.0],  # finite in float64, infinite once in float32
        [0.0] * (WIDTH - 1),
    ],
    ids=["inf", "float32 overflow", "short row"],
)
def test_a_row_xgboost_refuses_is_refused(row: list[float]) -> None:
    booster = _booster(max_depth=3)
    tables = TreeTables.of(booster)
    assert tables is not None
    with pytest.raises(xgb.core.XGBoostError):  # the premise: XGBoost refuses it
        booster.predict(xgb.DMatrix(np.array([row]), missing=np.nan), pred_contribs=True)

    with pytest.raises(ValueError):
        tables.margin_and_contributions(np.array(row))


def test_a_tree_with_more_splits_than_the_tables_take_keeps_the_c_api(
    caplog: pytest.LogCaptureFixture,
) -> None:
    booster = _booster(max_depth=6)
    frame = booster.trees_to_dataframe()
    assert (frame[frame["Feature"] != "Leaf"].groupby("Tree").size() > MAX_SPLITS).any()

    why, tables = TreeTables._build(booster, tree_tables.CHECK_ROWS)
    assert tables is None and "splits (the tables take" in why
    with caplog.at_level(logging.WARNING):
        assert TreeTables.of(booster) is None
    assert _warned(caplog)  # the reason is an argument: a log filter may mask its text


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "reg:squarederror"},
        {"num_parallel_tree": 3, "subsample": 0.8, "colsample_bynode": 0.8},  # a forest a round
        {"booster": "dart"},
    ],
    ids=["another objective", "parallel trees", "dart"],
)
def test_another_kind_of_model_keeps_the_c_api(params: dict[str, Any]) -> None:
    assert TreeTables.of(_booster(max_depth=3, **params)) is None


def test_tables_that_would_differ_from_xgboost_are_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a table build whose second tree's leaves are one step off XGBoost's
    booster = _booster(max_depth=3)
    scored = tree_tables._score_ways

    def one_step_off(tree: xgb.Booster, ways: list, width: int, with_base: bool) -> Any:
        leaf, contributions = scored(tree, ways, width, with_base)
        if tree[0:1].get_dump() == booster[1:2].get_dump():
            leaf = np.nextafter(leaf, np.float32(np.inf))
        return leaf, contributions

    monkeypatch.setattr(tree_tables, "_score_ways", one_step_off)

    # when the tables are built, then they are refused, and the log says so
    why, tables = TreeTables._build(booster, tree_tables.CHECK_ROWS)
    assert tables is None and "differ from XGBoost's answers" in why
    with caplog.at_level(logging.WARNING):
        assert TreeTables.of(booster) is None
    assert _warned(caplog)


def _warned(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        record.name == tree_tables.__name__ and record.levelno == logging.WARNING
        for record in caplog.records
    )
