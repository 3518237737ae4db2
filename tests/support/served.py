"""Helpers for tests that talk to a served bento: a free port, a decision POST, the audit count."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from decisioning.adapters.audit import AuditStore
from decisioning.settings import load_settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post_decision(
    url: str, body: object, key: str | None, timeout_s: float = 60
) -> tuple[int, dict[str, Any]]:
    """POST /v1/decisions (with ``Bearer key`` unless None); the status and the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"{url}/v1/decisions", data=json.dumps(body).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@contextmanager
def _audit_store(home: Path, profile: str) -> Iterator[AuditStore]:
    """The audit store a service under ``home`` writes, opened for the block."""
    store = AuditStore.open(load_settings({"RISK_HOME": str(home), "RISK_ENV": profile}).audit.url)
    try:
        yield store
    finally:
        store.close()


def recorded_decision(home: Path, decision_id: str, profile: str = "local") -> dict[str, Any]:
    """The ``decision`` of a decision's audit record under ``home``."""
    with _audit_store(home, profile) as store:
        record = store.get(decision_id)
        assert record is not None, f"no audit record {decision_id}"
        return dict(record.body["decision"])


def audit_rows(home: Path, profile: str = "local") -> int:
    """Decisions in the audit chain under ``home``, once the chain verified.

    Decisions only: the explanations of reviews and escalations (and their LLM calls) are
    appended in the background after the answer, so counting every record would race them.
    """
    with _audit_store(home, profile) as store:
        report = store.verify()
        assert report.ok, f"the audit chain is broken at {report.first_broken_id}"
        return sum(1 for _ in store.records(kind="decision"))
