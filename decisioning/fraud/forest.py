"""The isolation forest compiled to flat arrays, to score one payment in microseconds.

scikit-learn scores a row tree by tree through joblib: 5-50 ms for one payment here, most of it
per-call overhead. Here every tree's nodes sit in one set of arrays, and one payment walks all
trees at once, one level per step. The arithmetic is scikit-learn's (float32 inputs against the
split thresholds, the path length plus the average path length of the leaf's samples, summed
tree by tree), so the score equals ``-IsolationForest.score_samples`` (tests compare them). It
reads private arrays of the fitted forest; scikit-learn is pinned in the lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length


@dataclass(frozen=True)
class CompiledForest:
    """Node arrays of all trees end to end; tree ``t`` starts at ``roots[t]``."""

    roots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    leaf_depth: np.ndarray
    steps: int
    denominator: float

    @classmethod
    def of(cls, forest: IsolationForest) -> CompiledForest:
        parts: dict[str, list[np.ndarray]] = {
            name: [] for name in ("left", "right", "feature", "threshold", "depth")
        }
        roots, offset, steps = [], 0, 0
        trees = zip(forest.estimators_, forest.estimators_features_, strict=True)
        for index, (tree, features) in enumerate(trees):
            nodes = tree.tree_
            leaf = nodes.children_left == -1
            roots.append(offset)
            # A leaf points at itself both ways, so a walk that reached it stays there.
            itself = np.arange(nodes.node_count)
            parts["left"].append(np.where(leaf, itself, nodes.children_left) + offset)
            parts["right"].append(np.where(leaf, itself, nodes.children_right) + offset)
            parts["feature"].append(np.asarray(features)[np.where(leaf, 0, nodes.feature)])
            parts["threshold"].append(nodes.threshold)
            # scikit-learn's per-leaf term, in its order of operations.
            decision = forest._decision_path_lengths[index]
            average = forest._average_path_length_per_tree[index]
            parts["depth"].append(decision + average - 1.0)
            offset += nodes.node_count
            steps = max(steps, nodes.max_depth)
        flat = {name: np.concatenate(arrays) for name, arrays in parts.items()}
        samples = _average_path_length([forest._max_samples])[0]
        return cls(
            roots=np.asarray(roots),
            left=flat["left"],
            right=flat["right"],
            feature=flat["feature"],
            threshold=flat["threshold"],
            leaf_depth=flat["depth"],
            steps=steps,
            denominator=float(len(forest.estimators_) * samples),
        )

    def anomaly(self, row: np.ndarray) -> float:
        """``-score_samples`` of one row without gaps: higher is more anomalous."""
        values = np.asarray(row, dtype=np.float32)  # trees split float32 inputs
        nodes = self.roots
        for _ in range(self.steps):  # a leaf's children are itself
            goes_left = values[self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(goes_left, self.left[nodes], self.right[nodes])
        depths = 0.0
        for term in self.leaf_depth[nodes].tolist():  # tree by tree, as scikit-learn sums
            depths += term
        if self.denominator == 0:
            return 1.0
        return float((2 ** -np.divide(np.array([depths]), self.denominator))[0])
