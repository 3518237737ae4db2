"""``riskctl registry``: list versions, promote a challenger through its gates, roll back.

Promotions and rollbacks are written to the audit store as well as to MLflow's version tags, so
the audit trail alone shows who put which model in charge and when.
"""

from __future__ import annotations

import getpass
import uuid
from typing import Annotated, Any

import typer

from decisioning.settings import Settings, load_settings

app = typer.Typer(help="MLflow registry: list, promote, roll back.", no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """One line per model version: name, version, aliases."""
    from registry.tracking import mlflow_session
    from registry.workflow import list_versions

    settings = load_settings()
    with mlflow_session(settings.mlflow) as client:
        rows = list_versions(client)
    typer.echo(f"{'name':<20} {'version':>7}  aliases")
    for row in rows:
        typer.echo(f"{row.name:<20} {row.version:>7}  {','.join(row.aliases) or '-'}")


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="fraud-detector or conduct-classifier")],
    approver: Annotated[str, typer.Option(help="who approves this promotion")],
) -> None:
    """Run the gates of configs/gates.yaml; move champion to the challenger if all pass."""
    from registry.gates import load_gates
    from registry.tracking import mlflow_session
    from registry.workflow import promote_if_gates_pass

    settings = load_settings()
    gates = load_gates(settings.config_path("configs/gates.yaml"), name)
    with mlflow_session(settings.mlflow) as client:
        promotion = promote_if_gates_pass(client, name, approver, gates)
    for gate, result in promotion.gate_tags.items():
        typer.echo(f"{gate}: {result}")
    record_in_audit(
        settings,
        "promotion",
        {
            "model": name,
            "version": promotion.version,
            "previous_champion": promotion.previous_champion,
            "approver": approver,
            "gates": promotion.gate_tags,
        },
    )
    previous = f" (was v{promotion.previous_champion})" if promotion.previous_champion else ""
    typer.echo(f"{name} v{promotion.version} is champion{previous}; approved by {approver}")


@app.command("rollback")
def rollback_command(
    name: Annotated[str, typer.Argument(help="fraud-detector or conduct-classifier")],
    approver: Annotated[
        str | None, typer.Option(help="who asks for the rollback (default: the OS user)")
    ] = None,
) -> None:
    """Point champion back at the previous champion."""
    from registry.tracking import mlflow_session
    from registry.workflow import rollback

    settings = load_settings()
    who = approver or getpass.getuser()
    with mlflow_session(settings.mlflow) as client:
        version = rollback(client, name, who)
    record_in_audit(settings, "rollback", {"model": name, "version": version, "approver": who})
    typer.echo(f"{name} champion is v{version} again")


def record_in_audit(settings: Settings, kind: str, body: dict[str, Any]) -> None:
    from decisioning.audit import AuditStore

    store = AuditStore.open(settings.audit.url)
    try:
        store.append(kind, f"{kind}_{uuid.uuid4().hex}", body)
    finally:
        store.close()
