"""Per-environment sizing and safety settings: what makes prod stricter than dev lives here only."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs


@dataclass(frozen=True)
class SparkCluster:
    """The EMR Serverless application the feature build may run on (ADR 0011, docs/deploy.md).

    Capacities are EMR Serverless's own strings. The maximum bounds every job running at once, so
    a build asking for more workers waits for capacity instead of running up the bill.
    """

    max_cpu: str = "64 vCPU"
    max_memory: str = "256 GB"
    max_disk: str = "1000 GB"
    # Started by the first job run; stopped (and no longer billed) after this long without one.
    idle_minutes: int = 15


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between dev, staging and prod; the stacks read nothing else."""

    name: str
    vpc_cidr: str
    nat_gateways: int
    multi_az: bool
    deletion_protection: bool
    keep_data_on_delete: bool
    log_retention: logs.RetentionDays
    database_instance_type: str
    database_storage_gib: int
    database_backup_days: int
    cache_node_type: str
    cache_replicas: int
    cache_snapshot_days: int
    search_instance_type: str
    search_data_nodes: int
    search_master_nodes: int
    search_volume_gib: int
    api_cpu: int
    api_memory_mib: int
    api_min_tasks: int
    api_max_tasks: int
    api_requests_per_task_minute: int
    api_rate_limit_per_second: int
    worker_cpu: int
    worker_memory_mib: int
    # MLflow tracking server tasks (stateless: runs in PostgreSQL, artifacts in S3).
    tracking_tasks: int
    # How long each audit checkpoint stays locked (S3 Object Lock, compliance mode: nobody,
    # the account root included, can delete or overwrite it before then).
    audit_anchor_retention_days: int
    # The managed Spark cluster for the feature build: None (the default) creates nothing.
    spark_cluster: SparkCluster | None = None

    def __post_init__(self) -> None:
        # Multi-AZ needs a standby somewhere else: a cache replica and a search node per zone.
        if self.multi_az and (self.cache_replicas < 1 or self.search_data_nodes % 2):
            raise ValueError(
                f"{self.name}: multi-AZ needs a cache replica and an even number of search nodes"
            )

    @property
    def stack_prefix(self) -> str:
        return f"risk-{self.name}"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """What CloudFormation does with stateful resources when they leave the template."""
        return RemovalPolicy.RETAIN if self.keep_data_on_delete else RemovalPolicy.DESTROY

    @property
    def database_removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.SNAPSHOT if self.keep_data_on_delete else RemovalPolicy.DESTROY


DEV = EnvironmentConfig(
    name="dev",
    vpc_cidr="10.10.0.0/16",
    nat_gateways=1,
    multi_az=False,
    deletion_protection=False,
    keep_data_on_delete=False,
    log_retention=logs.RetentionDays.TWO_WEEKS,
    database_instance_type="t4g.medium",
    database_storage_gib=20,
    database_backup_days=1,
    cache_node_type="cache.t4g.small",
    cache_replicas=0,
    cache_snapshot_days=1,
    search_instance_type="t3.medium.search",
    search_data_nodes=1,
    search_master_nodes=0,
    search_volume_gib=20,
    api_cpu=1024,
    api_memory_mib=4096,
    api_min_tasks=1,
    api_max_tasks=2,
    api_requests_per_task_minute=600,
    api_rate_limit_per_second=50,
    worker_cpu=2048,
    worker_memory_mib=8192,
    tracking_tasks=1,
    audit_anchor_retention_days=1,
)

STAGING = EnvironmentConfig(
    name="staging",
    vpc_cidr="10.20.0.0/16",
    nat_gateways=1,
    multi_az=True,
    deletion_protection=False,
    keep_data_on_delete=True,
    log_retention=logs.RetentionDays.THREE_MONTHS,
    database_instance_type="m7g.large",
    database_storage_gib=50,
    database_backup_days=7,
    cache_node_type="cache.m7g.large",
    cache_replicas=1,
    cache_snapshot_days=3,
    search_instance_type="m6g.large.search",
    search_data_nodes=2,
    search_master_nodes=0,
    search_volume_gib=50,
    api_cpu=2048,
    api_memory_mib=8192,
    api_min_tasks=2,
    api_max_tasks=4,
    api_requests_per_task_minute=1200,
    api_rate_limit_per_second=200,
    worker_cpu=4096,
    worker_memory_mib=16384,
    tracking_tasks=1,
    audit_anchor_retention_days=90,
)

PROD = EnvironmentConfig(
    name="prod",
    vpc_cidr="10.30.0.0/16",
    nat_gateways=2,
    multi_az=True,
    deletion_protection=True,
    keep_data_on_delete=True,
    log_retention=logs.RetentionDays.ONE_YEAR,
    database_instance_type="r7g.large",
    database_storage_gib=200,
    database_backup_days=35,
    cache_node_type="cache.r7g.large",
    cache_replicas=2,
    cache_snapshot_days=7,
    search_instance_type="r6g.large.search",
    search_data_nodes=2,
    search_master_nodes=3,
    search_volume_gib=200,
    api_cpu=2048,
    api_memory_mib=8192,
    api_min_tasks=3,
    api_max_tasks=12,
    api_requests_per_task_minute=1200,
    api_rate_limit_per_second=1000,
    worker_cpu=4096,
    worker_memory_mib=16384,
    tracking_tasks=2,
    audit_anchor_retention_days=2557,
)

ENVIRONMENTS: dict[str, EnvironmentConfig] = {env.name: env for env in (DEV, STAGING, PROD)}
