"""The one-row C API path gives Booster.predict's margin and contributions bit for bit."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xgboost as xgb

from decisioning.fraud.booster import OneRowPredictor

WIDTH = 6


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    rng = np.random.default_rng(3)
    design = rng.normal(size=(400, WIDTH))
    design[rng.random(design.shape) < 0.1] = np.nan  # missing values take the default branch
    labels = (np.nan_to_num(design[:, 0]) + rng.normal(scale=0.5, size=400) > 0.8).astype(int)
    params = {"objective": "binary:logistic", "max_depth": 4, "nthread": 1, "seed": 1}
    return xgb.train(params, xgb.DMatrix(design, label=labels, missing=np.nan), 40)


def _rows(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.normal(scale=2.0, size=(count, WIDTH))
    rows[rng.random(rows.shape) < 0.2] = np.nan
    return rows


def test_margin_and_contributions_equal_predict_on_a_dmatrix(booster: xgb.Booster) -> None:
    # given rows with missing values, and the one-row path
    predictor = OneRowPredictor(booster)
    for row in _rows(200, seed=4):
        # when both score the row
        margin, contributions = predictor.margin_and_contributions(row)
        matrix = xgb.DMatrix(row[None, :], missing=np.nan, nthread=1)
        # then they agree to the bit, bias column included
        expected_margin = booster.predict(matrix, output_margin=True)
        expected_contributions = booster.predict(matrix, pred_contribs=True)[0]
        assert margin.dtype == expected_margin.dtype and margin.shape == expected_margin.shape
        assert np.array_equal(margin, expected_margin), (margin, expected_margin)
        assert np.array_equal(contributions, expected_contributions), "TreeSHAP must not move"
        assert contributions.shape == (WIDTH + 1,)


def test_threads_each_get_their_own_row(booster: xgb.Booster) -> None:
    # given many rows scored from several threads at once (the service's decision threads)
    predictor = OneRowPredictor(booster)
    rows = _rows(400, seed=5)
    expected = [predictor.margin_and_contributions(row)[0][0] for row in rows]
    # when they are scored again concurrently
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda row: predictor.margin_and_contributions(row)[0][0], rows))
    # then no thread read another's result
    assert concurrent == expected
