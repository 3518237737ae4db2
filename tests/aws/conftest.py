"""The ``aws`` profile against local servers: moto's S3 server, PostgreSQL and Redis.

moto's ``ThreadedMotoServer`` runs in this process on a free port, once per session; each test
gets buckets, PostgreSQL databases and a Feast project (its Redis key prefix) of its own, and
drops them afterwards. ``RISK_HOME`` is an empty folder the tests check stays empty of anything
but caches: in AWS a task's disk is gone when it stops.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg
import pytest
import redis
from moto.server import ThreadedMotoServer

from decisioning.settings import Settings, load_settings
from tests.support.served import free_port

REGION = "eu-west-2"
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "127.0.0.1:6379"
ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.aws)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on localhost, for the whole session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass(frozen=True)
class AwsWorld:
    """One module's buckets, databases, Feast project and empty home, with the env naming them."""

    env: dict[str, str]
    home: Path
    config_dir: Path
    data_bucket: str
    project: str

    def settings(self) -> Settings:
        return load_settings(self.env)


@pytest.fixture
def aws_world(s3_endpoint: str, tmp_path: Path) -> Iterator[AwsWorld]:
    run = uuid.uuid4().hex[:8]
    scratch = tmp_path
    home, config_dir = scratch / "home", scratch / "configs"
    home.mkdir()
    # A copy, so the test can show that nothing in the aws profile writes to configs/.
    shutil.copytree(ROOT / "configs", config_dir)
    data_bucket, artifacts_bucket = f"risk-data-{run}", f"risk-artifacts-{run}"
    databases = {kind: f"risk_aws_{run}_{kind}" for kind in ("audit", "mlflow", "operations")}
    project = f"aws_test_{run}"
    env = {
        "RISK_ENV": "aws",
        "RISK_HOME": str(home),
        "RISK_CONFIG_DIR": str(config_dir),
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "RISK_DATA_URI": f"s3://{data_bucket}/data",
        "RISK_ARTIFACT_URI": f"s3://{artifacts_bucket}/mlflow",
        "RISK_FEAST_REGISTRY_URI": f"s3://{data_bucket}/feast/registry.db",
        "RISK_FEAST_PROJECT": project,
        "RISK_FEAST_REDIS": REDIS,
        "RISK_FEAST_REDIS_TLS": "false",
        "RISK_REDIS_URL": f"redis://{REDIS}/0",
        "RISK_MLFLOW_URL": _database_url(databases["mlflow"]),
        "RISK_AUDIT_URL": _database_url(databases["audit"]),
        "RISK_AUDIT_ANCHOR_URI": f"s3://{data_bucket}/anchor",
        "RISK_OPERATIONS_URL": _database_url(databases["operations"]),
        "OPENSEARCH_URL": "http://127.0.0.1:9",
        "RISK_TRACE_EXPORTER": "none",
    }
    with pytest.MonkeyPatch.context() as environment:
        for name, value in env.items():
            environment.setenv(name, value)
        s3 = boto3.client("s3")
        for bucket in (data_bucket, artifacts_bucket):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        _create_databases(databases.values())
        try:
            yield AwsWorld(env, home, config_dir, data_bucket, project)
        finally:
            _drop_databases(databases.values())
            _delete_redis_keys(project)


def _database_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _create_databases(names: Iterable[str]) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for name in names:
            connection.execute(f'CREATE DATABASE "{name}"')


def _drop_databases(names: Iterable[str]) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _delete_redis_keys(project: str) -> None:
    """Feast's keys end with the project's name; the payment histories start with it."""
    client = redis.Redis.from_url(f"redis://{REDIS}/0")
    keys = list(client.scan_iter(match=f"*{project}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder``, relative to it."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
