"""Where each workload may read and write in S3: one table, read by the stacks and the tests.

A location is a prefix (or one object) that a variable of the `aws` profile points at; a workload
gets exactly the locations it uses. Nothing is ever granted delete: buckets are versioned and an
overwrite keeps its history. Plain Python, no CDK import.
"""

from __future__ import annotations

from enum import Enum


class Location(Enum):
    """A place in S3 and the bucket it lives in; the value is the key prefix (or the key)."""

    # RISK_DATA_URI: uploaded exports (transactions.parquet, ...); holds the next two as well.
    DATA = "data"
    # RISK_FEATURES_URI: feature tables, which are Feast's offline files too.
    FEATURES = "data/features"
    # RISK_REPORTS_URI: drift and outcomes reports (their results go to the operations store).
    REPORTS = "data/monitoring"
    # RISK_FEAST_REGISTRY_URI: one object, rewritten by `features apply` and by materialization.
    FEAST_REGISTRY = "feast/registry.db"
    # The tracking server's --artifacts-destination; clients reach it only through the server.
    MLFLOW_ARTIFACTS = "mlflow"
    # RISK_AUDIT_ANCHOR_URI: signed audit checkpoints (Object Lock, compliance mode).
    AUDIT_ANCHOR = "checkpoints"
    # The feature build's Spark job: the packed virtual environment and the entry file, uploaded
    # by whoever deploys (docs/deploy.md, "The feature build on a Spark cluster").
    SPARK_JOB_CODE = "spark/features-build"

    @property
    def bucket(self) -> str:
        """The DataStack bucket (by construct name) that holds this location."""
        return _BUCKETS[self]

    @property
    def object_pattern(self) -> str:
        """The object keys a grant covers: the one key, or everything under the prefix."""
        return self.value if self is Location.FEAST_REGISTRY else f"{self.value}/*"

    @property
    def list_prefixes(self) -> tuple[str, ...]:
        """The ``s3:prefix`` values a listing of this location may ask for."""
        return (self.value, f"{self.value}/*")


_BUCKETS = {
    Location.DATA: "Data",
    Location.FEATURES: "Data",
    Location.REPORTS: "Data",
    Location.FEAST_REGISTRY: "Data",
    Location.MLFLOW_ARTIFACTS: "Artifacts",
    Location.AUDIT_ANCHOR: "AuditAnchor",
    Location.SPARK_JOB_CODE: "Artifacts",
}


class Access(Enum):
    READ = "read"
    READ_WRITE = "read-write"


READ, READ_WRITE = Access.READ, Access.READ_WRITE
# The workload name of the EMR Serverless execution role (infra/stacks/spark.py).
SPARK_FEATURE_BUILD = "features-build-spark"
# Per workload: the API task, the one-off worker task, the tracking server, each scheduled job,
# and the EMR Serverless execution role of the feature build on Spark.
S3_ACCESS: dict[str, dict[Location, Access]] = {
    # Models come through the tracking server; the checkpointer appends to the anchor.
    "api": {Location.FEAST_REGISTRY: READ, Location.AUDIT_ANCHOR: READ_WRITE},
    # One-off commands: uploads, `features apply`, `audit verify` and a checkpoint by hand.
    "worker": {
        Location.DATA: READ_WRITE,
        Location.FEAST_REGISTRY: READ_WRITE,
        Location.AUDIT_ANCHOR: READ_WRITE,
    },
    "mlflow": {Location.MLFLOW_ARTIFACTS: READ_WRITE},
    # Every job reads the payments (and what lies beside them); each writes only its own output.
    "features-build": {Location.DATA: READ, Location.FEATURES: READ_WRITE},
    # Feast records each materialized interval in its registry.
    "materialize-incremental": {Location.DATA: READ, Location.FEAST_REGISTRY: READ_WRITE},
    "retrain": {Location.DATA: READ, Location.FEAST_REGISTRY: READ},
    "drift": {Location.DATA: READ, Location.REPORTS: READ_WRITE},
    "outcomes": {Location.DATA: READ, Location.REPORTS: READ_WRITE},
    # The same build as `features-build`, on the cluster: the feature tables are Feast's offline
    # files too, so FEATURES is the one place it writes. It reads its code, never writes it.
    SPARK_FEATURE_BUILD: {
        Location.DATA: READ,
        Location.FEATURES: READ_WRITE,
        Location.SPARK_JOB_CODE: READ,
    },
}
