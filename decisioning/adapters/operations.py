"""The operations store: when each scheduled job last succeeded, and the latest monitoring results.

Jobs run as separate tasks on disks that vanish with them, and the service runs as several tasks
with disks of their own, so what one job learns (a drift score, a flag precision, that it ran)
must sit where every task can read it: the PostgreSQL ``operations`` schema (SQLite in the
``local`` profile). Rows are only ever added; the latest row of a job or a result is the one that
counts, so two tasks writing at once never lose each other's row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url

from decisioning.core.errors import SettingsError
from decisioning.core.events import utc_now

logger = logging.getLogger(__name__)

SCHEMA = "operations"
# The scheduled jobs of ``riskctl jobs run NAME`` (pipelines.jobs), one gauge series each.
JOB_NAMES = ("features-build", "materialize-incremental", "retrain", "drift", "outcomes")

_metadata = MetaData(schema=SCHEMA)
job_runs = Table(
    "job_runs",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False, index=True),
    Column("succeeded_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False),
)
monitoring_results = Table(
    "monitoring_results",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, index=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("document", Text, nullable=False),
)


def drift_result_name(kind: str) -> str:
    """One result per kind of events, so a run on payments never hides the last one on texts."""
    return f"drift_scores_{kind}"


FLAG_QUALITY_RESULT = "flag_quality"


@dataclass(frozen=True)
class JobRun:
    job: str
    succeeded_at: datetime
    summary: dict[str, Any]


class OperationsStore:
    """Job runs and monitoring results in one database; open with :meth:`open`, then close."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> OperationsStore:
        """Connect, creating the schema and tables on first use (PostgreSQL database too)."""
        if not url:
            raise SettingsError("no operations store: set RISK_OPERATIONS_URL")
        target = make_url(url)
        if target.drivername.startswith("postgresql"):
            from decisioning.adapters.feast.store import ensure_database

            ensure_database(url)
            engine = create_engine(url, pool_pre_ping=True)
            with engine.begin() as connection:
                connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        else:  # SQLite has no schemas: the tables go in the file's only one
            if target.database and target.database != ":memory:":
                Path(target.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url).execution_options(schema_translate_map={SCHEMA: None})
        _metadata.create_all(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def record_success(
        self, job: str, summary: Mapping[str, Any], at: datetime | None = None
    ) -> JobRun:
        """Record that ``job`` succeeded (now by default), with what it did."""
        run = JobRun(job, at or utc_now(), dict(summary))
        with self.engine.begin() as connection:
            connection.execute(
                job_runs.insert().values(
                    job=run.job,
                    succeeded_at=run.succeeded_at,
                    summary=json.dumps(run.summary, sort_keys=True, default=str),
                )
            )
        return run

    def last_success(self, job: str) -> JobRun | None:
        """The latest success of ``job``, or None if it never succeeded."""
        query = select(job_runs).where(job_runs.c.job == job).order_by(job_runs.c.id.desc())
        with self.engine.connect() as connection:
            row = connection.execute(query.limit(1)).mappings().first()
        if row is None:
            return None
        return JobRun(row["job"], _aware(row["succeeded_at"]), json.loads(row["summary"]))

    def last_successes(self) -> dict[str, datetime]:
        """Per job that ever succeeded, the time of its latest success."""
        query = select(job_runs.c.job, func.max(job_runs.c.succeeded_at)).group_by(job_runs.c.job)
        with self.engine.connect() as connection:
            return {job: _aware(at) for job, at in connection.execute(query)}

    def save_result(
        self, name: str, document: Mapping[str, Any], at: datetime | None = None
    ) -> None:
        """Store a monitoring result as the latest of its name."""
        with self.engine.begin() as connection:
            connection.execute(
                monitoring_results.insert().values(
                    name=name,
                    recorded_at=at or utc_now(),
                    document=json.dumps(dict(document), sort_keys=True, default=str),
                )
            )

    def latest_result(self, name: str) -> dict[str, Any] | None:
        """The latest result of that name, or None if none was stored."""
        query = (
            select(monitoring_results.c.document)
            .where(monitoring_results.c.name == name)
            .order_by(monitoring_results.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            document = connection.execute(query).scalar()
        if document is None:
            return None
        value = json.loads(document)
        return value if isinstance(value, dict) else None


@contextmanager
def operations_store(url: str) -> Iterator[OperationsStore]:
    """An open store for the block, closed after it."""
    store = OperationsStore.open(url)
    try:
        yield store
    finally:
        store.close()


def _aware(moment: datetime) -> datetime:
    """SQLite gives times back without their zone; every time stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
