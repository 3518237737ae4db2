"""``riskctl registry``: list versions, promote a challenger through its gates, roll back.

Promotions, refusals and rollbacks are written to the audit store by ``registry.workflow`` as well
as to MLflow's version tags, so the audit trail alone shows who put which model in charge, why and
when; this module only opens the store and prints.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from decisioning.settings import Settings, load_settings

if TYPE_CHECKING:
    from decisioning.adapters.audit import AuditStore
    from registry.workflow import Promotion

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
    reason: Annotated[str, typer.Option(help="why this version should take over (audited)")],
) -> None:
    """Run the gates of configs/gates.yaml; move champion to the challenger if all pass."""
    promotion = promote_and_record(load_settings(), name, approver, reason)
    for gate, result in promotion.gate_tags.items():
        typer.echo(f"{gate}: {result}")
    previous = f" (was v{promotion.previous_champion})" if promotion.previous_champion else ""
    typer.echo(f"{name} v{promotion.version} is champion{previous}; approved by {approver}")


@app.command("rollback")
def rollback_command(
    name: Annotated[str, typer.Argument(help="fraud-detector or conduct-classifier")],
    reason: Annotated[str, typer.Option(help="why champion goes back (audited)")],
    approver: Annotated[
        str | None, typer.Option(help="who asks for the rollback (default: the OS user)")
    ] = None,
) -> None:
    """Point champion back at the previous champion."""
    from registry.tracking import mlflow_session
    from registry.workflow import rollback

    settings = load_settings()
    who = approver or getpass.getuser()
    with audit_trail(settings) as audit, mlflow_session(settings.mlflow) as client:
        version = rollback(client, name, who, reason, audit)
    typer.echo(f"{name} champion is v{version} again")


def promote_and_record(settings: Settings, name: str, approver: str, reason: str) -> Promotion:
    """Promote through the gates; the workflow writes who, why and when to the audit chain."""
    from registry.gates import load_gates
    from registry.tracking import mlflow_session
    from registry.workflow import promote_if_gates_pass

    gates = load_gates(settings.config_path("configs/gates.yaml"), name)
    with audit_trail(settings) as audit, mlflow_session(settings.mlflow) as client:
        return promote_if_gates_pass(client, name, approver, gates, reason, audit)


@contextmanager
def audit_trail(settings: Settings) -> Iterator[AuditStore]:
    """The profile's audit store, open while the move is made (the next checkpoint anchors it)."""
    from decisioning.adapters.audit import AuditStore

    store = AuditStore.open(settings.audit.url)
    try:
        yield store
    finally:
        store.close()
