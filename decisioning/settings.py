"""Settings: one frozen, strict model built from a profile in ``configs/profiles`` and the env.

``RISK_ENV`` picks the profile (``local`` by default); ``RISK_HOME`` is where local state lives
(``./var`` by default). Profile values may name environment variables as ``${NAME}`` or
``${NAME:-default}``, which is how endpoints and secrets reach the settings without being written
in a file. Nothing here runs at import time: call :func:`load_settings` from an entry point.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from decisioning.adapters.storage import is_remote
from decisioning.core.errors import SettingsError

PROFILES = ("local", "services", "aws")
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>(?:[^{}]|\$\{[^}]*\})*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeastSettings(_Strict):
    store_config: str
    online_store: Literal["sqlite", "redis"]


class MlflowSettings(_Strict):
    tracking_uri: str
    artifact_root: str


class AuditAnchorSettings(_Strict):
    """Where signed checkpoints of the chain's head go, how often, and with which key.

    ``signing_key`` is an Ed25519 private key in PEM, from the environment's secrets and never
    from the database. ``generated_key_dir`` is set by the ``local`` profile only: without a key,
    one is made there on first use. ``public_keys`` is a ``.pub`` file, a folder of them, or PEM
    text: every key a checkpoint may be signed with, retired ones included.
    """

    kind: Literal["file", "s3"]
    location: str
    signing_key: SecretStr | None = None
    generated_key_dir: str | None = None
    public_keys: str = ""
    every_records: int = Field(default=1000, ge=1)
    every_seconds: float = Field(default=60.0, gt=0)
    in_service: bool = True


class AuditSettings(_Strict):
    """``url`` is the service role's (INSERT and SELECT only); ``owner_url`` runs migrations."""

    url: str
    owner_url: str | None = None
    anchor: AuditAnchorSettings


class EvidenceSettings(_Strict):
    backend: Literal["sqlite", "opensearch"]
    url: str


class CacheSettings(_Strict):
    """Where message embeddings are kept between calls. In Redis, shared with Feast's online
    store, each vector expires after ``ttl_seconds`` (None: never), so the cache of every distinct
    message ever seen does not grow for good beside the features; its keys start with ``prefix``.
    """

    backend: Literal["sqlite", "redis"]
    url: str
    ttl_seconds: int | None = Field(default=None, gt=0)
    prefix: str = Field(default="emb:", min_length=1)


class OperationsSettings(_Strict):
    """The store of job runs and monitoring results every task reads (``adapters.operations``):
    SQLite in ``local``, the PostgreSQL ``operations`` schema otherwise."""

    url: str


class ObservabilitySettings(_Strict):
    trace_exporter: Literal["none", "console", "otlp"]
    otlp_endpoint: str = ""


class Settings(_Strict):
    """Everything an entry point needs to know about where things are."""

    name: Literal["local", "services", "aws"]
    home: Path
    config_dir: Path
    data_dir: str
    features_dir: str = "features"
    reports_dir: str = "monitoring"
    feast: FeastSettings
    mlflow: MlflowSettings
    audit: AuditSettings
    evidence: EvidenceSettings
    embeddings_cache: CacheSettings
    observability: ObservabilitySettings
    operations: OperationsSettings
    api_keys: tuple[SecretStr, ...] = ()

    def config_path(self, relative: str) -> Path:
        """A file under ``configs/``, given as the profile names it (``configs/...``)."""
        path = Path(relative)
        if path.parts and path.parts[0] == "configs":
            path = Path(*path.parts[1:])
        return self.config_dir / path

    @property
    def data_path(self) -> Path:
        """The data folder on this machine; a profile keeping its data in S3 has none."""
        if is_remote(self.data_dir):
            raise SettingsError(f"profile {self.name!r} keeps its data at {self.data_dir}")
        path = Path(self.data_dir)
        return path if path.is_absolute() else self.home / path

    @property
    def data_location(self) -> str:
        """Where event data is: a local path or an ``s3://`` URI (``adapters.storage``)."""
        return self._location(self.data_dir)

    @property
    def features_location(self) -> str:
        """Where ``features build`` writes the feature tables the Feast sources read."""
        return self._location(self.features_dir)

    @property
    def reports_location(self) -> str:
        """Where monitoring jobs write their reports (HTML and JSON, for people)."""
        return self._location(self.reports_dir)

    def _location(self, value: str) -> str:
        if is_remote(value) or Path(value).is_absolute():
            return value
        return str(self.home / value)


def expand_variables(value: object, env: Mapping[str, str], profile: str) -> object:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string of a parsed YAML value."""
    if isinstance(value, dict):
        return {key: expand_variables(item, env, profile) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_variables(item, env, profile) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return str(expand_variables(default, env, profile))
        raise SettingsError(f"profile {profile!r} needs the environment variable {name}")

    return _VARIABLE.sub(substitute, value)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings for ``RISK_ENV`` from its profile and the environment."""
    env = dict(os.environ if env is None else env)
    profile = env.get("RISK_ENV", "local")
    if profile not in PROFILES:
        raise SettingsError(f"unknown RISK_ENV {profile!r}; choose one of {', '.join(PROFILES)}")
    config_dir = Path(env.get("RISK_CONFIG_DIR", DEFAULT_CONFIG_DIR)).resolve()
    home = Path(env.get("RISK_HOME", "var")).resolve()
    env["RISK_HOME"] = str(home)
    path = config_dir / "profiles" / f"{profile}.yaml"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise SettingsError(f"profile file {path} is missing") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"profile file {path} is not a mapping")
    values = expand_variables(raw, env, profile)
    assert isinstance(values, dict)
    keys = tuple(SecretStr(k.strip()) for k in env.get("RISK_API_KEYS", "").split(",") if k.strip())
    try:
        return Settings(home=home, config_dir=config_dir, api_keys=keys, **values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"profile {profile!r}: {where}: {first['msg']}") from exc
