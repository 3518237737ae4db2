"""Model versions logged before ADR 0018 still unpickle: their wrappers' old module names."""

import pickle
import subprocess
import sys

import pytest

from decisioning.adapters.mlflow import conduct_pyfunc, fraud_pyfunc

OLD_NAMES = [
    (fraud_pyfunc.FraudPyfunc, "decisioning.fraud.pyfunc"),
    (conduct_pyfunc.ConductPyfunc, "decisioning.conduct.pyfunc"),
]


def _as_logged_before(cls: type, old_module: str) -> bytes:
    """A pickle naming ``cls`` by its old module, as a python_model.pkl of then does."""
    text = pickle.dumps(cls, protocol=0)  # protocol 0 names the module as a plain line
    return text.replace(f"c{cls.__module__}\n".encode(), f"c{old_module}\n".encode())


@pytest.mark.parametrize(("cls", "old_module"), OLD_NAMES)
def test_a_wrapper_pickled_under_its_old_module_loads_as_the_same_class(
    cls: type, old_module: str
) -> None:
    assert pickle.loads(_as_logged_before(cls, old_module)) is cls


@pytest.mark.parametrize(("cls", "old_module"), OLD_NAMES)
def test_without_the_aliases_the_old_pickle_would_not_load(cls: type, old_module: str) -> None:
    """In a fresh interpreter that never imported the MLflow adapter, the old name is unknown:
    the aliases are what makes the test above pass."""
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        input=_as_logged_before(cls, old_module),
        capture_output=True,
    )
    assert loaded.returncode != 0
    assert b"ModuleNotFoundError" in loaded.stderr
