import pandas as pd
import pytest

from registry.errors import GatesConfigError
from registry.gates import evaluate_gates, load_gates

from ..decisioning.conduct.conftest import CONFIGS

HOLDOUT = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"]})


def scorer(answers: list[str]):
    return lambda frame: pd.DataFrame({"category": answers[: len(frame)]})


@pytest.fixture
def gates():
    return load_gates(CONFIGS / "gates.yaml", "conduct-classifier")


def test_no_champion_passes_the_comparison_but_not_the_floor(gates) -> None:
    results = evaluate_gates(gates, HOLDOUT, scorer(["y", "x", "y", "x"]), None)
    verdicts = {r.name: r.passed for r in results}
    assert verdicts == {"macro_f1_vs_champion": True, "macro_f1_floor": False}


def test_worse_than_champion_on_the_same_rows_fails(gates) -> None:
    champion, candidate = scorer(["x", "y", "x", "y"]), scorer(["x", "y", "x", "x"])
    results = {r.name: r for r in evaluate_gates(gates, HOLDOUT, candidate, champion)}
    assert not results["macro_f1_vs_champion"].passed
    assert "vs champion 1.0000" in results["macro_f1_vs_champion"].detail


def test_equal_to_champion_passes(gates) -> None:
    perfect = scorer(["x", "y", "x", "y"])
    assert all(r.passed for r in evaluate_gates(gates, HOLDOUT, perfect, perfect))


def test_model_without_gates_cannot_be_promoted() -> None:
    with pytest.raises(GatesConfigError, match="no gates for churn-model"):
        load_gates(CONFIGS / "gates.yaml", "churn-model")


def test_both_registered_models_have_gates() -> None:
    for name in ("fraud-detector", "conduct-classifier"):
        assert load_gates(CONFIGS / "gates.yaml", name).gates, f"{name} has no gates"
