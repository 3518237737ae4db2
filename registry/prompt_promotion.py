"""Promotion of a prompt version to ``@champion`` on MLflow's prompt registry, as models are.

The version runs over its golden set through the gateway it is given (``registry.
prompt_evaluation``), the champion too when there is another one, and the gates of the prompt's
section under ``prompts:`` in ``configs/gates.yaml`` judge the scores. Results go to the version's
tags in the registry and to the audit trail the caller must hand in: the ``prompt_promotion``
record is written before the alias moves, a move that then fails is followed by a
``prompt_promotion_failed`` record, and a refusal is ``prompt_promotion_refused``. Services
resolve ``@champion`` when they start (``decisioning.conduct.prompts.champion_prompt_versions``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from decisioning.adapters.llm.gateway import LlmGateway
from decisioning.conduct.errors import PromptVersionConflictError
from decisioning.conduct.prompts import load_prompt, prompt_versions
from decisioning.core.events import utc_now
from decisioning.core.names import CHAMPION
from registry.errors import GateFailed, PromptNotRegisteredError
from registry.gates import GateResult
from registry.prompt_evaluation import (
    PromptEvaluation,
    PromptGates,
    evaluate_prompt,
    evaluate_prompt_gates,
    load_golden_set,
    metric_tags,
)
from registry.workflow import AuditTrail

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptPromotion:
    name: str
    version: int
    previous_champion: int | None
    gate_tags: dict[str, str]
    promoted_at: str
    evaluation: PromptEvaluation


@dataclass(frozen=True)
class GatedEvaluation:
    """A version's scores, the champion it was compared with, and the gates' verdicts."""

    evaluation: PromptEvaluation
    champion: int | None
    results: tuple[GateResult, ...]

    @property
    def failed(self) -> list[str]:
        return [f"{r.name} ({r.detail})" for r in self.results if not r.passed]


def prompt_champion(client: MlflowClient, name: str) -> int | None:
    """The version aliased ``champion`` in the prompt registry, if any."""
    try:
        version = client.get_prompt_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return None if version is None else int(version.version)


def evaluate_against_gates(
    gateway: LlmGateway,
    prompts_dir: Path,
    name: str,
    version: int | None,
    gates: PromptGates,
    champion: int | None,
) -> GatedEvaluation:
    """Score ``version`` (default: the highest file) and the champion on the golden set; gate."""
    prompt = load_prompt(prompts_dir, name, version)
    cases = load_golden_set(prompts_dir, name)
    candidate = evaluate_prompt(gateway, prompt, cases)
    baseline = None
    if champion is not None and champion != prompt.version:
        if champion in prompt_versions(prompts_dir, name):
            baseline = evaluate_prompt(gateway, load_prompt(prompts_dir, name, champion), cases)
        else:
            logger.warning("%s@champion is v%d, which has no file: not compared", name, champion)
    results = evaluate_prompt_gates(gates, candidate, baseline)
    return GatedEvaluation(candidate, champion, tuple(results))


def _record(audit: AuditTrail, kind: str, body: dict[str, Any]) -> None:
    audit.append(kind, f"{kind}_{uuid4().hex}", body)


def _check_registered(client: MlflowClient, prompts_dir: Path, name: str, version: int) -> None:
    """The registry holds this version with the file's very text (what decisions will name)."""
    prompt = load_prompt(prompts_dir, name, version)
    try:
        stored = client.get_prompt_version(name, version)
    except MlflowException as exc:
        raise PromptNotRegisteredError(f"{prompt.registry_uri} is not registered") from exc
    if stored is None:
        raise PromptNotRegisteredError(f"{prompt.registry_uri} is not registered")
    if stored.template != prompt.template:
        raise PromptVersionConflictError(f"{name}/v{version}.yaml differs from the registry's")


def promote_prompt_if_gates_pass(
    client: MlflowClient,
    gateway: LlmGateway,
    prompts_dir: Path,
    name: str,
    version: int,
    approver: str,
    reason: str,
    gates: PromptGates,
    audit: AuditTrail,
) -> PromptPromotion:
    """Move ``@champion`` to ``version`` if every gate passes on the golden set; else GateFailed.

    Either way the audit trail says who asked, why, and what the gates found.
    """
    _check_registered(client, prompts_dir, name, version)
    champion = prompt_champion(client, name)
    gated = evaluate_against_gates(gateway, prompts_dir, name, version, gates, champion)
    gate_tags = {f"gate.{result.name}": result.as_tag() for result in gated.results}
    now = utc_now().isoformat()
    for key, value in {
        **gate_tags,
        **metric_tags(gated.evaluation),
        "gates.checked_at": now,
    }.items():
        client.set_prompt_version_tag(name, version, key, value)
    asked = {
        "prompt": name,
        "version": version,
        "previous_champion": champion,
        "approver": approver,
        "reason": reason,
        "provider": gated.evaluation.provider,
        "model": gated.evaluation.model,
        "metrics": gated.evaluation.metrics,
        "gates": gate_tags,
    }
    if gated.failed:
        _record(
            audit, "prompt_promotion_refused", {**asked, "refused_at": now, "failed": gated.failed}
        )
        raise GateFailed(name, str(version), gated.failed)
    _record(audit, "prompt_promotion", {**asked, "promoted_at": now})
    try:
        client.set_prompt_alias(name, CHAMPION, version)
        for key, value in {
            "approved_by": approver,
            "promotion_reason": reason,
            "promoted_at": now,
            "previous_champion": "" if champion is None else str(champion),
        }.items():
            client.set_prompt_version_tag(name, version, key, value)
    except Exception as exc:
        _record(
            audit, "prompt_promotion_failed", {**asked, "error": f"{type(exc).__name__}: {exc}"}
        )
        raise
    logger.info("promoted prompt %s v%d to %s (approver %s)", name, version, CHAMPION, approver)
    return PromptPromotion(name, version, champion, gate_tags, now, gated.evaluation)
