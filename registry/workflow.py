"""Promotion, rollback and listing over MLflow aliases (never stages).

``champion`` moves only after every gate passes, and every move is written down twice: in MLflow
(gate results, approver, reason and time as version tags, the sequence of champions as a
registered-model tag, which is what ``rollback`` walks back) and in the audit trail, which every
caller must hand in, so no entry point can move ``champion`` unaudited. The audit record is
written before the alias moves: a move the trail does not hold cannot happen, and a move that
fails after its record is followed by a ``promotion_failed`` record saying so. A refusal by the
gates is audited too.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import uuid4

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from decisioning.adapters.mlflow.model_store import verified_model_dir
from decisioning.core.decision import ModelVersion
from decisioning.core.events import utc_now
from registry.errors import (
    GateFailed,
    NoChallengerError,
    NoPreviousChampionError,
    UnknownModelError,
)
from registry.gates import ModelGates, Scorer, evaluate_gates
from registry.names import CHALLENGER, CHAMPION, CHAMPION_HISTORY_TAG, MODEL_NAMES

logger = logging.getLogger(__name__)


class AuditTrail(Protocol):
    """Where promotions and rollbacks are recorded (``decisioning.adapters.audit.AuditStore``)."""

    def append(self, kind: str, record_id: str, body: dict[str, Any]) -> object: ...


def _record(audit: AuditTrail, kind: str, body: dict[str, Any]) -> None:
    audit.append(kind, f"{kind}_{uuid4().hex}", body)


@dataclass(frozen=True)
class VersionRow:
    name: str
    version: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous_champion: str | None
    gate_tags: dict[str, str]
    promoted_at: str


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _check_known(client: MlflowClient, name: str) -> None:
    if name not in MODEL_NAMES:
        raise UnknownModelError(
            f"{name!r} is not a registered model name ({', '.join(MODEL_NAMES)})"
        )
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise UnknownModelError(f"{name} has no registered versions yet") from exc


def _history(client: MlflowClient, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    return list(json.loads(tags.get(CHAMPION_HISTORY_TAG, "[]")))


def _pyfunc_scorer(name: str, version: str) -> Scorer:
    # The gates unpickle the challenger too, so it is verified like a served model first.
    local = verified_model_dir(mlflow.get_tracking_uri(), ModelVersion(name=name, version=version))
    model = mlflow.pyfunc.load_model(str(local))
    return lambda frame: pd.DataFrame(model.predict(frame))


def _holdout(client: MlflowClient, name: str, version: str, artifact: str) -> pd.DataFrame:
    run_id = str(client.get_model_version(name, version).run_id)
    with tempfile.TemporaryDirectory() as scratch:
        path = client.download_artifacts(run_id, artifact, scratch)
        return pd.read_parquet(Path(path))


def promote_if_gates_pass(
    client: MlflowClient,
    name: str,
    approver: str,
    gates: ModelGates,
    reason: str,
    audit: AuditTrail,
) -> Promotion:
    """Move ``champion`` to the ``challenger`` if every gate passes; else raise GateFailed.

    Either way the audit trail says who asked, why, and what the gates found.
    """
    _check_known(client, name)
    candidate = _alias_version(client, name, CHALLENGER)
    if candidate is None:
        raise NoChallengerError(f"{name} has no version aliased {CHALLENGER}; train one first")
    champion = _alias_version(client, name, CHAMPION)
    holdout = _holdout(client, name, candidate, gates.holdout.artifact)
    champion_scorer = _pyfunc_scorer(name, champion) if champion is not None else None
    tags = dict(client.get_model_version(name, candidate).tags)
    results = evaluate_gates(gates, holdout, _pyfunc_scorer(name, candidate), champion_scorer, tags)
    gate_tags = {f"gate.{result.name}": result.as_tag() for result in results}
    now = utc_now().isoformat()
    for key, value in {**gate_tags, "gates.checked_at": now}.items():
        client.set_model_version_tag(name, candidate, key, value)
    asked = {
        "model": name,
        "version": candidate,
        "previous_champion": champion,
        "approver": approver,
        "reason": reason,
        "gates": gate_tags,
    }
    failed = [f"{r.name} ({r.detail})" for r in results if not r.passed]
    if failed:
        _record(audit, "promotion_refused", {**asked, "refused_at": now, "failed": failed})
        raise GateFailed(name, candidate, failed)
    _record(audit, "promotion", {**asked, "promoted_at": now})
    try:
        _move_champion(client, name, candidate, champion, approver, reason, now)
    except Exception as exc:
        _record(audit, "promotion_failed", {**asked, "error": f"{type(exc).__name__}: {exc}"})
        raise
    logger.info("promoted %s v%s to %s (approver %s)", name, candidate, CHAMPION, approver)
    return Promotion(name, candidate, champion, gate_tags, now)


def _move_champion(
    client: MlflowClient,
    name: str,
    candidate: str,
    champion: str | None,
    approver: str,
    reason: str,
    now: str,
) -> None:
    client.set_registered_model_alias(name, CHAMPION, candidate)
    client.delete_registered_model_alias(name, CHALLENGER)
    for key, value in {
        "approved_by": approver,
        "promotion_reason": reason,
        "promoted_at": now,
        "previous_champion": champion or "",
    }.items():
        client.set_model_version_tag(name, candidate, key, value)
    history = [*_history(client, name), candidate]
    client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, json.dumps(history))


def rollback(client: MlflowClient, name: str, approver: str, reason: str, audit: AuditTrail) -> str:
    """Point ``champion`` back at the champion before the current one; returns its version."""
    _check_known(client, name)
    history = _history(client, name)
    current = _alias_version(client, name, CHAMPION)
    if current is None or len(history) < 2 or history[-1] != current:
        raise NoPreviousChampionError(f"{name} has no earlier champion to roll back to")
    previous = history[-2]
    now = utc_now().isoformat()
    _record(
        audit,
        "rollback",
        {
            "model": name,
            "version": previous,
            "from_version": current,
            "approver": approver,
            "reason": reason,
            "rolled_back_at": now,
        },
    )
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_model_version_tag(name, current, "rolled_back_at", now)
    client.set_model_version_tag(name, current, "rolled_back_by", approver)
    client.set_model_version_tag(name, current, "rollback_reason", reason)
    client.set_registered_model_tag(name, CHAMPION_HISTORY_TAG, json.dumps(history[:-1]))
    logger.info("rolled %s back from v%s to v%s (by %s)", name, current, previous, approver)
    return previous


def list_versions(client: MlflowClient) -> list[VersionRow]:
    """Every version of every platform model, newest first within a model."""
    rows = []
    for name in MODEL_NAMES:
        try:
            versions = client.search_model_versions(f"name='{name}'")
        except MlflowException:
            continue
        for number in sorted((int(v.version) for v in versions), reverse=True):
            # search results leave aliases empty on some stores; the version lookup fills them
            aliases = client.get_model_version(name, str(number)).aliases
            rows.append(VersionRow(name, str(number), tuple(sorted(aliases))))
    return rows
