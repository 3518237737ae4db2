"""The monitoring runs as functions of settings and locations: what ``riskctl monitor`` and the
scheduled ``drift`` and ``outcomes`` jobs call.

A run writes its report for people under the profile's reports location (local or S3) and its
result for machines to the operations store, where every service task reads the latest one and
publishes it (``decisioning.telemetry.stored_results``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from decisioning.adapters import storage
from decisioning.adapters.operations import FLAG_QUALITY_RESULT, drift_result_name, operations_store
from decisioning.adapters.storage import Location
from decisioning.core.events import utc_now
from decisioning.settings import Settings
from pipelines.ingest import ReadingConfig, conform, load_events, read_table
from pipelines.monitoring.drift import (
    FeatureDrift,
    feature_frames,
    matching_kind,
    sample_rows,
    scores_document,
)
from pipelines.monitoring.errors import OutcomeInputError
from pipelines.monitoring.outcomes import decision_rows, flag_quality, labelled_decisions

logger = logging.getLogger(__name__)
EMBEDDING_SAMPLE = 1000


@dataclass(frozen=True)
class DriftRun:
    results: list[FeatureDrift]
    document: dict[str, Any]
    written: list[str]


@dataclass(frozen=True)
class OutcomesRun:
    document: dict[str, Any]
    report: str


def run_drift(
    settings: Settings,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    reading: ReadingConfig,
    out: Location | None = None,
    sources: tuple[str, str] = ("", ""),
) -> DriftRun:
    """Compare two windows of raw events, write the report and store the scores.

    Structure and types only: a quality gate would refuse the very shifts this reports.
    """
    from pipelines.monitoring.evidently_reports import drift_report, save_snapshot

    kind = matching_kind(reference, current)
    ref_events, cur_events = conform(reference, kind, reading), conform(current, kind, reading)
    embeddings = None
    if kind == "texts":
        ref_events = sample_rows(ref_events, EMBEDDING_SAMPLE)
        cur_events = sample_rows(cur_events, EMBEDDING_SAMPLE)
        embeddings = _embeddings(settings, ref_events, cur_events)
    frames = feature_frames(ref_events, cur_events, kind)
    logger.info("comparing %d and %d %s", len(ref_events), len(cur_events), kind)
    results, snapshot = drift_report(frames, embeddings)
    document = {
        **scores_document(kind, results),
        "reference": sources[0],
        "current": sources[1],
        "generated_at": utc_now().isoformat(),
    }
    folder = storage.as_location(out) if out is not None else run_folder(settings, "drift")
    with tempfile.TemporaryDirectory(prefix="drift-report-") as scratch:
        written = [_copy(path, folder) for path in save_snapshot(snapshot, Path(scratch))]
    written.append(write_json(storage.join(folder, "drift_scores.json"), document))
    with operations_store(settings.operations.url) as store:
        store.save_result(drift_result_name(kind), document)
    return DriftRun(results, document, written)


def run_drift_on_files(
    settings: Settings,
    reference: Location,
    current: Location,
    reading: ReadingConfig,
    out: Location | None = None,
) -> DriftRun:
    """:func:`run_drift` on two event files (local or ``s3://``)."""
    sources = (storage.as_location(reference), storage.as_location(current))
    return run_drift(
        settings, read_table(reference), read_table(current), reading, out, sources=sources
    )


def run_outcomes(
    settings: Settings,
    labels: Location,
    as_of: datetime,
    reading: ReadingConfig,
    out: Location | None = None,
) -> OutcomesRun:
    """Precision and recall of the audited decisions against the labels known at ``as_of``."""
    from decisioning.adapters.audit import AuditStore

    moment = pd.Timestamp(as_of)
    moment = moment.tz_localize(UTC) if moment.tzinfo is None else moment.tz_convert(UTC)
    audit = AuditStore.open(settings.audit.url)
    try:
        decisions = decision_rows(record.body for record in audit.records(kind="decision"))
    finally:
        audit.close()
    labels_location = storage.as_location(labels)
    joined = labelled_decisions(
        decisions,
        load_events(labels_location, "transactions", reading),
        moment,
        vulnerable_beside(labels_location),
    )
    document = {
        "as_of": moment.isoformat(),
        "labels": labels_location,
        "decisions": len(decisions),
        "labelled_decisions": len(joined),
        "rows": flag_quality(joined),
    }
    folder = storage.as_location(out) if out is not None else run_folder(settings, "outcomes")
    report = write_json(storage.join(folder, "outcomes.json"), document)
    with operations_store(settings.operations.url) as store:
        store.save_result(FLAG_QUALITY_RESULT, document)
    return OutcomesRun(document, report)


def vulnerable_beside(labels: Location) -> frozenset[str] | None:
    """The vulnerable-customer cohort from ``customers.parquet`` beside the labels, if there."""
    path = storage.join(storage.parent_of(labels), "customers.parquet")
    if not storage.is_file(path):
        return None
    customers = storage.read_parquet(path)
    if not {"customer_id", "vulnerable"} <= set(customers.columns):
        raise OutcomeInputError(f"{path}: needs the columns customer_id and vulnerable")
    flagged = customers[customers["vulnerable"].fillna(False).astype(bool)]
    return frozenset(flagged["customer_id"].astype(str))


def run_folder(settings: Settings, job: str) -> str:
    """``<reports location>/<job>/<UTC time>``: one folder per run."""
    return storage.join(settings.reports_location, job, utc_now().strftime("%Y%m%dT%H%M%SZ"))


def write_json(location: Location, document: dict[str, Any]) -> str:
    return storage.write_text(location, json.dumps(document, indent=2, sort_keys=True, default=str))


def _copy(path: Path, folder: str) -> str:
    return storage.upload(path, storage.join(folder, path.name))


def _embeddings(
    settings: Settings, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Embed both windows' texts with the one embeddings implementation (cached by content)."""
    from decisioning.adapters.embeddings import build_embedding_cache, load_minilm_encoder
    from decisioning.conduct.embeddings import Embedder
    from pipelines.monitoring.drift import embedding_frame

    embedder = Embedder(
        build_embedding_cache(settings.embeddings_cache), load_encoder=load_minilm_encoder
    )
    vectors = embedder.embed([*reference["text"], *current["text"]])
    return embedding_frame(vectors[: len(reference)]), embedding_frame(vectors[len(reference) :])
