"""The extraction gateway logs its calls in the engine's audit store, never a second one (R8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from decisioning.adapters.audit import AuditStore
from decisioning.settings import load_settings
from decisioning.wiring import extraction_gateway


def test_extraction_calls_go_to_the_engines_store_and_open_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the engine's open store, and any other store refusing to open
    settings = load_settings({"RISK_HOME": str(tmp_path), "RISK_ENV": "local"})
    audit = AuditStore.open(f"sqlite:///{tmp_path / 'engine.db'}")

    def no_second_store(cls: type[AuditStore], *args: object, **kwargs: object) -> AuditStore:
        raise AssertionError("extraction opened a second audit store, which nothing closes")

    monkeypatch.setattr(AuditStore, "open", classmethod(no_second_store))
    try:
        # when the extraction gateway is built and called
        gateway = extraction_gateway(settings, audit)
        gateway.call(gateway.prompt("conduct_facts"), {"text": "I paid £40 yesterday"})

        # then its call is in the engine's store
        calls = list(audit.records("llm_call"))
    finally:
        audit.close()
    assert [c.body["prompt_name"] for c in calls] == ["conduct_facts"]
