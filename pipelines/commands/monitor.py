"""``riskctl monitor``: drift between two windows of events, and decisions against late labels.

Both are reports, not gates: they exit 0 whatever they find (alerts fire on the published
scores), and non-zero only when the inputs cannot be read or compared.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from decisioning.events import utc_now
from decisioning.metrics import FLAG_QUALITY_FILE, drift_scores_file
from decisioning.settings import Settings, load_settings
from pipelines.commands.reading import DateFormat, Timezone, reading_config

app = typer.Typer(help="Monitor drift and outcomes; reports, never gates.", no_args_is_help=True)
console = Console()
EMBEDDING_SAMPLE = 1000


@app.command()
def drift(
    reference: Annotated[Path, typer.Option(help="reference window: CSV or Parquet events")],
    current: Annotated[Path, typer.Option(help="current window, same kind as the reference")],
    out: Annotated[
        Path | None, typer.Option(help="report folder (default RISK_HOME/monitoring/drift/<time>)")
    ] = None,
    timezone: Timezone = None,
    date_format: DateFormat = None,
) -> None:
    """PSI per structured feature and, for texts, a test on embeddings; one verdict per line."""
    from pipelines.ingest import conform, read_table
    from pipelines.monitoring.drift import (
        feature_frames,
        matching_kind,
        sample_rows,
        scores_document,
    )
    from pipelines.monitoring.evidently_reports import drift_report, save_snapshot

    settings = load_settings()
    # Structure and types only: a quality gate would refuse the very shifts this reports.
    ref_raw, cur_raw = read_table(reference), read_table(current)
    kind = matching_kind(ref_raw, cur_raw)
    reading = reading_config(settings, timezone, date_format)
    ref_events, cur_events = conform(ref_raw, kind, reading), conform(cur_raw, kind, reading)
    embeddings = None
    if kind == "texts":
        ref_events = sample_rows(ref_events, EMBEDDING_SAMPLE)
        cur_events = sample_rows(cur_events, EMBEDDING_SAMPLE)
        embeddings = _embeddings(settings, ref_events, cur_events)
    frames = feature_frames(ref_events, cur_events, kind)
    with console.status(f"comparing {len(ref_events):,} and {len(cur_events):,} {kind}"):
        results, snapshot = drift_report(frames, embeddings)
    folder = out or _run_folder(settings, "drift")
    written = save_snapshot(snapshot, folder)
    document = {
        **scores_document(kind, results),
        "reference": str(reference),
        "current": str(current),
        "generated_at": utc_now().isoformat(),
    }
    written.append(_write_json(folder / "drift_scores.json", document))
    _write_json(settings.home / drift_scores_file(kind), document)
    for result in results:
        typer.echo(result.verdict())
    typer.echo(f"report: {', '.join(str(path) for path in written)}")


@app.command()
def outcomes(
    labels: Annotated[Path, typer.Option(help="transactions with label and label_available_at")],
    out: Annotated[
        Path | None,
        typer.Option(help="report folder (default RISK_HOME/monitoring/outcomes/<time>)"),
    ] = None,
    as_of: Annotated[
        datetime | None, typer.Option(help="count labels known by this UTC time (default now)")
    ] = None,
    timezone: Timezone = None,
    date_format: DateFormat = None,
) -> None:
    """Precision and recall of review and decline, by category and customer cohort."""
    import pandas as pd

    from decisioning.audit import AuditStore
    from pipelines.ingest import load_events
    from pipelines.monitoring.outcomes import decision_rows, flag_quality, labelled_decisions

    settings = load_settings()
    moment = pd.Timestamp(as_of or utc_now())
    moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment.tz_convert(UTC)
    store = AuditStore.open(settings.audit.url)
    try:
        decisions = decision_rows(record.body for record in store.records(kind="decision"))
    finally:
        store.close()
    joined = labelled_decisions(
        decisions,
        load_events(labels, "transactions", reading_config(settings, timezone, date_format)),
        moment,
        _vulnerable(labels),
    )
    rows = flag_quality(joined)
    document = {
        "as_of": moment.isoformat(),
        "labels": str(labels),
        "decisions": len(decisions),
        "labelled_decisions": len(joined),
        "rows": rows,
    }
    folder = out or _run_folder(settings, "outcomes")
    report = _write_json(folder / "outcomes.json", document)
    _write_json(settings.home / FLAG_QUALITY_FILE, document)
    console.print(_table(rows))
    typer.echo(
        f"{len(joined):,} of {len(decisions):,} payment decisions labelled; report: {report}"
    )


def _embeddings(settings: Settings, reference: Any, current: Any) -> tuple[Any, Any]:
    """Embed both windows' texts with the one embeddings implementation (cached by content)."""
    from decisioning.conduct.embeddings import Embedder, build_embedding_cache
    from pipelines.monitoring.drift import embedding_frame

    embedder = Embedder(build_embedding_cache(settings.embeddings_cache))
    with console.status("embedding texts"):
        vectors = embedder.embed([*reference["text"], *current["text"]])
    return embedding_frame(vectors[: len(reference)]), embedding_frame(vectors[len(reference) :])


def _vulnerable(labels: Path) -> frozenset[str] | None:
    """The vulnerable-customer cohort from ``customers.parquet`` beside the labels, if there."""
    import pandas as pd

    from pipelines.monitoring.errors import OutcomeInputError

    path = labels.parent / "customers.parquet"
    if not path.is_file():
        return None
    customers = pd.read_parquet(path)
    if not {"customer_id", "vulnerable"} <= set(customers.columns):
        raise OutcomeInputError(f"{path}: needs the columns customer_id and vulnerable")
    flagged = customers[customers["vulnerable"].fillna(False).astype(bool)]
    return frozenset(flagged["customer_id"].astype(str))


def _run_folder(settings: Settings, job: str) -> Path:
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    return settings.home / "monitoring" / job / stamp


def _write_json(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    return path


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="flag precision and recall")
    for column in ("action", "category", "cohort", "flagged", "fraud", "precision", "recall"):
        table.add_column(
            column, justify="left" if column in ("action", "category", "cohort") else "right"
        )
    for row in rows:
        table.add_row(
            *(str(row[c]) for c in ("action", "category", "cohort", "flagged", "fraud")),
            *(_share(row[c]) for c in ("precision", "recall")),
        )
    return table


def _share(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "—"
