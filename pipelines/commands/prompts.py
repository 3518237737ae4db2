"""``riskctl prompts``: score a prompt version on its golden set; promote it to ``@champion``.

Both run the version through the gateway with the configured provider (``RISK_LLM_*``; offline
by default) and judge it by the ``prompts:`` gates of ``configs/gates.yaml``. ``evaluate`` logs
its scores as an MLflow run; ``promote`` is audited by ``registry.prompt_promotion``, and this
module only opens the stores and prints.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from decisioning.settings import Settings, load_settings
from pipelines.commands.registry import audit_trail

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from decisioning.adapters.llm.gateway import LlmGateway
    from registry.prompt_promotion import GatedEvaluation

app = typer.Typer(help="Prompts: evaluate on golden sets, promote.", no_args_is_help=True)

EVALUATION_EXPERIMENT = "prompt-evaluation"


@app.command()
def evaluate(
    name: Annotated[str, typer.Argument(help="a prompt under configs/prompts")],
    version: Annotated[int | None, typer.Option(help="the version (default: the highest)")] = None,
    log: Annotated[bool, typer.Option(help="log the scores as an MLflow run")] = True,
) -> None:
    """Score a version on its golden set; exit 1 if a gate of configs/gates.yaml fails."""
    from registry.prompt_evaluation import load_prompt_gates
    from registry.prompt_promotion import evaluate_against_gates, prompt_champion
    from registry.tracking import mlflow_session

    settings = load_settings()
    prompts = _prompts_dir(settings)
    gates = load_prompt_gates(settings.config_path("configs/gates.yaml"), name)
    with mlflow_session(settings.mlflow) as client:
        champion = prompt_champion(client, name)
        gated = evaluate_against_gates(_gateway(prompts), prompts, name, version, gates, champion)
        run_id = _log_evaluation(settings, client, gated) if log else None
    _print_evaluation(gated)
    if run_id:
        typer.echo(f"logged as MLflow run {run_id} ({EVALUATION_EXPERIMENT})")
    if gated.failed:
        typer.echo(f"{gated.evaluation.label}: gate(s) failed", err=True)
        raise typer.Exit(1)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="a prompt under configs/prompts")],
    version: Annotated[int, typer.Option(help="the version to make champion")],
    reason: Annotated[str, typer.Option(help="why this version should take over (audited)")],
    approver: Annotated[
        str | None, typer.Option(help="who approves this promotion (default: the OS user)")
    ] = None,
) -> None:
    """Register the prompt files, gate the version on its golden set, move @champion (audited)."""
    from registry.prompt_evaluation import load_prompt_gates
    from registry.prompt_promotion import promote_prompt_if_gates_pass
    from registry.prompts import register_prompts
    from registry.tracking import mlflow_session

    settings = load_settings()
    prompts = _prompts_dir(settings)
    who = approver or getpass.getuser()
    gates = load_prompt_gates(settings.config_path("configs/gates.yaml"), name)
    with audit_trail(settings) as audit, mlflow_session(settings.mlflow) as client:
        register_prompts(client, prompts)  # idempotent; refuses an edited published file
        promotion = promote_prompt_if_gates_pass(
            client, _gateway(prompts), prompts, name, version, who, reason, gates, audit
        )
    for gate, result in promotion.gate_tags.items():
        typer.echo(f"{gate}: {result}")
    previous = f" (was v{promotion.previous_champion})" if promotion.previous_champion else ""
    typer.echo(f"{name} v{version} is champion{previous}; approved by {who}")


def _prompts_dir(settings: Settings) -> Path:
    return settings.config_path("configs/prompts")


def _gateway(prompts: Path) -> LlmGateway:
    """The configured provider; calls are kept in memory, since no decision is being made."""
    from decisioning.adapters.llm.gateway import InMemoryLlmCallRecorder, LlmConfig, build_gateway

    return build_gateway(LlmConfig.from_env(os.environ), prompts, InMemoryLlmCallRecorder())


def _print_evaluation(gated: GatedEvaluation) -> None:
    evaluation = gated.evaluation
    typer.echo(f"{evaluation.label} on {len(evaluation.cases)} golden cases ({evaluation.model})")
    typer.echo(f"{'case':<32} {'schema':>6} {'spans':>6} {'faithful':>8} {'expected':>8}  problems")
    mark = {True: "ok", False: "FAIL", None: "-"}
    for case in evaluation.cases:
        typer.echo(
            f"{case.case_id:<32} {mark[case.schema_valid]:>6} {mark[case.spans_valid]:>6} "
            f"{mark[case.faithful]:>8} {mark[case.expected]:>8}  {'; '.join(case.problems)}"
        )
    for metric, value in evaluation.metrics.items():
        typer.echo(f"{metric:<16} {value:.4f}")
    for result in gated.results:
        typer.echo(f"gate.{result.name}: {result.as_tag()}")


def _log_evaluation(settings: Settings, client: MlflowClient, gated: GatedEvaluation) -> str:
    """One run in the ``prompt-evaluation`` experiment: scores, gates, and the case table."""
    import mlflow

    from registry.tracking import ensure_experiment

    evaluation = gated.evaluation
    experiment = ensure_experiment(client, EVALUATION_EXPERIMENT, settings.mlflow.artifact_root)
    with mlflow.start_run(experiment_id=experiment, run_name=evaluation.label) as run:
        mlflow.set_tags(
            {
                "prompt": evaluation.label,
                "prompt_name": evaluation.name,
                "prompt_version": str(evaluation.version),
                "provider": evaluation.provider,
                "model": evaluation.model,
                "gates": "failed" if gated.failed else "passed",
            }
        )
        mlflow.log_metrics(evaluation.metrics)
        mlflow.log_dict(
            {"cases": [case.__dict__ for case in evaluation.cases]}, "golden_cases.json"
        )
        return str(run.info.run_id)
