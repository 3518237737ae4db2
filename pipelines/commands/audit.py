"""``riskctl audit``: verify the hash chain and export decisions for reviewers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from decisioning.audit import AuditStore

from decisioning.settings import load_settings

app = typer.Typer(help="Verify, replay and export the audit trail.", no_args_is_help=True)
console = Console()


def open_store() -> AuditStore:
    from decisioning.audit import AuditStore  # SQLAlchemy and Alembic load on use

    return AuditStore.open(load_settings().audit.url)


@app.command()
def verify() -> None:
    """Recompute the whole chain; name the first broken row and exit 1 if there is one."""
    store = open_store()
    with console.status("verifying the audit chain"):
        report = store.verify()
    if not report.ok:
        print(
            f"riskctl: audit chain broken at row {report.first_broken_seq} "
            f"({report.first_broken_id}): {report.reason}; "
            f"{report.checked} rows before it verified",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    console.print(f"audit chain intact: {report.checked:,} records verified", highlight=False)


@app.command()
def replay(decision_id: Annotated[str, typer.Argument(help="the decision to recompute")]) -> None:
    """Recompute a decision from what it stored; print every difference and exit 1 if any."""
    from decisioning.serving import build_engine

    with console.status("loading the models the decision names"):
        engine = build_engine(load_settings())
    try:
        report = engine.replay(decision_id)
    except LookupError as exc:
        print(f"riskctl: {exc.args[0]}", file=sys.stderr)
        raise typer.Exit(1) from exc
    if report.identical:
        console.print(
            f"decision {decision_id} replayed: identical "
            f"(action, score, category, reasons, policy version)",
            highlight=False,
        )
        return
    for field, (stored, recomputed) in report.differences.items():
        console.print(f"{field}: stored {stored!r}, recomputed {recomputed!r}", highlight=False)
    print(f"riskctl: decision {decision_id} differs on replay", file=sys.stderr)
    raise typer.Exit(1)


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="a .parquet or .jsonl file")],
    kind: Annotated[str, typer.Option(help="record kind to export")] = "decision",
) -> None:
    """Write records as Parquet or JSON lines, one row per record with its hashes."""
    import pandas as pd

    rows = [
        {
            "seq": record.seq,
            "record_id": record.record_id,
            "recorded_at": record.recorded_at,
            "row_hash": record.row_hash,
            "prev_hash": record.prev_hash,
            **{key: _cell(value) for key, value in record.body.items()},
        }
        for record in open_store().records(kind=kind)
    ]
    frame = pd.DataFrame(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    elif out.suffix in (".jsonl", ".json"):
        frame.to_json(out, orient="records", lines=True)
    else:
        raise typer.BadParameter("use a .parquet or .jsonl file", param_hint="--out")
    console.print(f"exported {len(frame):,} {kind} records to {out}", highlight=False)


def _cell(value: object) -> object:
    """Nested values become JSON text so every row has the same flat columns."""
    import json

    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
