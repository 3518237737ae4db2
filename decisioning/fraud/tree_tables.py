"""XGBoost's margin and TreeSHAP contributions of one payment, looked up in tables built at load.

Even through the C API (``booster.py``) a one-row prediction costs ~0.18 ms of CPU here, most of it
XGBoost building a one-row ``DMatrix`` (~65 µs) and setting up per call, around a few µs of trees
(issue 19). But a tree with ``k`` splits gives a row one of at most ``2**k`` answers: which leaf it
reaches, and its TreeSHAP contributions, depend only on which way the row goes at each split
(path-dependent TreeSHAP reads nothing else of the row). So when every tree is small, each way
through each tree is scored once, by XGBoost itself, when the model loads; a payment then costs
one comparison per split and a lookup per tree.

The sums are XGBoost's: contributions add tree by tree in float32 in the trees' order (as its CPU
predictor does), then the bias column is the constant XGBoost gives every row; the margin is the
first tree's answer with XGBoost's base margin in it, then each tree's leaf added in float32, in
order. Tables are
built only for a plain ``gbtree`` with ``binary:logistic``, numeric splits and at most
``MAX_SPLITS`` splits a tree, and used only if they give XGBoost's own bits on rows probing every
split (values at, just below and past each threshold, and missing); otherwise ``of`` returns None
and the caller keeps the C API path. Tests compare both paths with ``Booster.predict``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from decisioning.fraud.booster import OneRowPredictor

logger = logging.getLogger(__name__)

MAX_SPLITS = 10  # 1,024 ways through a tree at most; deeper trees keep the C API path
MAX_WAYS = 100_000  # all trees' ways: tables of ~4 MB a 10 features
CHECK_ROWS = 400
_NO_ANSWER = np.float32(np.nan)


@dataclass(frozen=True)
class _Split:
    tree: int
    position: int  # the split's bit in its tree's way number
    feature: int
    threshold: np.float32
    default_left: bool


@dataclass(frozen=True)
class TreeTables:
    """Every tree's answers by way number, and the splits that make a row's way numbers."""

    split_feature: np.ndarray  # per split, all trees' splits end to end
    split_threshold: np.ndarray  # float32
    split_default_left: np.ndarray
    split_tree: np.ndarray
    split_bit: np.ndarray  # 2 ** position
    tree_offset: np.ndarray  # each tree's first row in the tables
    leaf: np.ndarray  # float32, per tree and way: the leaf value
    contributions: np.ndarray  # float32, per tree and way: the tree's contributions, bias last
    width: int  # the booster's features
    bias: np.float32  # the bias column XGBoost gives every row

    @classmethod
    def of(cls, booster: xgb.Booster, check_rows: int = CHECK_ROWS) -> TreeTables | None:
        """The tables of ``booster`` if it qualifies and they give XGBoost's bits, else None
        (the caller keeps the C API), saying why in the log."""
        try:
            why_not, tables = cls._build(booster, check_rows)
        except Exception as exc:  # a model shape the tables do not know: the C API serves it
            why_not, tables = f"{type(exc).__name__}: {exc}"[:200], None
        if tables is None:
            logger.warning("fraud model scored through XGBoost's C API: %s", why_not)
        return tables

    @classmethod
    def _build(cls, booster: xgb.Booster, check_rows: int) -> tuple[str, TreeTables | None]:
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        config = json.loads(booster.save_config())["learner"]
        trees = learner["gradient_booster"].get("model", {}).get("trees", [])
        parallel = config["gradient_booster"].get("gbtree_model_param", {})
        splits_a_tree = max((_splits(tree) for tree in trees), default=0)
        if (
            learner["gradient_booster"]["name"] != "gbtree"
            or config["objective"]["name"] != "binary:logistic"
            or int(parallel.get("num_parallel_tree", 1)) != 1
            or int(learner["learner_model_param"].get("num_target", 1)) != 1
            or not trees
            or any(any(tree.get("split_type", [])) for tree in trees)
        ):
            return "not a plain binary:logistic gbtree with numeric splits", None
        if splits_a_tree > MAX_SPLITS:
            return f"a tree has {splits_a_tree} splits (the tables take {MAX_SPLITS})", None
        width = int(learner["learner_model_param"]["num_feature"])
        splits: list[_Split] = []
        leaves: list[np.ndarray] = []
        contributions: list[np.ndarray] = []
        offsets: list[int] = []
        ways = 0
        for index, tree in enumerate(trees):
            tree_splits, rows = _ways(index, tree, width)
            if ways + len(rows) > MAX_WAYS:
                return f"more than {MAX_WAYS} ways through the trees", None
            # The first tree's leaves carry XGBoost's own base margin: its margin starts there.
            one = booster[index : index + 1]
            leaf, contribution = _score_ways(one, rows, width, with_base=index == 0)
            offsets.append(ways)
            ways += len(rows)
            splits += tree_splits
            leaves.append(leaf)
            contributions.append(contribution)
        reference = OneRowPredictor(booster)
        probes = _probe_rows(splits, width, check_rows)
        tables = cls(
            split_feature=np.array([s.feature for s in splits], dtype=np.intp),
            split_threshold=np.array([s.threshold for s in splits], dtype=np.float32),
            split_default_left=np.array([s.default_left for s in splits], dtype=bool),
            split_tree=np.array([s.tree for s in splits], dtype=np.intp),
            split_bit=np.array([1 << s.position for s in splits], dtype=np.intp),
            tree_offset=np.array(offsets, dtype=np.intp),
            leaf=np.concatenate(leaves),
            contributions=np.concatenate(contributions),
            width=width,
            bias=np.float32(reference.margin_and_contributions(probes[0])[1][-1]),
        )
        if not tables._agrees_with(reference, probes):
            return "its tree tables differ from XGBoost's answers", None
        return "", tables

    def margin_and_contributions(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As ``OneRowPredictor.margin_and_contributions``: the margin (shape (1,)) and the
        contributions (one per column, then the bias), float32, XGBoost's bits; a row XGBoost
        refuses (another width, an infinite value once in float32) is refused here too."""
        rows = self._table_rows(row)
        margin = np.cumsum(self.leaf[rows], dtype=np.float32)[-1:]  # in order, as XGBoost adds
        contributions = np.cumsum(self.contributions[rows], axis=0, dtype=np.float32)[-1]
        contributions[-1] = self.bias
        return margin, contributions

    def _table_rows(self, row: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            cast = np.asarray(row, dtype=np.float32)  # XGBoost reads float32
        if cast.shape != (self.width,):
            raise ValueError(f"a row of {cast.shape} values for a model of {self.width} features")
        if np.isinf(cast).any():
            raise ValueError("Input data contains `inf` or a value too large for float32")
        values = cast[self.split_feature]
        left = np.where(np.isnan(values), self.split_default_left, values < self.split_threshold)
        ways = np.bincount(
            self.split_tree, weights=left * self.split_bit, minlength=len(self.tree_offset)
        )
        return self.tree_offset + ways.astype(np.intp)

    def _agrees_with(self, reference: OneRowPredictor, rows: np.ndarray) -> bool:
        for row in rows:
            margin, contributions = self.margin_and_contributions(row)
            expected_margin, expected = reference.margin_and_contributions(row)
            if not (
                np.array_equal(margin, expected_margin) and np.array_equal(contributions, expected)
            ):
                return False
        return True


def _splits(tree: dict[str, Any]) -> int:
    return sum(1 for child in tree["left_children"] if child != -1)


def _ways(
    index: int, tree: dict[str, Any], width: int
) -> tuple[list[_Split], list[np.ndarray | None]]:
    """The tree's splits, and a row for each way through it (None where no row can go)."""
    internal = [node for node, child in enumerate(tree["left_children"]) if child != -1]
    splits = [
        _Split(
            tree=index,
            position=position,
            feature=int(tree["split_indices"][node]),
            threshold=np.float32(tree["split_conditions"][node]),
            default_left=bool(tree["default_left"][node]),
        )
        for position, node in enumerate(internal)
    ]
    return splits, [_row_going(way, splits, width) for way in range(2 ** len(splits))]


def _row_going(way: int, splits: list[_Split], width: int) -> np.ndarray | None:
    """A row that goes left at the splits whose bit is set in ``way`` and right elsewhere; None
    if no row can (one feature both below and at or past a threshold, not fixable by missing)."""
    row = np.zeros(width, dtype=np.float32)
    by_feature: dict[int, list[tuple[np.float32, bool, bool]]] = {}
    for split in splits:
        left = bool(way & (1 << split.position))
        by_feature.setdefault(split.feature, []).append((split.threshold, left, split.default_left))
    for feature, conditions in by_feature.items():
        below = min((t for t, left, _ in conditions if left), default=np.float32(np.inf))
        at_or_past = max((t for t, left, _ in conditions if not left), default=np.float32(-np.inf))
        if at_or_past < below:  # lower bound reached, upper bound not
            if np.isfinite(at_or_past):
                row[feature] = at_or_past
            elif np.isfinite(below):
                row[feature] = np.nextafter(below, np.float32(-np.inf))
        elif all(left == default for _, left, default in conditions):
            row[feature] = np.nan  # missing goes each split's default way
        else:
            return None
    return row


def _score_ways(
    tree: xgb.Booster, ways: list[np.ndarray | None], width: int, with_base: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One tree's margin (its leaf, plus the model's base margin ``with_base``) and its
    contributions for each way, by XGBoost (NaN where no row goes)."""
    possible = np.array([row is not None for row in ways])
    rows = np.array([row for row in ways if row is not None], dtype=np.float32).reshape(-1, width)
    names = tree.feature_names

    def matrix(base: bool) -> xgb.DMatrix:
        data = xgb.DMatrix(rows, missing=np.nan, nthread=1, feature_names=names)
        if not base:
            data.set_base_margin(np.zeros(len(rows), dtype=np.float32))  # the tree alone
        return data

    leaf = np.full(len(ways), _NO_ANSWER, dtype=np.float32)
    contributions = np.full((len(ways), width + 1), _NO_ANSWER, dtype=np.float32)
    leaf[possible] = tree.predict(matrix(with_base), output_margin=True)
    contributions[possible] = tree.predict(matrix(False), pred_contribs=True)
    return leaf, contributions


def _probe_rows(splits: list[_Split], width: int, count: int) -> np.ndarray:
    """Rows at, just below and past the thresholds, with missing values, to check the tables."""
    rng = np.random.default_rng(19)
    rows = rng.normal(size=(count, width)).astype(np.float32)
    by_feature: dict[int, list[np.float32]] = {}
    for split in splits:
        by_feature.setdefault(split.feature, []).append(split.threshold)
    for feature, thresholds in by_feature.items():
        picked = np.array(thresholds, dtype=np.float32)[rng.integers(len(thresholds), size=count)]
        nudge = rng.integers(-1, 2, size=count)  # below, at, past
        values = np.where(
            nudge < 0,
            np.nextafter(picked, np.float32(-np.inf)),
            np.where(nudge > 0, np.nextafter(picked, np.float32(np.inf)), picked),
        )
        rows[:, feature] = np.where(rng.random(count) < 0.7, values, rows[:, feature])
    rows[rng.random(rows.shape) < 0.15] = np.nan
    return rows
