"""Spark settings per profile (``configs/spark.yaml``) and the one place a session starts.

The offline path runs on Spark when a file outgrows one process: locally on two cores, on a
standalone cluster, or under ``spark-submit`` on a managed cluster, with only the settings
changing. Nothing starts at import time; :func:`spark_session` is entered by an entry point.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyspark.sql import SparkSession

from decisioning.core.errors import SettingsError
from decisioning.settings import PROFILES, expand_variables

SPARK_CONFIG = "spark.yaml"
# Settings every session gets: UTC so timestamps never shift, Parquet timestamps Feast and
# pandas read as microseconds (not Spark's legacy INT96), Arrow for the pandas boundary, and the
# contract's nanosecond Parquet timestamps read as integers (Spark refuses them otherwise).
# The socket wait is Spark's 15 s raised: when the JVM serves a collect to Python (``toPandas``
# with Arrow, which the feature build and Feast's Spark store call) and Python has not connected
# and authenticated within it, the serving thread gives up without completing the result PySpark
# then waits for, so the driver waits forever (seen once on two loaded cores; Spark 4.1's
# SocketAuthServer).
FIXED_CONF = {
    "spark.python.authenticate.socketTimeout": "300s",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


class SparkSettings(BaseModel):
    """Where Spark runs and with what; empty values are left to ``spark-submit`` or defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    master: str = "local[2]"
    app_name: str = "risk-features"
    driver_memory: str = ""
    executor_memory: str = ""
    executor_cores: int | None = Field(None, ge=1)
    shuffle_partitions: int = Field(8, ge=1)
    ui: bool = False
    conf: dict[str, str] = {}

    def spark_conf(self) -> dict[str, str]:
        """The settings as Spark configuration keys, ours last so nothing overrides them."""
        conf = {
            "spark.app.name": self.app_name,
            "spark.driver.memory": self.driver_memory,
            "spark.executor.memory": self.executor_memory,
            "spark.executor.cores": str(self.executor_cores or ""),
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.ui.enabled": str(self.ui).lower(),
            **self.conf,
            **FIXED_CONF,
        }
        if self.master:
            conf["spark.master"] = self.master
        return {key: value for key, value in conf.items() if value}


def load_spark_settings(
    config_dir: Path, profile: str, env: Mapping[str, str] | None = None
) -> SparkSettings:
    """The profile's section of ``configs/spark.yaml``, environment variables filled in."""
    if profile not in PROFILES:
        raise SettingsError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    path = Path(config_dir) / SPARK_CONFIG
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise SettingsError(f"Spark settings file {path} is missing") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get(profile), dict):
        raise SettingsError(f"{path} has no section for profile {profile!r}")
    values = expand_variables(raw[profile], dict(os.environ if env is None else env), profile)
    try:
        return SparkSettings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"{path} [{profile}]: {where}: {first['msg']}") from exc


@contextmanager
def spark_session(settings: SparkSettings) -> Iterator[SparkSession]:
    """A session with the settings, stopped on exit unless it was already running.

    Under ``spark-submit`` a session may exist before the job starts; it is reused, and the
    cluster, not this job, decides when it ends.
    """
    existing = SparkSession.getActiveSession()
    if settings.master.startswith("local"):
        # Local Python workers run this interpreter (the venv's pandas reads times on them);
        # PySpark takes it only from the environment. A cluster's come from its settings.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in settings.spark_conf().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        yield session
    finally:
        if existing is None:
            session.stop()
