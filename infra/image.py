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
# The Prometheus job that scrapes the API (collector sidecar, local Prometheus, `up` alerts).
METRICS_JOB = "risk-service"
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


# The MLflow tracking server (`mlflow server`, from the same image) and its listener on the ALB.
MLFLOW_PORT = 5000
MLFLOW_HEALTH_PATH = "/health"
# Scheduled jobs are `riskctl jobs run NAME`; each records its last success for Prometheus.
JOB_COMMAND = ("jobs", "run")
HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class ScheduledJob:
    """One offline job, run as its own Fargate task on an EventBridge schedule."""

    name: str
    schedule: str
    # How often it is meant to succeed: an alert fires once twice that has passed without one.
    period_seconds: int
    description: str

    @property
    def command(self) -> tuple[str, ...]:
        """Arguments to the image's entry point (`riskctl`)."""
        return (*JOB_COMMAND, self.name)

    @property
    def title(self) -> str:
        """The name in CamelCase, for construct ids and alert names (``features-build``:
        ``FeaturesBuild``)."""
        return "".join(part.capitalize() for part in self.name.split("-"))


# Times are UTC. The daily build runs first, drift and outcomes after it, the weekly retrain last
# on Sunday, so each reads the tables built that night.
SCHEDULED_JOBS = (
    ScheduledJob(
        name="features-build",
        schedule="cron(0 1 * * ? *)",
        period_seconds=DAY,
        description="Build the feature tables from the last built day onwards",
    ),
    ScheduledJob(
        name="materialize-incremental",
        schedule="rate(1 hour)",
        period_seconds=HOUR,
        description="Materialize new feature rows into the online store (ElastiCache Redis)",
    ),
    ScheduledJob(
        name="drift",
        schedule="cron(0 2 * * ? *)",
        period_seconds=DAY,
        description="Daily PSI and embedding drift against the training reference",
    ),
    ScheduledJob(
        name="outcomes",
        schedule="cron(0 4 * * ? *)",
        period_seconds=DAY,
        description="Join late labels (chargebacks, confirmations) to past decisions",
    ),
    ScheduledJob(
        name="retrain",
        schedule="cron(0 5 ? * SUN *)",
        period_seconds=7 * DAY,
        description="Weekly retrain to @challenger with its gates; promotion stays a human step",
    ),
)
