"""The one wiring of the engine: what a caller may hand in, and what it may not."""

from __future__ import annotations

from pathlib import Path

import pytest

from decisioning import wiring
from decisioning.settings import load_settings


@pytest.mark.parametrize("given", ["remote", "", "http://scorer:3001", "in-process"])
@pytest.mark.parametrize("pillar", ["fraud", "conduct"])
def test_a_string_other_than_in_process_is_refused_before_anything_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pillar: str, given: str
) -> None:
    """A mistyped pillar must not quietly load the in-process one instead."""
    settings = load_settings({"RISK_HOME": str(tmp_path), "RISK_ENV": "local"})
    opened: list[str] = []
    monkeypatch.setattr(wiring.AuditStore, "from_settings", lambda *a: opened.append("audit"))

    with pytest.raises(TypeError, match=repr(given)):
        wiring.build_engine(settings, **{pillar: given})  # type: ignore[arg-type]

    assert opened == []


def test_pillars_handed_in_are_used_as_given(tmp_path: Path) -> None:
    settings = load_settings({"RISK_HOME": str(tmp_path), "RISK_ENV": "local"})
    fraud, conduct = object(), object()

    engine = wiring.build_engine(settings, fraud=fraud, conduct=conduct)  # type: ignore[arg-type]
    try:
        assert engine.fraud is fraud and engine.conduct is conduct
    finally:
        engine.audit.close()
