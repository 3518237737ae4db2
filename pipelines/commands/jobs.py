"""``riskctl jobs``: run a scheduled job once, as its scheduled task does, and see when each last
succeeded."""

from __future__ import annotations

from typing import Annotated

import typer

from decisioning.settings import load_settings

# decisioning.adapters.operations.JOB_NAMES, spelled here so --help need not load SQLAlchemy (a
# test keeps the two equal).
JOB_NAMES = ("features-build", "materialize-incremental", "retrain", "drift", "outcomes")

app = typer.Typer(help="Scheduled jobs: run one, list their last successes.", no_args_is_help=True)


@app.command()
def run(
    name: Annotated[str, typer.Argument(help=" | ".join(JOB_NAMES))],
) -> None:
    """Run one job now and record its success in the operations store (nothing on failure)."""
    from pipelines.jobs.scheduled import run_job

    if name not in JOB_NAMES:
        raise typer.BadParameter(f"choose one of {', '.join(JOB_NAMES)}", param_hint="NAME")
    job_run = run_job(load_settings(), name)
    typer.echo(f"{name} succeeded at {job_run.succeeded_at.isoformat()}")
    for key, value in sorted(job_run.summary.items()):
        typer.echo(f"  {key}: {value}")


@app.command("list")
def list_command() -> None:
    """Each job's latest success, or ``never``."""
    from decisioning.adapters.operations import operations_store

    with operations_store(load_settings().operations.url) as store:
        successes = store.last_successes()
    for name in JOB_NAMES:
        when = successes.get(name)
        typer.echo(f"{name:<24} {when.isoformat() if when else 'never'}")
