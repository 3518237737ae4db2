"""The one adapter around Feast's store: a ``FeatureStore`` built from the profile's config.

``configs/feast/<profile>.yaml`` names paths under ``RISK_HOME``, which only the settings know, so
the store is built here in code rather than from a ``feature_store.yaml`` on disk. The Feast repo
path is ``RISK_HOME``: the file sources' relative paths (``features/*.parquet``) land there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from feast import FeatureStore, RepoConfig
from sqlalchemy.engine import make_url

from decisioning.adapters.feast.errors import FeatureStoreConfigError, FeatureStoreUnavailable
from decisioning.adapters.feast.history import PaymentHistory, history_backend
from decisioning.adapters.storage import is_remote, register_s3_with_fsspec
from decisioning.core.errors import SettingsError
from decisioning.settings import Settings, expand_variables

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeastConfig:
    """The Feast repo config plus where the streaming payment history lives."""

    repo: dict[str, Any]
    history_backend: str
    history_url: str


def read_feast_config(settings: Settings, env: dict[str, str] | None = None) -> FeastConfig:
    """Read the profile's Feast config with ``${VAR}`` and ``${RISK_HOME}`` filled in."""
    path = settings.config_path(settings.feast.store_config)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise FeatureStoreConfigError(f"Feast store config {path} is missing") from exc
    variables = {**(os.environ if env is None else env), "RISK_HOME": str(settings.home)}
    try:
        values = expand_variables(raw, variables, settings.name)
    except SettingsError as exc:
        raise FeatureStoreConfigError(f"{path}: {exc}") from exc
    if not isinstance(values, dict) or "payment_history" not in values:
        raise FeatureStoreConfigError(f"{path}: expected a mapping with a payment_history section")
    history = values.pop("payment_history")
    return FeastConfig(repo=values, history_backend=history["backend"], history_url=history["url"])


def open_feature_store(settings: Settings, env: dict[str, str] | None = None) -> FeatureStore:
    """A Feast store for the active profile; creates the registry database when it is missing."""
    config = read_feast_config(settings, env)
    registry = config.repo.get("registry", {})
    if registry.get("registry_type") == "sql":
        ensure_database(registry["path"])
    elif not is_remote(registry.get("path", "")):
        Path(settings.home, "feast").mkdir(parents=True, exist_ok=True)
    if is_remote(settings.features_location):
        register_s3_with_fsspec()  # Feast's offline store reads the tables through dask
    try:
        repo_config = RepoConfig(repo_path=settings.home, **config.repo)
    except ValueError as exc:
        raise FeatureStoreConfigError(f"Feast store config: {exc}".splitlines()[0]) from exc
    return FeatureStore(repo_path=str(settings.home), config=repo_config)


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database a SQL registry points at, if it does not exist yet."""
    import psycopg

    target = make_url(url)
    if not target.drivername.startswith("postgresql") or not target.database:
        return
    admin = psycopg.conninfo.make_conninfo(
        host=target.host or "127.0.0.1",
        port=target.port or 5432,
        user=target.username or "postgres",
        password=target.password or "",
        dbname="postgres",
    )
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            found = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
            ).fetchone()
            if found is None:
                connection.execute(f'CREATE DATABASE "{target.database}"')
                logger.info("created Feast registry database %s", target.database)
    except psycopg.OperationalError as exc:
        where = f"{target.host}:{target.port}"
        raise FeatureStoreUnavailable(f"Feast registry at {where} unreachable: {exc}") from exc


def open_payment_history(settings: Settings, env: dict[str, str] | None = None) -> PaymentHistory:
    """The streaming payment history for the active profile, namespaced by the Feast project."""
    config = read_feast_config(settings, env)
    return history_backend(config.history_backend, config.history_url, config.repo["project"])
