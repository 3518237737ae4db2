"""The conduct run's figures: the holdout's confusion matrix and the reliability diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def write_confusion_matrix(confusion: pd.DataFrame, folder: Path) -> Path:
    """``confusion_matrix.png``: counts, true category down, predicted across."""
    plt = _pyplot()
    size = max(4.0, 0.6 * len(confusion) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    counts = confusion.to_numpy()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(confusion))
    axes.set_xticks(ticks, confusion.columns.tolist(), rotation=45, ha="right")
    axes.set_yticks(ticks, confusion.index.tolist())
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if count > counts.max() / 2 else "black"  # readable on dark cells
        axes.text(column, row, str(count), ha="center", va="center", fontsize=8, color=colour)
    axes.set(xlabel="predicted (as served)", ylabel="label", title="Confusion matrix (holdout)")
    return _saved(plt, figure, folder / "confusion_matrix.png")


def write_reliability_diagram(reliability: pd.DataFrame, error: float, folder: Path) -> Path:
    """``reliability_diagram.png``: accuracy against mean top-class confidence per bin."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.plot(reliability["confidence"], reliability["accuracy"], marker="o")
    axes.set(
        xlabel="top-class confidence",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"Calibration (holdout), ECE {error:.3f}",
    )
    return _saved(plt, figure, folder / "reliability_diagram.png")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a training host
    import matplotlib.pyplot as plt

    return plt


def _saved(plt: Any, figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
