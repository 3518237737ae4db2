"""What the deployment relies on from the service image: its port, paths, commands and jobs.

The Dockerfile in ``infra/docker`` makes the same promises (``ENTRYPOINT ["riskctl"]``, port 3000);
``tests/infra`` checks that the two agree, so a change to one fails until the other follows. Plain
Python, no CDK import, so those checks stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

API_PORT = 3000
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
# Arguments to the image's entry point (`riskctl`), as in the Dockerfile's CMD.
API_COMMAND = ("serve", "--port", str(API_PORT))
# Where the telemetry collector sidecar listens for OTLP over HTTP; the `aws` profile's default.
OTLP_HTTP_PORT = 4318
COLLECTOR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"


@dataclass(frozen=True)
class ServiceImage:
    """The platform image in ECR, pinned to a tag (never ``latest``)."""

    repository: str
    tag: str


@dataclass(frozen=True)
class ScheduledJob:
    """One offline job the worker runs on an EventBridge schedule."""

    name: str
    schedule: str
    arguments: tuple[str, ...]
    description: str


def scheduled_jobs(data_uri: str, evaluations_uri: str) -> tuple[ScheduledJob, ...]:
    """The worker's jobs: keep the online store fresh, watch drift, score labelled outcomes.

    The URIs are the data and evaluations bucket locations; paths under them are conventions the
    jobs and the runbook share.
    """
    return (
        ScheduledJob(
            name="Materialize",
            schedule="rate(1 hour)",
            arguments=("features", "materialize"),
            description="Materialize Feast features into the online store (ElastiCache Redis)",
        ),
        ScheduledJob(
            name="Drift",
            schedule="cron(0 2 * * ? *)",
            arguments=(
                "monitor",
                "drift",
                "--reference",
                f"{data_uri}/monitoring/reference/transactions.parquet",
                "--current",
                f"{data_uri}/monitoring/current/transactions.parquet",
                "--out",
                f"{evaluations_uri}/drift",
            ),
            description="Daily PSI and embedding drift report against the training reference",
        ),
        ScheduledJob(
            name="Outcomes",
            schedule="cron(0 4 * * ? *)",
            arguments=("monitor", "outcomes", "--out", f"{evaluations_uri}/outcomes"),
            description="Join late labels (chargebacks, confirmations) to past decisions",
        ),
    )
