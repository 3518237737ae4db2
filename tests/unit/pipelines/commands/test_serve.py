"""``riskctl serve``: each server on a host keeps its own Prometheus multiprocess folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.commands import serve as serve_command


def served_home(port: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """The BENTOML_HOME ``riskctl serve --port PORT`` hands BentoML (the exec is caught)."""
    seen: list[str] = []
    monkeypatch.setattr(
        serve_command.os, "execv", lambda *_: seen.append(os.environ["BENTOML_HOME"])
    )
    before = os.environ.get("BENTOML_HOME")
    try:
        serve_command.serve(port=port)
    finally:
        os.environ.pop("BENTOML_HOME", None)
        if before is not None:
            os.environ["BENTOML_HOME"] = before
    return seen[0]


def test_two_servers_on_one_host_have_two_prometheus_folders(
    risk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BENTOML_HOME", raising=False)

    first, second = served_home(3000, monkeypatch), served_home(3001, monkeypatch)

    assert first != second
    assert Path(first).is_relative_to(risk_home)


def test_an_operators_bentoml_home_is_the_base(
    risk_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "operator"))

    home = served_home(3000, monkeypatch)

    assert Path(home).is_relative_to(tmp_path / "operator") and home != str(tmp_path / "operator")
